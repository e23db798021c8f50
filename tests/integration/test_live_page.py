"""The live page (``gecko-temporal ui``) in a real headless Chromium, against a real dev server and
a worker process (``python worker.py``): the graph's statuses, a waiting run answered from the page, a jump and a state edit from
the page, an encrypted run that shows nothing without the token, and a bad form input's message.

Chromium is driven over the DevTools protocol as in test_ui_browser.py. Screenshots go to
``tmp_path`` (or ``GECKO_UI_SCREENSHOTS``; docs/images/run-view.png and waiting-run.png come from
``GECKO_UI_SCREENSHOTS=docs/images``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")

from tests.integration.test_ui_browser import CHROMIUM, Page, _open_browser  # noqa: E402

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)"), pytest.mark.slow]

from gecko_temporal.temporal.embedded import free_port  # noqa: E402
from tests.pipelines import live_page as pipelines  # noqa: E402
from tests.pipelines.procs import Proc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class LivePage(Page):
    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.body && document.body.getAttribute('data-loaded')", what=f"{url} to load")

    async def wait_for(self, expression: str, what: str = "", tries: int = 300):
        value = None
        for _ in range(tries):  # a failure bound only
            try:
                value = await self.js(expression)
            except AssertionError:
                value = None
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"page never showed {what or expression}; it shows:\n{(await self.text())[:3000]}")

    async def statuses(self) -> dict[str, str]:
        return await self.js(
            "Object.fromEntries([...document.querySelectorAll('[data-node]')]"
            ".map(e => [e.getAttribute('data-node'), e.getAttribute('data-status')]))"
        )

    async def fill(self, selector: str, value: str) -> None:
        ok = await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; "
            f"e.value = {json.dumps(value)}; return true; }})()"
        )
        assert ok, f"no {selector} on the page"

    async def press(self, selector: str) -> None:
        ok = await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; "
            "e.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true; })()"
        )
        assert ok, f"no {selector} on the page"

    async def press_node(self, name: str) -> None:
        ok = await self.js(
            "(() => { const e = [...document.querySelectorAll('[data-node]')]"
            f".find(e => e.getAttribute('data-node') === {json.dumps(name)}); if (!e) return false; "
            "e.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true; })()"
        )
        assert ok, f"no node {name!r} drawn"

    async def confirmed(self, selector: str) -> None:
        """Click ``selector``, then the confirmation's Yes."""
        await self.press(selector)
        await self.wait_for("!document.querySelector('#confirm').hidden", "the confirmation")
        await self.press("#confirm-yes")

    async def message(self, *needles: str) -> str:
        got = await self.wait_for(
            "(() => { const m = document.querySelector('#message'); return m && !m.hidden && m.textContent; })()",
            "a message",
        )
        for _ in range(100):
            if all(n in got for n in needles):
                return got
            await asyncio.sleep(0.1)
            got = await self.js("document.querySelector('#message').textContent")
        raise AssertionError(f"message {got!r} lacks {needles}")

    async def html(self) -> str:
        return await self.js("document.documentElement.outerHTML")


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("GECKO_UI_SCREENSHOTS") or tmp_path)
    if not shots.is_absolute():
        shots = ROOT / shots
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def _start_ui(env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gecko_temporal", "ui", "--port", str(port), *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"the ui exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                async with s.get(url + "/") as r:
                    if r.status == 200:
                        return proc, url
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the ui did not start")


async def _waiting(handle) -> None:
    async for event in handle.stream():
        if event.type == "waiting":
            return


def _worker(address: str, queue: str, log: Path, *names: str) -> Proc:
    """A worker process (``python worker.py``) serving pipelines of tests/pipelines/live_page.py."""
    worker = Proc(
        [sys.executable, "worker.py", *(f"tests.pipelines.live_page:{n}" for n in names), "--address", address],
        log,
        env={"GECKO_TASK_QUEUE": queue},
    )
    worker.wait_for("worker ready")
    return worker


async def _close(session, browser, ui, worker: Proc) -> None:
    """Close the tab's session, stop Chromium and the ui (those that started), then the worker."""
    if session is not None:
        await session.close()
    if browser is not None:
        browser.terminate()
        browser.wait(10)
    if ui is not None:
        ui.terminate()
        ui.wait(10)
    worker.stop()


@pytest.fixture
async def live(dev_server, tmp_path, monkeypatch):
    """A worker process and the ui (a ``gecko-temporal ui`` process) on the dev server, and a
    Chromium tab."""
    queue = f"live-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    monkeypatch.delenv("GECKO_ENCRYPTION_KEY", raising=False)
    worker = await asyncio.to_thread(
        _worker,
        dev_server.address,
        queue,
        tmp_path / "worker.log",
        "shapes",
        "ask",
        "failing",
        "interrupting",
        "nested",
    )
    ui = browser = session = None
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
        ui, url = await _start_ui(env, "--temporal-ui", "http://127.0.0.1:8233")
        browser, session, page = await _open_browser(tmp_path)
        page.__class__ = LivePage
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        yield url, page
    finally:
        await _close(session, browser, ui, worker)


async def test_the_graph_shows_each_nodes_status_after_a_run(live, tmp_path):
    url, page = live
    session = f"live-shapes-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.shapes.start("topic", session_id=session)
    assert await handle.result() == "polished outline"
    await page.open(f"{url}/runs/{session}")
    await page.wait_for(
        "document.querySelector('[data-node=\"Plan\"]') && document.querySelector('[data-node=\"Plan\"]')"
        ".getAttribute('data-status') === 'completed'",
        "Plan completed",
    )
    statuses = await page.statuses()
    assert statuses["Plan"] == statuses["Work"] == statuses["Pair"] == "completed", statuses
    assert statuses["Pair/careful"] == statuses["Pair/quick"] == "completed"
    assert statuses[pipelines.XSS_NODE] == "completed"
    assert statuses["Never"] == "not_run"
    assert statuses["Summary"] == statuses["Summary/Outline"] == statuses["Summary/Polish"] == "completed"
    text = await page.text()
    drawn = await page.js("document.querySelector('#graph').textContent")
    assert "3 Send instances" in drawn and "2 members" in drawn, drawn
    assert await page.js("document.querySelector('[data-kind=send]').textContent") == "Send: fan_out"
    assert pipelines.XSS_NODE[:12] in drawn and pipelines.XSS_NODE in text  # shown as characters...
    assert await page.js("window.__xss === undefined && !document.querySelector('img')")  # ...never run
    assert await page.js("!!document.querySelector('#temporal-link')")
    await page.wait_for("document.querySelectorAll('#steps li').length > 0", "the steps")

    await page.press_node(pipelines.XSS_NODE)
    await page.wait_for("document.querySelector('#node-detail').textContent.includes('state writes')", "node detail")
    await page.js("window.scrollTo(0, 0)")
    detail = await page.js("document.querySelector('#node-detail').textContent")
    assert "shouted = true" in detail and '"result": "careful"' in detail, detail  # its writes, its input
    await page.screenshot(_shots(tmp_path) / "run-view.png")

    child = await page.wait_for(
        "(document.querySelector('.child-link') || {}).textContent", "the link to the subgraph's child run"
    )
    assert child.startswith(f"{session}.Summary"), child
    await page.open(f"{url}/runs/{child}")
    await page.wait_for(
        "(document.querySelector('[data-node=\"Polish\"]') || {getAttribute: () => ''}).getAttribute('data-status') === 'completed'",
        "the child run's graph",
    )

    await page.open(f"{url}/?pipeline=LiveShapes")
    await page.wait_for(f"!!document.querySelector('tr[data-session=\"{session}\"]')", "the run in the list")
    row = await page.js(f"document.querySelector('tr[data-session=\"{session}\"]').textContent")
    assert "LiveShapes" in row and "completed" in row
    await page.fill("#filter-status", "failed")  # the filter form: by GeckoStatus, through the page
    await page.js("document.querySelector('#filters').requestSubmit()")
    await page.wait_for("location.search.includes('status=failed') && document.body.getAttribute('data-loaded')")
    assert not await page.js(f"!!document.querySelector('tr[data-session=\"{session}\"]')")


async def test_a_waiting_run_is_answered_from_the_page(live, tmp_path):
    url, page = live
    session = f"live-ask-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.ask.start("gecko", session_id=session)
    await _waiting(handle)
    await page.open(f"{url}/runs/{session}")
    await page.wait_for("!!document.querySelector('[data-waiting=\"Review\"]')", "the waiting card")
    assert (await page.statuses())["Review"] == "waiting"
    card = await page.js("document.querySelector('[data-waiting=\"Review\"]').textContent")
    assert pipelines.PROMPT in card  # the prompt, its markup shown as text
    assert "a draft about gecko" in card  # the node's input
    await page.screenshot(_shots(tmp_path) / "waiting-run.png")

    # A bad input: the handler's message, on the page.
    await page.fill("#jump-node", "Publsh")
    await page.confirmed("#jump-go")
    message = await page.message('no node named "Publsh"', "Publish")
    assert await page.js("document.querySelector('#message').className") == "error", message
    await page.fill("#state-values", "[1, 2]")
    await page.confirmed("#state-go")
    await page.message("update_state values must be a dict")

    # A state edit, then the answer. A live update that redraws the page between typing and
    # sending keeps what was typed (it once sent an empty edit).
    await page.fill("#state-values", '{"note": "from the page"}')
    await page.js("refresh().then(() => true)")
    assert await page.js("document.querySelector('#state-values').value") == '{"note": "from the page"}'
    await page.confirmed("#state-go")
    await page.message("State edit: done")
    assert (await handle.state())["state"]["note"] == "from the page"
    await page.wait_for("!!document.querySelector('.answer-value[data-for=\"Review\"]')", "the answer form")
    await page.fill('.answer-value[data-for="Review"]', "ship it")
    await page.confirmed('.answer-go[data-for="Review"]')
    await page.message("Answer to Review: done")
    assert await handle.result() == {"answer": "ship it", "note": "from the page"}
    await page.wait_for(
        "document.querySelector('[data-node=\"Publish\"]').getAttribute('data-status') === 'completed'",
        "Publish completed, live",
    )


async def test_a_jump_from_the_page_takes_effect(live):
    url, page = live
    session = f"live-jump-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.ask.start("gecko", session_id=session)
    await _waiting(handle)
    await page.open(f"{url}/runs/{session}")
    await page.wait_for("!!document.querySelector('#jump-node')", "the jump form")
    await page.fill("#jump-node", "Other")
    await page.fill("#jump-input", '{"why": "the page"}')
    await page.confirmed("#jump-go")
    await page.message("Jump: done")
    state = await handle.state()
    assert [j["node"] for j in state["pending_jumps"]] == ["Other"], state
    await handle.answer("Review", "ok")
    assert await handle.result() == {"jumped": {"why": "the page"}, "note": None}
    state = await handle.state()
    assert "Other" in state["completed"] and "Publish" not in state["completed"]
    await page.wait_for(
        "document.querySelector('[data-node=\"Other\"]').getAttribute('data-status') === 'completed'",
        "Other completed",
    )
    assert (await page.statuses())["Publish"] == "not_run"


async def test_an_encrypted_run_shows_no_plaintext_without_the_token(dev_server, tmp_path, monkeypatch):
    secret = "sk-live-" + uuid.uuid4().hex
    token = uuid.uuid4().hex
    queue = f"live-secret-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    monkeypatch.setenv("GECKO_ENCRYPTION_KEY", "k1:" + base64.b64encode(os.urandom(32)).decode())
    worker = await asyncio.to_thread(_worker, dev_server.address, queue, tmp_path / "worker.log", "secret")
    ui = browser = session = None
    try:
        session_id = f"live-secret-{uuid.uuid4().hex[:6]}"
        handle = await pipelines.secret.start({"api_key": secret}, session_id=session_id)
        assert (await handle.result()) == {"echo": secret}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        ui, url = await _start_ui(env, "--token", token)
        browser, session, page = await _open_browser(tmp_path)
        page.__class__ = LivePage
        await page.call("Page.enable")

        await page.open(f"{url}/runs/{session_id}")
        await page.wait_for("!!document.querySelector('#hidden-note')", "the hidden note")
        statuses = await page.statuses()
        assert statuses == {"login": "completed", "call": "completed"}, statuses
        await page.press_node("call")
        await page.wait_for("document.querySelector('#node-detail').textContent.includes('hidden')", "node detail")
        for where in (await page.html(), await page.text()):
            assert secret not in where and secret[-12:] not in where
        async with aiohttp.ClientSession() as s:  # the API itself, not only what the page draws
            for path in (f"/api/runs/{session_id}", f"/api/runs/{session_id}/node?name=login", "/api/runs"):
                async with s.get(url + path) as r:
                    assert secret[-12:] not in await r.text(), path
            async with s.get(f"{url}/api/runs/{session_id}") as r:
                shown = await r.json()
                assert shown["encrypted"] and not shown["values_allowed"] and shown["state"]["hidden"]
            async with s.post(
                f"{url}/api/runs/{session_id}/cancel", json={}, headers={"X-Gecko-UI": "1"}
            ) as r:  # writes need the token too
                assert r.status == 401

        await page.open(f"{url}/runs/{session_id}?token={token}")  # with the token: the values
        await page.wait_for(f"document.body.innerText.includes({json.dumps(secret)})", "the secret, with the token")
    finally:
        await _close(session, browser, ui, worker)


async def test_a_failed_node_shows_failed_and_a_rewind_and_a_cancel_from_the_page(live):
    from gecko_temporal.core.errors import NodeError

    url, page = live
    session = f"live-fail-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.failing.start("x", session_id=session)
    with pytest.raises(NodeError):
        await handle.result()
    await page.open(f"{url}/runs/{session}")
    await page.wait_for(
        "(document.querySelector('[data-node=\"Boom\"]') || {getAttribute: () => ''}).getAttribute('data-status') === 'failed'",
        "Boom failed",
    )
    assert (await page.statuses()) == {"Start": "completed", "Boom": "failed"}

    # Rewind a finished run to its first step from the page: a new run waits at Review again.
    session = f"live-rewind-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.ask.start("gecko", session_id=session)
    await _waiting(handle)
    await handle.answer("Review", "first")
    assert (await handle.result())["answer"] == "first"
    await page.open(f"{url}/runs/{session}")
    await page.wait_for("!!document.querySelector('.rewind-go[data-step=\"1\"]')", "the rewind button of step 1")
    await page.confirmed('.rewind-go[data-step="1"]')
    await page.message("Rewind to step 1: done")
    for _ in range(100):
        state = await handle.state()
        if state["status"] == "waiting":
            break
        await asyncio.sleep(0.2)
    assert state["status"] == "waiting" and state["rewound_from"]["step"] == 1, state

    # Cancel it from the page.
    await page.open(f"{url}/runs/{session}")
    await page.wait_for("!!document.querySelector('#cancel-go') && !document.querySelector('#cancel-go').disabled")
    await page.confirmed("#cancel-go")
    await page.message("Cancel: done")
    for _ in range(100):
        described = await handle.temporal_handle.describe()
        if described.status and described.status.name == "CANCELED":
            break
        await asyncio.sleep(0.2)
    assert described.status.name == "CANCELED"
    await page.wait_for("document.querySelector('[data-run-status]').getAttribute('data-run-status') === 'canceled'")


async def test_an_interrupt_shows_its_payload_and_is_answered_from_the_page(live):
    url, page = live
    session = f"live-interrupt-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.interrupting.start("gecko", session_id=session)
    for _ in range(200):
        if (await handle.state())["status"] == "waiting":
            break
        await asyncio.sleep(0.1)
    await page.open(f"{url}/runs/{session}")
    await page.wait_for("!!document.querySelector('[data-waiting=\"Judge\"] .payload')", "the interrupt payload")
    assert (await page.statuses())["Judge"] == "waiting"
    payload = await page.js("document.querySelector('[data-waiting=\"Judge\"] .payload').textContent")
    assert "publish <script>?" in payload and "a draft about gecko" in payload
    await page.fill('.answer-value[data-for="Judge"]', '{"ok": true}')
    await page.confirmed('.answer-go[data-for="Judge"]')
    await page.message("Answer to Judge: done")
    assert await handle.result() == {"verdict": {"ok": True}}


async def test_gecko_ui_on_the_embedded_default_prints_the_page_that_answers_the_run(tmp_path):
    """`gecko-temporal run` on the embedded default with GECKO_UI=1 prints the run's live page; the
    page (served by that process, beside its embedded worker) answers the run, and the command ends."""
    import re

    from tests.pipelines.procs import Procs

    procs = Procs(tmp_path)
    browser = session = None
    try:
        sid = f"live-embedded-{uuid.uuid4().hex[:6]}"
        env = {"GECKO_UI": "1", "GECKO_ENCRYPTION_KEY": "", "GECKO_PAYLOAD_STORE": ""}
        run = procs.command("run", "tests.pipelines.live_page:ask", "--input", '"gecko"', "--session", sid, env=env)
        await asyncio.to_thread(run.wait_for, f"Live page for {sid}: http://127.0.0.1:")
        url = re.search(rf"Live page for {sid}: (\S+)", run.output()).group(1)
        browser, session, page = await _open_browser(tmp_path)
        page.__class__ = LivePage
        await page.call("Page.enable")
        await page.open(url)
        await page.wait_for("!!document.querySelector('.answer-value[data-for=\"Review\"]')", "the answer form")
        assert await page.js("!!document.querySelector('#temporal-link')")  # the embedded server's own UI
        await page.fill('.answer-value[data-for="Review"]', "from the embedded page")
        await page.confirmed('.answer-go[data-for="Review"]')
        await page.message("Answer to Review: done")
        assert await asyncio.to_thread(run.popen.wait, 120) == 0, run.output()
        assert '"answer": "from the embedded page"' in run.output()
    finally:
        if session is not None:
            await session.close()
        if browser is not None:
            browser.terminate()
            browser.wait(10)
        procs.close()


async def test_dev_ui_serves_the_live_page_beside_the_temporal_ui(tmp_path):
    import re
    import socket

    from tests.pipelines.procs import Procs

    procs = Procs(tmp_path)
    # The page's own port (the dev server's + 1001) is held, as any outgoing connection may hold a
    # port in that range (CI lost a run to it): the page goes to a free port and says which.
    held = socket.socket()
    try:
        while True:
            port = free_port()
            try:
                held.bind(("127.0.0.1", port + 1001))
                break
            except OSError:
                continue
        held.listen()
        dev = procs.command(
            "dev",
            "tests.pipelines.live_page:ask",
            "--port",
            str(port),
            "--db-filename",
            str(tmp_path / "dev.db"),
            "--ui",
        )
        await asyncio.to_thread(dev.wait_for, "worker ready")
        shown = re.search(r"live page: (http://127\.0\.0\.1:(\d+))", dev.output())
        assert shown is not None and int(shown.group(2)) != port + 1001, dev.output()
        async with aiohttp.ClientSession() as s, s.get(f"{shown.group(1)}/api/runs") as r:
            assert r.status == 200
            answer = await r.json()
        assert answer["runs"] == [] and answer["temporal_ui"] == f"http://127.0.0.1:{port + 1000}"
    finally:
        held.close()
        procs.close()


async def test_a_subgraphs_inner_nodes_show_the_child_runs_statuses(live):
    from gecko_temporal.temporal.client import get_handle

    url, page = live
    session = f"live-nested-{uuid.uuid4().hex[:6]}"
    handle = await pipelines.nested.start("gecko", session_id=session)
    for _ in range(200):
        children = (await handle.state()).get("children") or {}
        if children:
            break
        await asyncio.sleep(0.1)
    child = await get_handle(children["Inner"])
    await _waiting(child)
    await page.open(f"{url}/runs/{session}")
    await page.wait_for(
        "(document.querySelector('[data-node=\"Inner/Ask\"]') || {getAttribute: () => ''}).getAttribute('data-status') === 'waiting'",
        "the inner node waiting",
    )
    statuses = await page.statuses()
    assert statuses["Inner"] == "running" and statuses["Inner/Prep"] == "completed", statuses
    assert await page.js("!!document.querySelector('.child-link')")
    await child.answer("Ask", "inner yes")
    assert await handle.result() == "inner yes"
