"""A graph's fingerprint and the upgrade check (core/versions.py): no server needed."""

from __future__ import annotations

import json

from pydantic import BaseModel

from gecko_temporal import Team, WaitForInput, Workflow, step
from gecko_temporal.core import versions
from gecko_temporal.core.versions import check_specs, check_upgrade, workflow_fingerprint
from tests.pipelines.version_nodes import m1, m2, m3, produce, produce_optional


def fetch(x):
    return x


def analyse(x):
    return {"n": len(x)}


def analyse_v2(x):
    return {"n": len(x), "v": 2}


def report(x):
    return str(x)


def analyse_slow(x):
    return {"n": len(x)}


def with_context(x, context):
    context.state["k"] = 1
    return x


def pipeline(**swap):
    """Fetch -> Analyse -> Report, with nodes swapped in by name."""
    nodes = {"Fetch": fetch, "Analyse": analyse, "Report": report, **swap}
    wf = Workflow("Pipe")
    for name, fn in nodes.items():
        if fn is not None:
            wf.add_node(name, fn)
    names = [n for n, fn in nodes.items() if fn is not None and n in ("Fetch", "Analyse", "Report", "Summary")]
    for a, b in zip(names, names[1:]):
        wf.add_edge(a, b)
    return wf.set_entry_point("Fetch")


def report_of(old: Workflow, new: Workflow) -> versions.UpgradeReport:
    old_spec, old_fp = workflow_fingerprint(old)
    new_spec, new_fp = workflow_fingerprint(new)
    return check_upgrade(old_fp, new_fp, old_spec, new_spec)


def kinds(report: versions.UpgradeReport) -> set[tuple[str, str, bool]]:
    return {(c.kind, c.node, c.safe) for c in report.changes}


# -- the fingerprint ---------------------------------------------------------------------------


def test_the_same_graph_built_twice_has_the_same_fingerprint():
    assert workflow_fingerprint(pipeline())[1].id == workflow_fingerprint(pipeline())[1].id
    assert len(workflow_fingerprint(pipeline())[1].id) == 12


def test_the_fingerprint_changes_with_a_body_an_option_or_the_shape():
    base = workflow_fingerprint(pipeline())[1]
    body = workflow_fingerprint(pipeline(Analyse=analyse_v2))[1]
    option = workflow_fingerprint(pipeline(Analyse=step(timeout=9)(analyse_slow)))[1]
    shape = workflow_fingerprint(pipeline(Report=None))[1]
    assert len({base.id, body.id, option.id, shape.id}) == 4
    assert body.shape_id == base.shape_id  # only code changed
    assert option.shape_id != base.shape_id  # timeout=9 is part of the structure


def test_the_fingerprint_is_the_hash_of_a_documented_canonical_document():
    fp = workflow_fingerprint(pipeline())[1]
    doc = json.loads(fp.document)
    assert set(doc) == {"format", "graph", "code"} and doc["format"] == 1
    assert set(doc["code"]) == {"Fetch", "Analyse", "Report"}
    assert "key" not in doc["graph"]  # where a worker finds the code is not part of the version
    assert fp.document == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    import hashlib

    assert fp.sha256 == hashlib.sha256(fp.document.encode()).hexdigest() and fp.id == fp.sha256[:12]


def test_lambdas_on_one_line_and_module_constants_are_told_apart():
    wf = Workflow("L").add_node("a", lambda s: s.upper()).add_node("b", lambda s: s + "!").set_entry_point("a")
    code = workflow_fingerprint(wf)[1].code
    assert code["a"] != code["b"]
    scope_v1: dict = {"TAG": "v1"}
    scope_v2: dict = {"TAG": "v2"}
    exec("def tagged(x):\n    return TAG\n", scope_v1)
    exec("def tagged(x):\n    return TAG\n", scope_v2)
    assert versions.code_hash(scope_v1["tagged"]) != versions.code_hash(scope_v2["tagged"])


# -- the upgrade check: one test per kind of change --------------------------------------------


def test_identical_graphs_have_no_changes_and_are_safe():
    report = report_of(pipeline(), pipeline())
    assert report.changes == [] and report.safe
    assert "identical" in report.text()


def test_a_node_added_downstream_is_safe():
    def summary(x):
        return x

    report = report_of(pipeline(), pipeline(Summary=summary))
    assert kinds(report) == {("node added", "Summary", True)}
    assert report.safe


def test_a_node_reachable_by_no_edge_is_unsafe():
    new = pipeline().add_node("Fix", lambda x: x)
    assert ("node added", "Fix", False) in kinds(report_of(pipeline(), new))


def test_a_body_change_is_safe_and_named():
    report = report_of(pipeline(), pipeline(Analyse=analyse_v2))
    assert kinds(report) == {("body changed", "Analyse", True)}
    assert "Analyse" in report.text() and "safe" in report.text()


def test_a_renamed_node_is_found_by_its_code_and_is_unsafe():
    old = Workflow("R").add_node("A", fetch).add_node("B", report).add_edge("A", "B").set_entry_point("A")
    new = Workflow("R").add_node("A", fetch).add_node("Publish", report).add_edge("A", "Publish").set_entry_point("A")
    report_ = report_of(old, new)
    assert ("node renamed", "B", False) in kinds(report_)
    assert 'now "Publish"' in report_.text() and not report_.safe
    assert not any(c.kind == "edges changed" for c in report_.changes)  # the rename explains the edge


