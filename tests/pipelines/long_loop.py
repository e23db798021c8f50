"""Agent loops whose history must grow with what they make (issue 22): the conversation in state,
the conversation as node input and output, and a chain that reads ``context.history``.

A node appends ``(node, pid)`` to ``$GECKO_LOOP_LOG`` when set, so a test can see which worker
process ran it."""

from __future__ import annotations

import os

from gecko_temporal import Next, Workflow

MODEL, TOOL = 2_000, 1_000  # characters each message adds


def message(role: str, turn: int, size: int) -> dict:
    return {"role": role, "turn": turn, "content": f"{role} {turn} " + "w" * size}


def conversation(turns: int) -> list[dict]:
    out = []
    for turn in range(turns):
        out.append(message("assistant", turn, MODEL))
        if turn + 1 < turns:
            out.append(message("tool", turn, TOOL))
    return out


def _log(node: str) -> None:
    path = os.environ.get("GECKO_LOOP_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{node} {os.getpid()}\n")


def _model(turns, context):
    _log("Model")
    messages = context.state.get("messages", [])
    turn = len(messages) // 2
    messages.append(message("assistant", turn, MODEL))
    context.state["messages"] = messages
    return Next("Tool", turns) if turn + 1 < turns else len(messages)


def _tool(turns, context):
    _log("Tool")
    messages = context.state["messages"]
    messages.append(message("tool", len(messages) // 2, TOOL))
    context.state["messages"] = messages
    return Next("Model", turns)


state_loop = Workflow("LinearStateLoop")
state_loop.add_node("Model", _model).add_node("Tool", _tool).set_entry_point("Model")


def _io_model(arg):
    _log("Model")
    turns, messages = arg["turns"], arg.get("messages", [])
    turn = len(messages) // 2
    messages.append(message("assistant", turn, MODEL))
    if turn + 1 < turns:
        return Next("Tool", {"turns": turns, "messages": messages})
    return messages


def _io_tool(arg):
    _log("Tool")
    arg["messages"].append(message("tool", len(arg["messages"]) // 2, TOOL))
    return Next("Model", arg)


io_loop = Workflow("LinearIOLoop")
io_loop.add_node("Model", _io_model).add_node("Tool", _io_tool).set_entry_point("Model")


def _step(steps, context):
    done = len(context.history)  # every earlier output, as a context node gets by default
    _log(f"s{done}")
    assert all(context.history[name].startswith(name) for name in context.history)
    name = f"s{done:02d}"
    return name + "x" * 20_000


def history_chain(steps: int) -> Workflow:
    wf = Workflow(f"LinearHistoryChain{steps}")
    for i in range(steps):
        wf.add_node(f"s{i:02d}", _step)
        if i:
            wf.add_edge(f"s{i - 1:02d}", f"s{i:02d}")
    return wf.set_entry_point("s00")


chain8, chain16 = history_chain(8), history_chain(16)


def io_loop_result(arg: dict) -> list[dict]:
    """What ``io_loop`` returns for ``arg``, computed here by calling its nodes in a plain loop."""
    import copy

    out, node = _io_model(copy.deepcopy(arg)), _io_tool
    while isinstance(out, Next):
        out = node(out.input)
        node = _io_model if node is _io_tool else _io_tool
    return out
