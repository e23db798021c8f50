"""Whether a pinned run moves to the current version at its continue-as-new (core/run/upgrade.py)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from gecko_temporal import Next, Team, WaitForInput, Workflow, step
from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.run.upgrade import Candidate, decide_upgrade, held_outputs, needed_nodes
from gecko_temporal.core.spec import GraphSpec
from gecko_temporal.core.versions import workflow_fingerprint


def work(x, context):
    return Next(node="Work")


def work_v2(x, context):
    context.state["v"] = 2
    return Next(node="Work")


def done(x):
    return x


def extra(x):
    return x


class Out(BaseModel):
    n: int


class OutV2(BaseModel):
    n: int
    label: str


def scored(x) -> Out:
    return Out(n=1)


def scored_v2(x) -> OutV2:
    return OutV2(n=1, label="a")


def looper(work_name="Work", work_fn=work, extra_node=False, done_fn=done, hold_to=None):
    """Work (loops by Next) -> Done [-> Extra], Hold (a wait) -> Work."""
    wf = Workflow("Looper", upgrade="at-continue-as-new")
    wf.add_node(work_name, work_fn)
    wf.add_node("Hold", WaitForInput("go on?"))
    wf.add_node("Done", done_fn)
    wf.add_edge("Hold", hold_to or work_name).add_edge(work_name, "Done")
    if extra_node:
        wf.add_node("Extra", extra).add_edge("Done", "Extra")
    return wf.set_entry_point(work_name)


def snapshot(inbox=None, jumps=(), outputs=None, partial=(), answers=None, sends=()):
    sched = {
        "inbox": inbox or {},
        "jumps": [{"node": j, "input": "null", "source": ""} for j in jumps],
        "outputs": outputs or {},
        "step": 5,
        "last_layer": [],
    }
    if sends:
        sched["sends"] = [{"node": s, "input": "null", "source": ""} for s in sends]
    snap = {"scheduler": sched, "state": {}, "answers": answers or {}}
    if partial:
        snap["partial_layer"] = {"tasks": [[n, "null", 5, False] for n in partial], "done": {}}
    return snap


def decide(old: Workflow, new: Workflow | None, snap: dict, pinned="v1", target="v2", with_code=True):
    old_spec, old_fp = workflow_fingerprint(old)
    if new is None:
        candidate = Candidate(target, problem="too big")
    else:
        new_spec, new_fp = workflow_fingerprint(new)
        spec = GraphSpec.from_plain(new_spec.to_plain())  # as it travels: published, read back
        code = new_fp.code if with_code else {}
        candidate = Candidate(target, graph=new_fp.id, spec=spec, code=code, schemas=new_fp.schemas)
    code = old_fp.code if with_code else {}
    return decide_upgrade(old_spec, code, old_fp.schemas, pinned, snap, [candidate])


# -- what the snapshot says the run still needs ----------------------------------------------------


def test_a_snapshot_needs_the_nodes_with_inputs_their_senders_jumps_sends_carried_tasks_and_answers():
    snap = snapshot(
        inbox={"Join": {"A": "1", "B": "2"}}, jumps=["Loop"], sends=["Each"], partial=["Wide"], answers={"Ask": '"y"'}
    )
    assert needed_nodes(snap) == {"Join", "A", "B", "Loop", "Each", "Wide", "Ask"}
    assert needed_nodes({}) == set()
    assert held_outputs(snapshot(outputs={"A": "1", "B": "2"})) == {"A", "B"}
    assert held_outputs({"scheduler": None}) == set()


# -- moves ------------------------------------------------------------------------------------------


def test_new_bodies_and_a_node_added_downstream_move_the_run_and_say_what_changed():
    decision = decide(looper(), looper(work_fn=work_v2, extra_node=True), snapshot(jumps=["Work"]))
    assert decision is not None and decision.move and decision.reasons == []
    assert decision.target == "v2"
    assert any("body changed" in line and "Work" in line for line in decision.changes)
    assert any("node added" in line and "Extra" in line for line in decision.changes)
    assert decision.to_plain()["move"] is True


def test_an_identical_graph_on_the_new_version_moves_with_no_changes():
    decision = decide(looper(), looper(), snapshot(jumps=["Work"]))
    assert decision is not None and decision.move and decision.changes == []


def test_a_node_renamed_that_the_run_left_behind_does_not_keep_it():
    old = Workflow("P", upgrade="at-continue-as-new").add_node("Start", done).add_node("Loop", work)
    old.add_edge("Start", "Loop").set_entry_point("Start")
    new = Workflow("P", upgrade="at-continue-as-new").add_node("Begin", done).add_node("Loop", work)
    new.add_edge("Begin", "Loop").set_entry_point("Begin")
    decision = decide(old, new, snapshot(jumps=["Loop"], outputs={"Start": '"x"'}))
    assert decision is not None and decision.move, decision
    assert any("node renamed" in line and "Start" in line for line in decision.changes)


def test_nothing_to_decide_when_new_runs_start_where_the_run_is():
    assert decide(looper(), looper(work_fn=work_v2), snapshot(jumps=["Work"]), pinned="v2") is None
    spec, fp = workflow_fingerprint(looper())
    assert decide_upgrade(spec, fp.code, {}, "v1", snapshot(), []) is None


# -- stays ------------------------------------------------------------------------------------------


def test_a_node_the_run_still_needs_renamed_keeps_it_pinned_naming_the_node():
    decision = decide(looper(), looper(work_name="Labour"), snapshot(jumps=["Work"]))
    assert decision is not None and not decision.move
    assert decision.target == "v2"
    assert len(decision.reasons) == 1
    reason = decision.reasons[0]
    assert reason.startswith("version v2: Work: node renamed (this run still needs it:"), reason
    assert decision.to_plain()["reasons"] == decision.reasons


def test_a_removed_node_with_inputs_waiting_keeps_the_run():
    old = looper(extra_node=True)
    decision = decide(old, looper(), snapshot(inbox={"Extra": {"Done": "1"}}))
    assert decision is not None and not decision.move
    assert any("Extra: node removed" in r for r in decision.reasons)


def test_a_node_whose_inputs_wait_and_whose_edges_changed_keeps_the_run_but_not_elsewhere():
    old = looper(extra_node=True)
    rewired = Workflow("Looper", upgrade="at-continue-as-new")
    rewired.add_node("Work", work).add_node("Hold", WaitForInput("go on?")).add_node("Done", done)
    rewired.add_node("Extra", extra)
    rewired.add_edge("Hold", "Work").add_edge("Work", "Extra").add_edge("Extra", "Done").set_entry_point("Work")
    stays = decide(old, rewired, snapshot(inbox={"Done": {"Work": "1"}}))
    assert stays is not None and not stays.move
    assert any("Done: edges changed (this run gathered its inputs under the old edges" in r for r in stays.reasons)
    moves = decide(old, rewired, snapshot(jumps=["Hold"]))
    assert moves is not None and moves.move, moves.reasons


def test_a_changed_kind_or_team_of_a_needed_node_keeps_the_run():
    @step(name="a")
    def a(x):
        return x

    @step(name="b")
    def b(x):
        return x

    def graph(node):
        return Workflow("K", upgrade="at-continue-as-new").add_node("T", node).set_entry_point("T")

    team = decide(graph(Team([a])), graph(Team([a, b])), snapshot(jumps=["T"]))
    assert team is not None and not team.move and any("team membership changed" in r for r in team.reasons)
    kind = decide(graph(Team([a])), graph(done), snapshot(partial=["T"]))
    assert kind is not None and not kind.move and any("T: kind changed" in r for r in kind.reasons)
    ahead = decide(graph(Team([a])), graph(Team([a, b])), snapshot(jumps=[]))
    assert ahead is not None and ahead.move  # nothing refers to the Team yet: its new members run


def test_an_output_model_with_new_required_fields_keeps_only_a_run_holding_its_outputs():
    def graph(fn):
        wf = Workflow("S", upgrade="at-continue-as-new").add_node("Score", fn).add_node("Loop", work)
        return wf.add_edge("Score", "Loop").set_entry_point("Score")

    holding = decide(graph(scored), graph(scored_v2), snapshot(jumps=["Loop"], outputs={"Score": "{}"}))
    assert holding is not None and not holding.move
    assert any("Score: output schema changed (this run holds outputs of it" in r for r in holding.reasons)
    fresh = decide(graph(scored), graph(scored_v2), snapshot(jumps=["Loop"]))
    assert fresh is not None and fresh.move
    assert any("this run holds none" in line for line in fresh.changes)


def test_a_version_that_published_no_usable_graph_keeps_the_run_and_says_why():
    decision = decide(looper(), None, snapshot(jumps=["Work"]))
    assert decision is not None and not decision.move
    assert decision.reasons == ["version v2 published no graph for this run: too big"]
    spec, fp = workflow_fingerprint(looper())
    silent = decide_upgrade(spec, fp.code, {}, "v1", snapshot(), [Candidate("v3")])
    assert silent is not None and "its workers have not started" in silent.reasons[0]


def test_a_version_serving_another_graph_under_the_key_keeps_the_run():
    other = Workflow("Other").add_node("Work", work).set_entry_point("Work")
    spec, fp = workflow_fingerprint(looper())
    other_spec, other_fp = workflow_fingerprint(other)
    decision = decide_upgrade(spec, fp.code, {}, "v1", snapshot(), [Candidate("v2", other_fp.id, other_spec)])
    assert decision is not None and not decision.move
    assert decision.reasons == ['version v2 serves workflow "Other" under "Other", not "Looper" under "Looper"']
    renamed = Workflow("Renamed").add_node("Work", work).set_entry_point("Work").compile("Looper")
    same_key = decide_upgrade(spec, fp.code, {}, "v1", snapshot(), [Candidate("v2", "x", renamed)])
    assert same_key is not None and same_key.reasons == [
        'version v2 serves workflow "Renamed" under "Looper", not "Looper" under "Looper"'
    ]


def test_every_version_new_runs_may_start_on_must_be_safe():
    spec, fp = workflow_fingerprint(looper())
    safe_spec, safe_fp = workflow_fingerprint(looper(work_fn=work_v2))
    bad_spec, bad_fp = workflow_fingerprint(looper(work_name="Labour"))
    current = Candidate("v2", safe_fp.id, safe_spec, safe_fp.code)
    ramping = Candidate("v3", bad_fp.id, bad_spec, bad_fp.code)
    decision = decide_upgrade(spec, fp.code, {}, "v1", snapshot(jumps=["Work"]), [current, ramping])
    assert decision is not None and not decision.move and decision.target == "v2"
    assert all(r.startswith("version v3:") for r in decision.reasons)
    only_current = decide_upgrade(spec, fp.code, {}, "v1", snapshot(jumps=["Work"]), [current])
    assert only_current is not None and only_current.move


def test_without_code_hashes_only_the_structure_is_compared():
    decision = decide(looper(), looper(work_fn=work_v2), snapshot(jumps=["Work"]), with_code=False)
    assert decision is not None and decision.move and decision.changes == []


# -- the option ---------------------------------------------------------------------------------------


def test_the_upgrade_option_is_checked_and_travels_in_the_spec_only_when_set():
    with pytest.raises(GraphError, match='upgrade must be "at-continue-as-new" or None'):
        Workflow("X", upgrade="always")
    plain = Workflow("X").add_node("A", done).set_entry_point("A").compile().to_plain()
    assert "upgrade" not in plain  # graphs without it keep their form (and fingerprint)
    spec = looper().compile()
    assert spec.upgrade == "at-continue-as-new"
    assert GraphSpec.from_plain(spec.to_plain()).upgrade == "at-continue-as-new"


# -- what a continued run carries, what a worker publishes (temporal/versions.py, no server) ------------


def test_a_continued_run_carries_the_graph_it_follows_and_the_version_notes():
    from gecko_temporal.temporal.versions import INPUT_KEY, NOTES_KEY, carry

    version = {"graph": "abc", "client_graph": "def", "upgrade": {"move": False}, "build_id": "v1"}
    out = carry({"spec": {}, "input": "1"}, version)
    assert out[INPUT_KEY] == "abc"
    assert out[NOTES_KEY] == {"client_graph": "def", "upgrade": {"move": False}}
    bare = carry({"spec": {}}, {"graph": None, "client_graph": None})
    assert bare == {"spec": {}}  # a replayer's run (no graph known) carries nothing new


def test_a_worker_publishes_its_graph_whole_or_as_much_as_fits():
    from gecko_temporal.temporal.versions import Graph, published_graph

    spec, fp = workflow_fingerprint(looper())
    graph = Graph(spec, spec.to_plain(), fp)
    whole = published_graph(graph)
    assert whole["graph"] == fp.id and whole["code"] == fp.code and GraphSpec.from_plain(whole["spec"]) == spec
    structural = published_graph(graph, limit=len(str(whole)) - len(str(fp.code)))
    assert "code" not in structural and structural["spec"] == spec.to_plain()
    too_big = published_graph(graph, limit=100)
    assert "spec" not in too_big and "over the 100 bytes" in too_big["problem"]


def test_the_decision_as_gecko_state_shows_it_word_for_word():
    old, new = looper(), looper(work_name="Labour")
    decision = decide(old, new, snapshot(jumps=["Work"]))
    new_id = workflow_fingerprint(new)[1].id
    assert decision is not None
    assert decision.to_plain() == {
        "move": False,
        "target": "v2",
        "graph": new_id,
        "reasons": [
            'version v2: Work: node renamed (this run still needs it: now "Labour": a run waiting at or bound for '
            '"Work" has no node of that name to go on with)'
        ],
        "changes": [
            'v2: UNSAFE node renamed               Work: this run still needs it: now "Labour": a run waiting at or '
            'bound for "Work" has no node of that name to go on with'
        ],
    }


class Opt(BaseModel):
    n: int
    label: str = ""


def scored_optional(x) -> Opt:
    return Opt(n=1)


def test_a_safe_schema_change_and_a_fresh_unsafe_one_read_as_such():
    def graph(fn):
        wf = Workflow("S", upgrade="at-continue-as-new").add_node("Score", fn).add_node("Loop", work)
        return wf.add_edge("Score", "Loop").set_entry_point("Score")

    optional = decide(graph(scored), graph(scored_optional), snapshot(jumps=["Loop"]))
    assert optional is not None and optional.move
    assert "v2: safe   output schema changed      Score: the output model changed; old outputs still validate" in (
        optional.changes
    )
    fresh = decide(graph(scored), graph(scored_v2), snapshot(jumps=["Loop"]))
    assert (
        fresh is not None
        and (
            "v2: safe   output schema changed      Score: new required field(s) label: outputs the old code wrote no "
            "longer validate (this run holds none)"
        )
        in fresh.changes
    )


def test_a_change_inside_a_subgraph_the_run_needs_keeps_it():
    def outer(inner_name):
        inner = Workflow("In").add_node(inner_name, done).set_entry_point(inner_name)
        wf = Workflow("O", upgrade="at-continue-as-new").add_node("Loop", work).add_node("Sub", inner)
        return wf.add_edge("Loop", "Sub").set_entry_point("Loop")

    stays = decide(outer("i"), outer("j"), snapshot(jumps=["Sub"]))
    assert stays is not None and not stays.move
    assert any(r.startswith("version v2: Sub/i: node r") for r in stays.reasons), stays.reasons
    moves = decide(outer("i"), outer("j"), snapshot(jumps=["Loop"]))
    assert moves is not None and moves.move


def test_every_candidate_is_judged_even_after_one_without_a_graph():
    spec, fp = workflow_fingerprint(looper())
    bad_spec, bad_fp = workflow_fingerprint(looper(work_name="Labour"))
    decision = decide_upgrade(
        spec, fp.code, {}, "v1", snapshot(jumps=["Work"]), [Candidate("v2"), Candidate("v3", bad_fp.id, bad_spec)]
    )
    assert decision is not None and decision.target == "v2" and decision.graph is None
    assert [r.split(":")[0] for r in decision.reasons] == ["version v2 published no graph for this run", "version v3"]


def test_code_is_compared_only_when_both_sides_have_it():
    spec, fp = workflow_fingerprint(looper())
    new_spec, new_fp = workflow_fingerprint(looper(work_fn=work_v2))
    for own, theirs in (({}, new_fp.code), (fp.code, {})):
        decision = decide_upgrade(
            spec, own, {}, "v1", snapshot(jumps=["Work"]), [Candidate("v2", new_fp.id, new_spec, theirs)]
        )
        assert decision is not None and decision.move and decision.changes == []


def test_judging_keeps_the_report_ids():
    from gecko_temporal.core.run.upgrade import judge
    from gecko_temporal.core.versions import check_specs

    report = check_specs(looper().compile(), looper(work_name="Labour").compile())
    judged = judge(report, {"Work"}, (), ())
    assert (judged.old, judged.new) == ("run", "worker") and not judged.safe