def test_a_renamed_and_changed_node_is_found_by_its_place():
    old = Workflow("R").add_node("A", fetch).add_node("B", report).add_edge("A", "B").set_entry_point("A")
    new = Workflow("R").add_node("A", fetch).add_node("C", analyse).add_edge("A", "C").set_entry_point("A")
    assert {("node renamed", "B", False), ("body changed", "B", True)} <= kinds(report_of(old, new))


def test_a_removed_node_is_unsafe():
    report = report_of(pipeline(), pipeline(Report=None))
    assert ("node removed", "Report", False) in kinds(report)
    assert ("edges changed", "Analyse", False) in kinds(report)


def test_a_node_that_now_takes_a_context_is_an_unsafe_signature_change():
    report = report_of(pipeline(), pipeline(Analyse=with_context))
    assert ("signature changed", "Analyse", False) in kinds(report)
    assert "context" in report.text()


def test_rewired_edges_are_unsafe():
    old = pipeline()
    new = Workflow("Pipe").add_node("Fetch", fetch).add_node("Analyse", analyse).add_node("Report", report)
    new.add_edge("Fetch", "Report").add_edge("Report", "Analyse").set_entry_point("Fetch")
    found = kinds(report_of(old, new))
    assert ("edges changed", "Fetch", False) in found


def test_new_router_targets_are_unsafe():
    def route(x):
        return "a"

    def build(targets):
        wf = Workflow("Router").add_node("Start", fetch)
        for t in targets:
            wf.add_node(t, fetch)
        return wf.add_conditional_edges("Start", route, {t.lower(): t for t in targets}).set_entry_point("Start")

    report = report_of(build(["A"]), build(["A", "B"]))
    assert ("new router targets", "Start", False) in kinds(report)
    assert '"B"' in report.text()


def team(*members):
    return Workflow("Crew").add_node("T", Team(list(members))).set_entry_point("T")


def test_reordered_team_members_are_safe_matched_by_name():
    report = report_of(team(m1, m2), team(m2, m1))
    assert kinds(report) == {("team members reordered", "T", True)}


def test_a_renamed_or_added_team_member_is_unsafe():
    assert ("team membership changed", "T", False) in kinds(report_of(team(m1, m2), team(m1, m3)))
    assert ("team membership changed", "T", False) in kinds(report_of(team(m1), team(m1, m2)))


class OutRequired(BaseModel):
    text: str
    score: float


def produce_required(x) -> OutRequired:
    return OutRequired(text="t", score=1)


def test_an_output_model_with_a_new_required_field_is_unsafe_an_optional_one_safe():
    def make(fn):
        return Workflow("Models").add_node("P", fn).set_entry_point("P")

    required = report_of(make(produce), make(produce_required))
    assert ("output schema changed", "P", False) in kinds(required)
    assert "score" in required.text()
    assert ("output schema changed", "P", True) in kinds(report_of(make(produce), make(produce_optional)))


def test_a_changed_subgraph_is_checked_inside():
    def outer(inner_fn):
        inner = Workflow("Inner").add_node("i", inner_fn).set_entry_point("i")
        return Workflow("Outer").add_node("S", inner).set_entry_point("S")

    report = report_of(outer(fetch), outer(analyse))
    assert ("body changed", "S/i", True) in kinds(report)


def test_a_new_entry_point_is_unsafe():
    old = pipeline()
    new = Workflow("Pipe").add_node("Start", fetch).add_node("Fetch", fetch).add_node("Analyse", analyse)
    new.add_node("Report", report).add_edge("Start", "Fetch").add_edge("Fetch", "Analyse").add_edge("Analyse", "Report")
    new.set_entry_point("Start")
    assert ("entry point changed", "Start", False) in kinds(report_of(old, new))


def test_a_wait_turned_into_a_function_is_an_unsafe_kind_change():
    old = Workflow("K").add_node("Ask", WaitForInput("?")).set_entry_point("Ask")
    new = Workflow("K").add_node("Ask", fetch).set_entry_point("Ask")
    assert ("kind changed", "Ask", False) in kinds(report_of(old, new))


def test_check_specs_compares_structure_only():
    old = pipeline()
    assert check_specs(old.compile(), pipeline(Analyse=analyse_v2).compile()).safe  # code is not compared
    assert not check_specs(old.compile(), pipeline(Report=None).compile()).safe


def test_the_report_as_json_names_every_change():
    plain = report_of(pipeline(), pipeline(Report=None)).to_plain()
    assert plain["safe"] is False
    assert {"kind": "node removed", "node": "Report", "safe": False} in [
        {k: c[k] for k in ("kind", "node", "safe")} for c in plain["changes"]
    ]


# -- moving one run (migrate) ------------------------------------------------------------------


def test_a_move_is_safe_when_the_changes_lie_ahead_of_the_run():
    old, new = pipeline(), pipeline(Report=None)
    report = versions.check_migration(report_of(old, new), reached={"Fetch"})
    assert report.safe  # Report and Analyse's edges change, but the run has not reached them


def test_a_move_past_a_renamed_or_rewired_node_is_refused():
    old, new = pipeline(), pipeline(Report=None)
    report = versions.check_migration(report_of(old, new), reached={"Fetch", "Analyse"})
    assert ("edges changed", "Analyse", False) in kinds(report)
    assert "already reached" in report.text()
    renamed = Workflow("R").add_node("A", fetch).add_node("B", report_).set_entry_point("A")
    moved = Workflow("R").add_node("A2", fetch).add_node("B", report_).set_entry_point("A2")
    assert not versions.check_migration(report_of(renamed, moved), reached={"A"}).safe


def report_(x):
    return x
