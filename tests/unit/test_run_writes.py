"""Eager write tracking and held fan-out deltas (core/run/writes.py)."""

from gecko_temporal.core.run.writes import HeldDeltas, WriteTracker
from gecko_temporal.core.state import StateDelta


def d(**writes):
    return StateDelta(writes, [])


def test_a_plain_task_merges_at_once():
    held = HeldDeltas()
    deltas = [d(a="1")]
    assert held.add("A", None, deltas, True) is deltas
    assert held.add("A", None, deltas, False) is deltas


def test_a_fan_out_merges_in_send_order_when_its_last_instance_finishes():
    held = HeldDeltas()
    assert held.add("R", 2, [d(k="2")], False) == []
    assert held.add("R", 0, [d(k="0"), d(j="0")], False) == []
    assert held.add("S", 0, [d(s="0")], True) == [d(s="0")]
    assert held.add("R", 1, [d(k="1")], True) == [d(k="0"), d(j="0"), d(k="1"), d(k="2")]
    assert held.add("R", 0, [d(k="again")], True) == [d(k="again")]  # the next fan-out starts afresh


def test_a_key_written_by_a_task_that_ran_meanwhile_is_a_conflict():
    w = WriteTracker()
    w.started("A")
    w.started("B")
    w.new_merge()
    assert w.merges == 1
    assert w.wrote("A", ["k", "j"]) == []  # A finished first
    w.new_merge()
    assert w.wrote("B", ["j", "k", "x"]) == ["j", "k"]  # B ran while A wrote them


def test_no_conflict_for_a_task_started_after_the_write_or_for_its_own_writes():
    w = WriteTracker()
    w.started("A")
    w.new_merge()
    assert w.wrote("A", ["k"]) == []
    w.started("C")  # sees A's write
    w.started("A")  # A again (a loop): its own earlier write is no conflict
    w.new_merge()
    assert w.wrote("A", ["k"]) == []
    w.new_merge()
    assert w.wrote("C", ["k"]) == ["k"]  # A's second write came after C started


def test_two_tasks_in_one_merge_conflict_and_reduced_keys_never_do():
    w = WriteTracker(reducers={"log": "append"})
    w.started("A")
    w.started("B")
    w.new_merge()
    assert w.wrote("A", ["k", "log"]) == []
    assert w.wrote("B", ["log", "k"]) == ["k"]


def test_a_write_exactly_at_the_start_merge_is_no_conflict():
    w = WriteTracker()
    w.new_merge()
    w.started("B")  # started after merge 1
    assert w.wrote("A", []) == []
    w._last_write["k"] = ("A", 1)
    w.new_merge()
    assert w.wrote("B", ["k"]) == []
    w._last_write["k"] = ("A", 2)
    assert w.wrote("B", ["k"]) == ["k"]


def test_a_key_a_task_writes_and_deletes_is_no_conflict_with_itself():
    w = WriteTracker()
    w.started("A")
    w.new_merge()
    assert w.wrote("A", ["k", "k"]) == []
