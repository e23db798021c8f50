"""What a run's stream accepts from outside: bounded polls and publish batches (no server needed)."""

from gecko_temporal.core import stream_guard as g


def test_polls_beyond_the_logs_end_plus_a_margin_are_refused_naming_the_offset():
    assert g.poll_offset_problem(10, 10) is None
    assert g.poll_offset_problem(10 + g.OFFSET_MARGIN, 10) is None
    problem = g.poll_offset_problem(999_999_999_999, 10)
    assert problem is not None and "999999999999" in problem and "10 events" in problem
    assert g.poll_offset_problem(-1, 10) is not None
    assert g.poll_offset_problem(True, 10) is not None


def test_the_oldest_waiting_polls_are_released_when_more_than_the_limit_wait():
    polls = g.WaitingPolls(limit=3)
    tokens = [polls.arrive() for _ in range(3)]
    assert [r for _, r in tokens] == [[], [], []]
    fourth, release = polls.arrive()
    assert release == [tokens[0][0]] and polls.released(tokens[0][0]) and len(polls) == 3
    polls.leave(tokens[0][0])
    assert not polls.released(tokens[0][0])
    _, again = polls.arrive()
    assert again == [tokens[1][0]]
    polls.unrelease(again)  # an old run: keeps every poll
    assert not polls.released(tokens[1][0]) and len(polls) == 4
    polls.leave(fourth)
    assert len(polls) == 3


def test_publish_batches_are_bounded_by_bytes_items_and_publisher_id():
    assert g.publish_problem([("t", 10)], "p", "gecko", {}) is None
    assert "publisher_id is 1,000,000 characters" in (g.publish_problem([], "x" * 1_000_000, "gecko", {}) or "")
    assert "item 1" in (g.publish_problem([("t", 1), ("t", g.ITEM_BYTES + 1)], "", "gecko", {}) or "")
    many = [("t", g.ITEM_BYTES)] * 5
    assert "over 1,048,576 bytes at item 4" in (g.publish_problem(many, "", "gecko", {}) or "")
    assert "at most 1,000" in (g.publish_problem([("t", 1)] * 1001, "", "gecko", {}) or "")


def test_only_custom_events_may_be_published_on_the_runs_own_topic():
    items = [("gecko", 10), ("other", 10)]
    assert g.publish_problem(items, "", "gecko", {0: {"type": "custom"}}) is None
    forged = g.publish_problem(items, "", "gecko", {0: {"type": "run_finished"}})
    assert forged is not None and "item 0" in forged and "'run_finished' event" in forged
    assert "not an event object" in (g.publish_problem(items, "", "gecko", {0: "hi"}) or "")
