"""The hash of a node's code: one for the graph fingerprint (core/versions.py) and the node cache
(core/cache.py). Pure.

A node's *code hash* is the SHA-256 of the source text of what runs for it (its function, the class
of a callable object or agent) and of the plain module-level constants (strings, numbers, booleans)
a function reads; code with no source file (built at run time) is hashed by its bytecode, constants
and names instead, which is stable for one Python version; a builtin by its qualified name. A
``functools.partial`` adds its arguments; a decorated function (``__wrapped__``) is hashed as the
function it wraps. Other code a node calls (helpers, libraries) is not part of it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _code_bytes(code: Any) -> bytes:
    """A code object's bytecode, constants (nested code too) and names: its identity without a source file."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if inspect.iscode(const) else repr(const).encode())
    return b"\0".join(parts)


_hashes: dict[Any, str] = {}  # code object or class -> its hash: one function serves many nodes


def code_hash(obj: Any) -> str:
    """The SHA-256 of what ``obj`` runs: its source text, else its bytecode (see the module doc)."""
    try:
        target = inspect.unwrap(obj) if callable(obj) else obj
    except ValueError:  # a cycle of __wrapped__: the object itself
        target = obj
    function = getattr(target, "__func__", target)
    known: Any = getattr(function, "__code__", None)
    if known is not None:  # one code object in two modules reads two sets of globals
        known = (known, id(getattr(function, "__globals__", None)))
    elif not isinstance(target, functools.partial) and not inspect.isbuiltin(target):
        known = target if inspect.isclass(target) else type(target)  # an object: its class's code
    if known is not None and known in _hashes:
        return _hashes[known]
    found = _code_hash(target)
    code = getattr(function, "__code__", None)
    if code is not None:  # the plain constants it reads from its module (a TAG = "v2" changes it)
        constants = _global_constants(code, getattr(function, "__globals__", {}))
        if constants:
            found = _sha(found + repr(constants))
    if known is not None:
        _hashes[known] = found
    return found


_CONSTANT_TYPES = (str, int, float, bool, bytes, type(None))


def _global_constants(code: Any, globals_: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of each module-level str/number/bool/bytes/None the code (nested code too) reads."""
    names: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        names.extend(current.co_names)
        stack.extend(c for c in current.co_consts if inspect.iscode(c))
    return [(n, globals_[n]) for n in sorted(set(names)) if n in globals_ and isinstance(globals_[n], _CONSTANT_TYPES)]


def _code_hash(target: Any) -> str:
    if isinstance(target, functools.partial):  # the function it calls, and its arguments
        return _sha(code_hash(target.func) + repr(target.args) + repr(target.keywords))
    if inspect.isbuiltin(target):  # len, math.sqrt: no source, no bytecode, but a name
        return _sha(f"{target.__module__}.{target.__qualname__}")
    if not (inspect.isfunction(target) or inspect.ismethod(target) or inspect.isclass(target)):
        target = type(target)  # a callable object or an agent: its class's code
    try:
        source = inspect.getsource(target)
        code = getattr(target, "__code__", None)
        if code is not None and code.co_name == "<lambda>":  # its source is its whole line: tell lambdas apart
            consts = [c for c in code.co_consts if not inspect.iscode(c)]
            source += "\0" + repr(code.co_names) + repr(code.co_varnames) + repr(consts)
        return _sha(source)
    except (OSError, TypeError, ValueError):
        code = getattr(getattr(target, "__func__", target), "__code__", None)
        if code is not None:
            return _sha(_code_bytes(code))
        return _sha(f"{target.__module__}.{target.__qualname__}")  # a function, method or class here
