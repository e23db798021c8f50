"""What ``gecko-temporal check-upgrade`` prints for each kind of change, word for word, and how node
code is hashed into a graph's fingerprint (core/versions.py). No server needed."""

from __future__ import annotations

from pydantic import BaseModel

from gecko_temporal import Team, WaitForInput, Workflow, step
from gecko_temporal.core.code_hash import code_hash
from gecko_temporal.core.versions import (
    check_migration,
    check_specs,
    check_upgrade,
    graph_fingerprint,
    node_code_hashes,
    output_schemas,
    spec_shape,
    workflow_fingerprint,
)
from tests.pipelines import deploy_v1, deploy_v2
from tests.pipelines.version_nodes import Out, m1, m2, m3, produce, produce_optional


def text_of(old: Workflow, new: Workflow) -> str:
    (old_spec, old_fp), (new_spec, new_fp) = workflow_fingerprint(old), workflow_fingerprint(new)
    report = check_upgrade(old_fp, new_fp, old_spec, new_spec)
    return report.text().replace(old_fp.id, "OLD").replace(new_fp.id, "NEW")


def lines_of(old: Workflow, new: Workflow) -> list[str]:
    return text_of(old, new).splitlines()[1:]


def one(x):
    return x


def two(x):
    return [x]


def three(x):
    return {"x": x}


def ctx(x, context):
    return x


def chain(*names: str, fns: dict | None = None, name: str = "G") -> Workflow:
    wf = Workflow(name)
    for n in names:
        wf.add_node(n, (fns or {}).get(n, one))
    for a, b in zip(names, names[1:]):
        wf.add_edge(a, b)
    return wf.set_entry_point(names[0])


# -- the rolling-deploy pipelines: the whole report ------------------------------------------------


DEPLOY_LINES = [
    '  UNSAFE node renamed               B: now "Finish": a run waiting at or bound for "B" has no node of that name to go on with',
    '  safe   node added                 Extra: downstream of "Finish": runs not yet past it run it, runs already past it do not',
    "  safe   body changed               A: its code changed; the new code runs from its next step",
    '  UNSAFE team membership changed    T: removed or renamed "m1"; added "first": a Team running on the old graph starts its old members',
    "  safe   body changed               T/m2: the member's code changed",
    "  safe   body changed               B: its code changed; the new code runs from its next step",
    "  safe   body changed               S/inner: its code changed; the new code runs from its next step",
]


def test_the_deploy_report_word_for_word():
    assert text_of(deploy_v1.wf, deploy_v2.wf).splitlines() == ["OLD -> NEW: 2 unsafe change(s)", *DEPLOY_LINES]


def test_a_migration_past_the_changes_is_refused_and_ahead_of_them_allowed():
    (old_spec, old_fp), (new_spec, new_fp) = workflow_fingerprint(deploy_v1.wf), workflow_fingerprint(deploy_v2.wf)
    report = check_upgrade(old_fp, new_fp, old_spec, new_spec)
    ahead = check_migration(report, {"A", "Review"})
    assert ahead.text().splitlines()[0].endswith(": safe for runs in flight")
    assert [c.line() for c in ahead.changes] == [line[2:].replace("UNSAFE", "safe  ") for line in DEPLOY_LINES]
    past = check_migration(report, {"A", "B", "T"})
    assert [(c.node, c.safe) for c in past.unsafe] == [("B", False), ("T", False)]
    assert past.unsafe[0].detail == (
        'this run already reached it, so it cannot move: now "Finish": a run waiting at or bound for "B" has '
        "no node of that name to go on with"
    )
    plain = past.to_plain()
    assert (plain["old"], plain["new"], plain["safe"]) == (old_fp.id, new_fp.id, False)
    assert plain["changes"][0] == {"kind": "node renamed", "node": "B", "safe": False, "detail": past.changes[0].detail}


def test_a_new_entry_point_refuses_a_migration_even_where_the_run_has_not_been():
    report = check_specs(chain("A", "B").compile(), chain("Z", "A", "B").compile())
    judged = check_migration(report, ())
    assert [(c.kind, c.node, c.safe) for c in judged.unsafe] == [("entry point changed", "Z", False)]
    assert judged.unsafe[0].detail == 'the entry point was "A"'


def test_the_structural_check_names_the_run_and_the_worker():
    report = check_specs(chain("A", "B").compile(), chain("A", "B", fns={"B": two}).compile())
    assert report.text() == "run -> worker: identical (same structure and code)"
    assert report.to_plain() == {"old": "run", "new": "worker", "safe": True, "changes": []}


# -- each kind of change, as printed ------------------------------------------------------------------


