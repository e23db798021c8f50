"""The live page's pure logic (gecko_temporal/ops/ui/view.py): layout, statuses, redaction."""

from __future__ import annotations

import pytest

from gecko_temporal import ExecutionStrategy, Next, Send, Team, WaitForInput, Workflow
from gecko_temporal.ops.ui import view
from gecko_temporal.ops.ui.server import _full_spec, form_value


def spec_of(wf: Workflow) -> dict:
    return _full_spec(wf.compile(wf.name).to_plain())


def a(x):
    return x


def fan(x) -> list[Send]:
    return [Send("W", i) for i in range(3)]


def loop(x):
    return Next(node="A", input=x)


def graph() -> Workflow:
    inner = Workflow("Inner").add_node("I1", a).add_node("I2", a).add_edge("I1", "I2").set_entry_point("I1")
    wf = Workflow("Shapes")
    wf.add_node("A", a).add_node("W", a).add_node("T", Team([a, loop], ExecutionStrategy.ALL))
    wf.add_node("Sub", inner).add_node("Ask", WaitForInput("ok?")).add_node("Jumped", a)
    wf.add_conditional_edges("A", fan, ["W"])
    wf.add_edge("W", "T").add_edge("T", "Sub").add_edge("Sub", "Ask").set_entry_point("A")
    wf.add_node("Check", a).add_edge("Ask", "Check")
    wf.add_conditional_edges("Check", lambda x: "A", ["A"])  # a loop back to the entry
    return wf


def test_layers_follow_the_longest_path_and_leave_loops_out():
    g = view.layout(spec_of(graph()))
    layer = {n["name"]: n["layer"] for n in g["nodes"]}
    assert layer == {"A": 0, "W": 1, "T": 2, "Sub": 3, "Ask": 4, "Jumped": 0, "Check": 5}
    kinds = {(e["source"], e["target"]): e["kind"] for e in g["edges"]}
    assert kinds[("A", "W")] == "conditional" and kinds[("W", "T")] == "edge" and kinds[("Check", "A")] == "conditional"
    labels = {(e["source"], e["target"]): e["label"] for e in g["edges"]}
    assert labels[("A", "W")] == "fan"


def test_boxes_do_not_overlap_within_a_layer_and_groups_hold_their_parts():
    g = view.layout(spec_of(graph()))
    by = {n["name"]: n for n in g["nodes"]}
    a, jumped = by["A"], by["Jumped"]
    assert a["x"] + a["w"] <= jumped["x"] or jumped["x"] + jumped["w"] <= a["x"]
    team = by["T"]
    assert [m["name"] for m in team["members"]] == ["T/a", "T/loop"]
    assert all(m["x"] + m["w"] <= team["w"] and m["y"] + m["h"] <= team["h"] for m in team["members"])
    sub = by["Sub"]
    assert [n["name"] for n in sub["inner"]["nodes"]] == ["Sub/I1", "Sub/I2"]
    assert sub["inner"]["edges"] == [{"source": "Sub/I1", "target": "Sub/I2", "kind": "edge", "label": ""}]
    assert sub["w"] >= sub["inner"]["width"] and sub["h"] > sub["inner"]["height"]
    assert by["Ask"]["prompt"] == "ok?"
    assert "Sub/I2" in view.all_names(g) and "T/loop" in view.all_names(g)


def test_a_router_to_any_node_is_one_labelled_stub():
    wf = Workflow("Any").add_node("A", a).add_node("B", a).set_entry_point("A")
    wf.add_conditional_edges("A", lambda x: "B")
    edges = view.layout(spec_of(wf))["edges"]
    assert edges == [{"source": "A", "target": None, "kind": "conditional", "label": "<lambda> (any node)"}]


NAMES = ["A", "W", "T", "Ask", "Never"]


def test_statuses_from_gecko_state_alone():
    gs = {"completed": ["A", "W", "W", "W"], "running": ["T"], "waiting": {}}
    s = view.node_statuses(NAMES, gs)
    assert {k: v["status"] for k, v in s.items()} == {
        "A": "completed",
        "W": "completed",
        "T": "running",
        "Ask": "not_run",
        "Never": "not_run",
    }
    assert s["W"]["runs"] == 3


def test_waiting_wins_and_send_instances_are_counted():
    gs = {"completed": ["A"], "running": ["W[0]", "W[1]"], "waiting": {"Ask": {"prompt": "ok?"}}}
    s = view.node_statuses(NAMES, gs)
    assert s["Ask"]["status"] == "waiting" and s["W"]["status"] == "running" and s["W"]["instances"] == 2
    events = [{"type": "node_started", "node": "W"}] * 3 + [
        {"type": "node_finished", "node": "W", "status": "completed"}
    ]
    s = view.node_statuses(NAMES, {"completed": ["W"], "running": ["W", "W"]}, events)
    assert s["W"]["instances"] == 3 and s["W"]["status"] == "running"  # two still out
    assert s["W"]["runs"] == 1


