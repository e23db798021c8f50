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


def test_a_poll_from_offset_zero_or_up_to_the_margin_is_accepted_and_refusals_say_why():
    assert g.poll_offset_problem(0, 0) is None  # `watch --from-offset 0`: everything, also on an empty log
    assert g.poll_offset_problem(1000, 0) is None
    assert g.poll_offset_problem(1001, 0) == (
        "offset 1001 is beyond the end of this run's event stream (0 events so far); "
        "read from an offset up to 0 (watch --from-offset N, or 0 for all)"
    )
    assert g.poll_offset_problem(-1, 3) == "a stream poll needs a non-negative integer offset, got -1"
    assert g.poll_offset_problem("5", 3) == "a stream poll needs a non-negative integer offset, got '5'"


def test_the_limits_themselves_are_allowed():
    at_most = "x" * g.PUBLISHER_ID_CHARS
    assert g.publish_problem([(at_most, g.ITEM_BYTES)], at_most, "gecko", {}) is None
    assert g.publish_problem([("t", 1)] * g.BATCH_ITEMS, "p", "gecko", {}) is None
    assert g.publish_problem([("t", g.ITEM_BYTES)] * 4, "p", "gecko", {}) is None  # exactly BATCH_BYTES
    assert g.publish_problem([(at_most + "y", 1)], "p", "gecko", {}) == (
        "item 0: topic name of 201 characters (at most 200)"
    )


def test_an_oversized_item_is_named_with_its_topic_cut_to_fifty_characters():
    topic = "a" * 50 + "b" * 10
    assert g.publish_problem([("t", 1), (topic, g.ITEM_BYTES + 1)], "p", "gecko", {}) == (
        f"item 1 on topic {'a' * 50!r} is 262,145 bytes, over 262,144: emit a summary or a path, not the data"
    )


def test_a_forged_item_on_the_runs_own_topic_is_refused_naming_what_it_claims():
    items = [("gecko", 10)]
    claimed = "r" * 40 + "s" * 5
    assert g.publish_problem(items, "", "gecko", {0: {"type": claimed}}) == (
        f"item 0 on the run's own topic 'gecko' is a {'r' * 40!r} event; from outside only "
        '"custom" events (context.emit) may be published there'
    )
    assert g.publish_problem(items, "", "gecko", {0: ["custom"]}) == (
        "item 0 on the run's own topic 'gecko' is not an event object; from outside only "
        '"custom" events (context.emit) may be published there'
    )