def test_added_and_removed_nodes_as_printed():
    assert lines_of(chain("A", "B", "C"), chain("A", "B")) == [
        "  UNSAFE node removed               C: a run waiting at or bound for it has no node to go on with",
        "  UNSAFE edges changed              B: edges rewired: led to C, now to nothing",
    ]
    unreachable = chain("A", "B").add_node("Fix", two)
    assert lines_of(chain("A", "B"), unreachable) == [
        "  UNSAFE node added                 Fix: no edge leads to it: only jumps the old code lacks reach it"
    ]
    join = chain("A", "B").add_node("C", two).add_node("D", three).add_edge("A", "D").add_edge("B", "D")
    assert lines_of(chain("A", "B").add_node("C", two), join) == [
        '  safe   node added                 D: downstream of "A", "B": runs not yet past it run it, runs already past it do not',
    ]


def test_two_nodes_added_beside_a_rename_are_each_reported():
    old = chain("A", "B", fns={"B": two})
    new = chain("A", "Bee", fns={"Bee": two}).add_node("X", three).add_node("Y", ctx)
    new.add_edge("Bee", "X").add_edge("Bee", "Y")
    assert [line.split(":")[0].split()[-1] for line in lines_of(old, new)] == ["B", "X", "Y"]


def test_a_context_parameter_gained_or_lost_as_printed():
    assert lines_of(chain("A", "B"), chain("A", "B", fns={"B": ctx}))[0] == (
        "  UNSAFE signature changed          B: now takes a context parameter: the old graph ships it no state"
    )
    assert lines_of(chain("A", "B", fns={"B": ctx}), chain("A", "B"))[0] == (
        "  UNSAFE signature changed          B: no longer takes a context parameter: the old graph ships it a state"
    )


def test_a_changed_kind_is_the_only_change_reported_for_the_node():
    old = chain("A").add_node("Ask", WaitForInput("?")).add_edge("A", "Ask")
    new = chain("A").add_node("Ask", ctx).add_edge("A", "Ask")
    assert lines_of(old, new) == ["  UNSAFE kind changed               Ask: was a wait node, now a function node"]


@step(timeout=30)
def slow_step(x):
    return x


@step(timeout=5)
def fast_step(x):
    return [x]


def test_changed_options_are_safe_and_show_both_values():
    slow = chain("A", "B", fns={"B": slow_step})
    fast = chain("A", "B", fns={"B": fast_step})
    assert [line for line in lines_of(slow, fast) if "options" in line] == [
        "  safe   options changed            B: start_to_close_timeout: 30 -> 5"
    ]


def test_rewired_edges_say_where_they_led():
    old = chain("A", "B", "C")
    new = Workflow("G").add_node("A", one).add_node("B", one).add_node("C", one)
    new.add_edge("A", "C").add_edge("C", "B").set_entry_point("A")
    assert "  UNSAFE edges changed              A: edges rewired: led to B, now to C" in lines_of(old, new)


def route_ab(x):
    return "a"


def route_ab_v2(x):
    return "b"


def routed(targets: list[str], router=route_ab) -> Workflow:
    wf = Workflow("R").add_node("Start", one)
    for t in targets:
        wf.add_node(t, one)
    return wf.add_conditional_edges("Start", router, {t.lower(): t for t in targets}).set_entry_point("Start")


def test_new_router_targets_and_a_new_router_as_printed():
    assert '  UNSAFE new router targets         Start: may now route to "B", "C", which runs of the old graph lack' in (
        lines_of(routed(["A"]), routed(["A", "B", "C"]))
    )
    plain = chain("Start", "A")
    assert (
        "  UNSAFE new router targets         Start: may now route to a router, which runs of the old graph lack"
        not in lines_of(routed(["A"]), routed(["A"]))
    )
    assert any("Start: may now route to" in line for line in lines_of(plain, routed(["A"])))


def test_a_changed_router_is_a_body_change_of_its_node():
    report = lines_of(routed(["A", "B"]), routed(["A", "B"], route_ab_v2))
    assert report == [
        "  safe   body changed               Start: its code changed; the new code runs from its next step"
    ]


@step(name="m2")
def m2_v2(x):
    return 22


def spread(data, index):
    return data


def spread_v2(data, index):
    return [data, index]


def team(*members, mapper=None) -> Workflow:
    return Workflow("Crew").add_node("T", Team(list(members), input_mapper=mapper)).set_entry_point("T")


def test_team_changes_as_printed():
    assert lines_of(team(m1, m2), team(m2, m1)) == [
        "  safe   team members reordered     T: members now m2, m1 (matched by name, not position)"
    ]
    assert lines_of(team(m1), team(m1, m2, m3)) == [
        '  UNSAFE team membership changed    T: added "m2", "m3": a Team running on the old graph starts its old members'
    ]
    assert lines_of(team(m1, m2, m3), team(m1)) == [
        '  UNSAFE team membership changed    T: removed or renamed "m2", "m3": a Team running on the old graph starts '
        "its old members"
    ]
    assert lines_of(team(m1, m2), team(m3, m2)) == [
        '  UNSAFE team membership changed    T: removed or renamed "m1"; added "m3": a Team running on the old graph '
        "starts its old members"
    ]
    assert lines_of(team(m1, m2), team(m1, m2_v2)) == [
        "  safe   body changed               T/m2: the member's code changed"
    ]