def test_a_failed_node_and_a_failed_run():
    events = [
        {"type": "node_started", "node": "A"},
        {"type": "node_finished", "node": "A", "status": "completed"},
        {"type": "node_started", "node": "W"},
        {"type": "node_finished", "node": "W", "status": "failed"},
    ]
    s = view.node_statuses(NAMES, {"completed": ["A"], "running": []}, events, "failed")
    assert s["A"]["status"] == "completed" and s["W"]["status"] == "failed"
    s = view.node_statuses(NAMES, {"completed": [], "running": ["T"]}, [], "cancelled")
    assert s["T"]["status"] == "failed"  # nothing runs in an ended run


def test_cached_only_when_the_whole_stream_was_read():
    events = [{"type": "node_started", "node": "W"}, {"type": "node_finished", "node": "W", "status": "completed"}]
    gs = {"completed": ["A", "W"]}
    assert view.node_statuses(NAMES, gs, events)["A"]["status"] == "completed"  # the stream may still be replaying
    s = view.node_statuses(NAMES, gs, events, "completed", events_complete=True)
    assert s["A"]["status"] == "cached" and s["W"]["status"] == "completed"


def test_colour_and_send_edges():
    g = view.layout(spec_of(graph()))
    s = view.node_statuses(["A", "W", "T", "Sub", "Ask", "Jumped"], {"completed": ["A", "W[0]", "W[1]", "T", "Sub"]})
    view.colour(g, s)
    view.send_targets(g, s)
    by = {n["name"]: n for n in g["nodes"]}
    assert by["T"]["members"][0]["status"] == "completed"
    assert by["Sub"]["inner"]["nodes"][0]["status"] == "completed"
    child = {"Sub": {"Sub/I1": {"status": "completed", "runs": 1, "instances": 0}}}
    view.colour(
        g, s, {"Sub": {"Sub/I1": child["Sub"]["Sub/I1"], "Sub/I2": {"status": "running", "runs": 0, "instances": 0}}}
    )
    assert [n["status"] for n in by["Sub"]["inner"]["nodes"]] == ["completed", "running"]  # the child run's own
    assert by["Ask"]["status"] == "not_run"
    send = next(e for e in g["edges"] if e["target"] == "W")
    assert send["kind"] == "send" and send["label"] == "Send: fan"


def test_redaction_keeps_names_and_drops_every_value():
    gs = {
        "status": "waiting",
        "step": 3,
        "completed": ["A"],
        "state": {"api_key": "sk-secret"},
        "waiting": {"Ask": {"prompt": "ok?", "input": "sk-secret", "payload": {"k": "sk-secret"}, "interrupted": True}},
        "pending_jumps": [{"node": "A", "input": "sk-secret"}],
        "rejected": [{"request": "sk-secret"}],
        "state_edits": [{"values": {"k": "sk-secret"}}],
    }
    shown = view.redact_state(gs, allowed=False)
    assert "sk-secret" not in repr(shown)
    assert shown["waiting"] == {"Ask": {"prompt": "ok?", "interrupted": True, "hidden": True}}
    assert shown["step"] == 3 and shown["completed"] == ["A"] and shown["hidden"]
    assert view.redact_state(gs, allowed=True) == gs
    event = {"type": "custom", "node": "A", "data": "sk-secret", "error": "sk-secret"}
    assert view.redact_event(event, False) == {"type": "custom", "node": "A"}


def test_escaping_and_previews():
    assert view.escape('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert view.base_name("W[12]") == "W" and view.base_name("a[b]") == "a[b]" and view.base_name("x") == "x"
    long = view.preview("x" * 5000, 100)
    assert long.startswith("x" * 100) and long.endswith("(5,000 characters)")
    assert view.preview({"a": 1}) == '{\n "a": 1\n}'


def test_form_values():
    assert form_value('{"a": 1}') == {"a": 1}
    assert form_value("ship it") == "ship it"
    assert form_value("  ") is None and form_value(None) is None
    assert form_value("[1, 2]") == [1, 2]


# -- access rules of the server (no Temporal needed: the guard answers before any handler) ----------
def test_the_ui_refuses_to_bind_beyond_loopback_without_a_token():
    from gecko_temporal.ops.ui.server import Refused, UiServer, is_loopback

    with pytest.raises(Refused, match="--token or GECKO_UI_TOKEN"):
        UiServer(host="0.0.0.0")
    assert UiServer(host="0.0.0.0", token="t").token == "t"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


async def test_tokens_hosts_and_write_headers_are_checked():
    from aiohttp.test_utils import TestClient, TestServer

    from gecko_temporal.ops.ui.server import UiServer

    async with TestClient(TestServer(UiServer(host="0.0.0.0", token="t").app())) as c:
        page = await c.get("/runs/x")
        assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert '<script src="/static/app.js"' in await page.text()
        assert (await c.get("/api/runs")).status == 401
        assert (await c.get("/api/runs", headers={"Authorization": "Bearer wrong"})).status == 401
        no_header = await c.post("/api/runs/x/cancel", json={}, headers={"Authorization": "Bearer t"})
        assert no_header.status == 403  # a cross-site form cannot add X-Gecko-UI
        assert (await c.get("/static/../server.py")).status == 404
    async with TestClient(TestServer(UiServer(token="t").app())) as c:  # loopback: a rebinding host is refused
        assert (await c.get("/", headers={"Host": "evil.example:8234"})).status == 403
        write = await c.post("/api/runs/x/cancel", json={}, headers={"X-Gecko-UI": "1"})
        assert write.status == 401  # with a token configured, writes need it
