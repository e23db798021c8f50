"""Pipelines whose nodes make side effects through ``context.once`` (tests/integration/test_effects.py).

Every effect appends ``<effect> <pid>`` to the file named by GECKO_EFFECT_LOG, and every node start
appends ``run:<node> <pid>``, so a test counts how often an effect ran against how often its node
ran, across attempts, worker processes and interrupt re-runs.
"""

from __future__ import annotations

import asyncio
import os
import signal

from gecko_temporal import Workflow, step


def log(event: str) -> str:
    with open(os.environ["GECKO_EFFECT_LOG"], "a") as f:
        f.write(f"{event} {os.getpid()}\n")
    return event


def _first_time(name: str) -> bool:
    """True the first time it is asked for ``name`` in this log's test (a marker file beside the log)."""
    marker = f"{os.environ['GECKO_EFFECT_LOG']}.{name}"
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def send_invoice(order: str) -> dict:
    log("invoice")
    return {"invoice": f"INV-{order}", "pid": os.getpid()}


async def charge_card(order: str) -> dict:
    await asyncio.sleep(0)
    log("charge")
    return {"charge": f"CH-{order}"}


# -- an exception after the effect, on the first attempt: sync, async and local nodes ------------
def sync_fails(order: str, context) -> dict:
    log("run:sync")
    sent = context.once("invoice", send_invoice, order)
    if _first_time("sync"):
        raise RuntimeError("the mail server hung up after the invoice went out")
    return {"sent": sent, "key": context.idempotency_key("invoice")}


async def async_fails(order: str, context) -> dict:
    log("run:async")
    charged = await context.once("charge", charge_card, order)
    if _first_time("async"):
        raise RuntimeError("the response was lost after the card was charged")
    return {"charged": charged, "key": context.idempotency_key("charge")}


def local_fails(order: str, context) -> dict:
    log("run:local")
    sent = context.once("ticket", lambda o: {"ticket": log("ticket") and f"T-{o}"}, order)
    if _first_time("local"):
        raise RuntimeError("the ticket system timed out after opening the ticket")
    return {"ticket": sent}


def gather(results: dict) -> dict:
    return results


fails = Workflow("EffectsRetry")
fails.add_node("start", lambda order: order)
fails.add_node("sync", sync_fails, retries=3)
fails.add_node("async", async_fails, retries=3)
fails.add_node("local", local_fails, retries=3, local=True)
fails.add_node("gather", gather)
for name in ("sync", "async", "local"):
    fails.add_edge("start", name).add_edge(name, "gather")
fails.set_entry_point("start")


# -- the worker dies right after once returned -------------------------------------------------
@step(name="notify", heartbeat_timeout=2)
def notify(order: str, context) -> dict:
    log("run:notify")
    sent = context.once("invoice", send_invoice, order)
    if _first_time("kill"):
        os.kill(os.getpid(), signal.SIGKILL)  # a crash right after the effect's record landed
    return {"sent": sent, "finished_by": os.getpid()}


crash = Workflow("EffectsCrash")
crash.add_node("notify", notify).set_entry_point("notify")


# -- once, then two interrupts answered --------------------------------------------------------
def approve(order: str, context) -> dict:
    log("run:approve")
    ticket = context.once("ticket", send_invoice, order)
    first = context.interrupt({"question": "ship it?", "ticket": ticket})
    second = context.interrupt({"question": "really?", "first": first})
    return {"ticket": ticket, "answers": [first, second]}


people = Workflow("EffectsPeople")
people.add_node("approve", approve).set_entry_point("approve")