def test_a_changed_input_mapper_is_a_body_change_of_the_team():
    old = team(m1, mapper=spread)
    assert lines_of(old, team(m1, mapper=spread_v2)) == [
        "  safe   body changed               T: its code changed; the new code runs from its next step"
    ]
    assert lines_of(old, team(m1)) == [
        "  safe   body changed               T: its code changed; the new code runs from its next step"
    ]


class OutMore(BaseModel):
    text: str
    score: float
    label: str


def make_more(x) -> OutMore:
    return OutMore(text="t", score=1, label="l")


def make_int(x) -> int:
    return 1


def test_output_schema_changes_as_printed():
    assert [
        line for line in lines_of(chain("P", fns={"P": produce}), chain("P", fns={"P": make_more})) if "schema" in line
    ] == [
        "  UNSAFE output schema changed      P: new required field(s) score, label: outputs the old code wrote no longer validate"
    ]
    optional = lines_of(chain("P", fns={"P": produce}), chain("P", fns={"P": produce_optional}))
    assert "  safe   output schema changed      P: the output model changed; old outputs still validate" in optional
    added = chain("P", fns={"P": produce}).add_node("Q", make_more).add_edge("P", "Q")
    assert not any("schema" in line for line in lines_of(chain("P", fns={"P": produce}), added))


def test_only_pydantic_return_models_have_schemas():
    wf = chain("P", "Q", "R", "S", fns={"P": produce, "Q": make_int, "R": one, "S": produce})
    wf.add_node("W", WaitForInput("?")).add_edge("S", "W")
    tables = {"G": wf.node_table()}
    schemas = output_schemas(tables, "G")
    assert set(schemas) == {"P", "S"} and schemas["P"] == Out.model_json_schema()
    assert output_schemas(tables, "Other") == {}


# -- renames: by code, else by place ---------------------------------------------------------------------


def test_a_rename_is_found_by_code_wherever_the_node_went():
    old = chain("A", "B", "C", fns={"B": two})
    new = chain("A", "C").add_node("Bee", two).add_edge("C", "Bee")
    found = [line for line in lines_of(old, new) if "renamed" in line]
    assert found == [
        '  UNSAFE node renamed               B: now "Bee": a run waiting at or bound for "B" has no node of that name to go on with'
    ]


def test_a_rename_by_place_needs_the_same_neighbours():
    old = chain("A", "B", "C", fns={"B": two})
    same_place = chain("A", "X", "C", fns={"X": three})
    assert any('B: now "X"' in line for line in lines_of(old, same_place))
    elsewhere = chain("A", "C").add_node("X", three).add_edge("C", "X")
    moved = lines_of(old, elsewhere)
    assert not any("renamed" in line for line in moved)
    assert any("node removed               B" in line for line in moved)
    no_successor = chain("A", "X", fns={"X": three}).add_node("C", one)
    assert not any("renamed" in line for line in lines_of(old, no_successor))


# -- node code hashes and the shape -------------------------------------------------------------------


def test_node_code_hashes_name_members_and_subgraph_nodes():
    inner = Workflow("In").add_node("i", two).set_entry_point("i")
    wf = Workflow("Out").add_node("T", Team([m1, m2])).add_node("S", inner)
    wf.add_edge("T", "S").set_entry_point("T")
    spec, fp = workflow_fingerprint(wf)
    assert set(fp.code) == {"T", "T/m1", "T/m2", "S", "S/i"}
    assert fp.code["T/m1"] == code_hash(m1) and fp.code["T/m2"] == code_hash(m2)
    assert fp.code["S/i"] != fp.code["S"]
    tables = {"Out": wf.node_table(), **{k: sub.node_table() for k, sub in wf.subgraphs("Out").items()}}
    assert node_code_hashes(tables, "Out") == fp.code
    assert graph_fingerprint(spec, tables).id == fp.id == graph_fingerprint(spec, tables, "Out").id


def test_the_shape_leaves_out_where_code_is_found_at_every_depth():
    leaf = Workflow("Leaf").add_node("l", one).set_entry_point("l")
    mid = Workflow("Mid").add_node("M", leaf).set_entry_point("M")
    top = Workflow("Top").add_node("S", mid).set_entry_point("S")
    shape = spec_shape(top.compile("Top"))
    child = shape["defaults"]["subgraph"]  # the compact form: the one node's value is the default
    assert "key" not in shape and "key" not in child and "key" not in child["defaults"]["subgraph"]
    assert child["name"] == "Mid" and child["defaults"]["subgraph"]["name"] == "Leaf"
    two_subgraphs = Workflow("Two").add_node("S", mid).add_node("T", one).add_node("U", one).set_entry_point("S")
    two_subgraphs.add_edge("S", "T").add_edge("S", "U")
    assert "key" not in spec_shape(two_subgraphs.compile("Two"))["nodes"][0]["subgraph"]
    assert workflow_fingerprint(top, "Top")[1].id == workflow_fingerprint(top, "Elsewhere")[1].id
