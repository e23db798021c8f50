"""A run's page in the real Temporal UI, read by a real headless Chromium (skipped without one).

The dev server serves its web UI; Chromium is driven over the DevTools protocol (aiohttp's
websocket client, already installed with the dev extras). The test reads what a person sees on the
page: the summary, details and current details under "User Metadata", the search attributes, the
node activity (its type) in the event history, and the workflow list filtered by GeckoPipeline.
Screenshots go to ``tmp_path`` (or ``GECKO_UI_SCREENSHOTS``) for a person to look at.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")

from gecko_temporal.temporal.embedded import DevServer, free_port  # noqa: E402
from tests.pipelines import stream as pipelines  # noqa: E402


class Page:
    """One Chromium tab over the DevTools protocol: navigate, read the text, click, screenshot."""

    def __init__(self, ws) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params):
        n = next(self._ids)
        await self._ws.send_json({"id": n, "method": method, "params": params})
        while True:
            msg = await self._ws.receive_json(timeout=30)
            if msg.get("id") == n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def text(self) -> str:
        # The UI renders markdown (summary, details, current details) in sandboxed iframes: read them too.
        script = (
            "(() => { if (!document.body) return ''; const frames = [...document.querySelectorAll('iframe')]"
            ".map(f => { try { return f.contentDocument.body.innerText; } catch (e) { return f.srcdoc || ''; } });"
            " return [document.body.innerText, ...frames].join('\\n'); })()"
        )
        result = await self.call("Runtime.evaluate", expression=script, returnByValue=True)
        return result["result"].get("value") or ""

    async def until(self, *needles: str, tries: int = 150) -> str:
        text = ""
        for _ in range(tries):  # a failure bound only: the page renders as its API calls return
            text = await self.text()
            if all(n in text for n in needles):
                return text
            await asyncio.sleep(0.1)
        raise AssertionError(f"page never showed {needles}; it shows:\n{text[:3000]}")

    async def click(self, label: str) -> None:
        script = (
            f"(() => {{ const el = [...document.querySelectorAll('a,button,[role=tab]')]"
            f".find(e => e.innerText.trim().startsWith({json.dumps(label)})); if (el) el.click(); return !!el; }})()"
        )
        result = await self.call("Runtime.evaluate", expression=script, returnByValue=True)
        assert result["result"]["value"], f"no tab {label!r} on the page"

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


async def _open_browser(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--remote-debugging-port={port}",
            "--window-size=1400,1100",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = aiohttp.ClientSession()
    for _ in range(200):
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                tabs = [t for t in await r.json() if t.get("type") == "page"]
                if tabs:
                    ws = await session.ws_connect(tabs[0]["webSocketDebuggerUrl"], max_msg_size=0)
                    return proc, session, Page(ws)
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


@pytest.mark.long
@pytest.mark.slow
async def test_a_runs_page_in_the_temporal_ui(tmp_path, monkeypatch):
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.worker import GeckoWorker

    shots = Path(os.environ.get("GECKO_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server = DevServer(ui=True, ui_port=free_port())
    queue = f"ui-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    worker = proc = session = None
    try:
        worker = GeckoWorker(await connect(), queue)
        worker.serve(pipelines.gate)
        await worker.start()
        gate = tmp_path / "gate"
        gate.write_text("open")
        session_id = f"ui-{uuid.uuid4().hex[:6]}"
        handle = await pipelines.gate.start(str(gate), session_id=session_id)
        async for event in handle.stream():
            if event.type == "waiting":
                break

        proc, session, page = await _open_browser(tmp_path)
        await page.call("Page.enable")
        base = f"http://127.0.0.1:{server.ui_port}/namespaces/default"
        await page.call("Page.navigate", url=f"{base}/workflows/{session_id}")
        top = await page.until("GeckoWorkflow", "RUNNING", "StreamGate.Gate")  # the node's activity, in the timeline
        await page.screenshot(shots / "run-page.png")
        await page.click("User Metadata")
        meta = await page.until("StreamGate: 2 nodes, input", "Waiting for Review: Ship it?")
        await page.screenshot(shots / "run-user-metadata.png")
        assert "Pipeline StreamGate (gecko-temporal)" in meta  # the details, rendered from markdown
        assert "waiting: 1 of 2 nodes completed, step 2" in meta  # current details
        assert "Running: Review" not in meta
        await page.click("Search Attributes")
        attrs = await page.until('"GeckoPipeline": "StreamGate"', '"GeckoStatus": "waiting"')
        await page.screenshot(shots / "run-search-attributes.png")
        assert "__gecko__" not in top + meta + attrs

        await page.call("Page.navigate", url=f"{base}/workflows?query=" + "GeckoPipeline%3D%22StreamGate%22")
        await page.until(session_id)
        await page.screenshot(shots / "workflow-list.png")
        await handle.answer("Review", "yes")
        assert await handle.result() == "yes"
    finally:
        if session is not None:
            await session.close()
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        if worker is not None:
            await worker.shutdown()
        server.stop()
