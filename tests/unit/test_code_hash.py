"""The hash of a node's code (core/code_hash.py), the one the graph fingerprint and the node cache
share: what counts, in its documented form. No server needed."""

from __future__ import annotations

import functools
import hashlib
import inspect
import math

import pytest

from gecko_temporal.core import code_hash as hashing
from gecko_temporal.core.code_hash import code_hash

TAG = "v1"
LIMIT = 3
NOT_A_CONSTANT = ["a", "list"]


@pytest.fixture(autouse=True)
def _fresh_hashes(monkeypatch):
    """Each test hashes afresh: code_hash remembers hashes per code object for the process."""
    monkeypatch.setattr(hashing, "_hashes", {})


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def plain(x):
    return x + 1


def tagged(x):
    return f"{x}-{TAG}"


def tagged_nested(x):
    def inner():
        return LIMIT

    return inner()


def reads_a_list_and_a_builtin(x):
    return NOT_A_CONSTANT + [len(x), undefined_name]  # noqa: F821 (never run)


class Agent:
    def run(self, x):
        return x


class OtherAgent:
    def run(self, x):
        return [x]


def test_a_function_is_its_source_plus_the_module_constants_it_reads():
    assert code_hash(plain) == sha(inspect.getsource(plain))
    assert code_hash(tagged) == sha(sha(inspect.getsource(tagged)) + repr([("TAG", "v1")]))
    # nested code counts too; lists, builtins and names the module lacks do not
    assert code_hash(tagged_nested) == sha(sha(inspect.getsource(tagged_nested)) + repr([("LIMIT", 3)]))
    assert code_hash(reads_a_list_and_a_builtin) == sha(inspect.getsource(reads_a_list_and_a_builtin))


def test_the_same_code_reading_other_constants_hashes_apart():
    first, second = {"TAG": "v1"}, {"TAG": "v2"}
    source = "def tagged(x):\n    return TAG\n"
    exec(source, first)
    exec(source, second)
    assert code_hash(first["tagged"]) != code_hash(second["tagged"])
    assert code_hash(first["tagged"]) == code_hash(first["tagged"])  # asked again: the same


def test_code_without_source_is_its_bytecode_names_and_constants():
    scope: dict = {}
    exec("def f(a):\n    return g(a) + 1\n", scope)
    code = scope["f"].__code__
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    parts += [repr(c).encode() for c in code.co_consts]
    assert code_hash(scope["f"]) == sha(b"\0".join(parts))
    variants = [
        "def f(a):\n    return g(a) + 2\n",  # a constant
        "def f(a):\n    return h(a) + 1\n",  # a name
        "def f(b):\n    return g(b) + 1\n",  # a variable
        "def f(a):\n    return (lambda: g(a) + 1)()\n",  # nested code
        "def f(a):\n    return (lambda: g(a) + 2)()\n",  # a constant of nested code
    ]
    hashes = {code_hash(scope["f"])}
    for source in variants:
        other: dict = {}
        exec(source, other)
        hashes.add(code_hash(other["f"]))
    assert len(hashes) == 1 + len(variants)


def test_lambdas_on_one_line_are_told_apart_by_their_code():
    first, second, third = (lambda x: x + 1), (lambda x: x + 2), (lambda y: len(y))
    line = inspect.getsource(first)
    code = first.__code__
    expected = sha(line + "\0" + repr(code.co_names) + repr(code.co_varnames) + repr(list(code.co_consts)))
    assert code_hash(first) == expected
    assert len({code_hash(first), code_hash(second), code_hash(third)}) == 3
    by_name = (lambda x: plain(x)), (lambda x: tagged(x))
    assert code_hash(by_name[0]) != code_hash(by_name[1])
    by_variable = (lambda x: 1), (lambda y: 1)
    assert code_hash(by_variable[0]) != code_hash(by_variable[1])
    nested = (lambda: lambda: 1), (lambda: lambda: 1)
    assert code_hash(nested[0]) == code_hash(nested[1])  # nested code is not a constant of the line


def test_a_partial_is_its_function_and_its_arguments():
    assert code_hash(functools.partial(plain, 1)) == sha(code_hash(plain) + repr((1,)) + repr({}))
    assert code_hash(functools.partial(plain, x=1)) == sha(code_hash(plain) + repr(()) + repr({"x": 1}))
    assert code_hash(functools.partial(plain, 1)) != code_hash(functools.partial(tagged, 1))


def test_objects_methods_classes_builtins_and_wrappers():
    assert code_hash(Agent()) == code_hash(Agent) == sha(inspect.getsource(Agent))
    assert code_hash(Agent().run) == code_hash(Agent.run) == sha(inspect.getsource(Agent.run))
    assert code_hash(Agent()) != code_hash(OtherAgent())
    assert code_hash(len) == sha("builtins.len") and code_hash(math.sqrt) == sha("math.sqrt")
    assert code_hash(print) != code_hash(len)
    dynamic = type("Dynamic", (), {"__call__": lambda self, x: x})
    assert code_hash(dynamic()) == sha(f"{__name__}.Dynamic")  # no source, no code: its name
    assert code_hash(type("Other", (), {})()) == sha(f"{__name__}.Other")

    @functools.wraps(plain)
    def wrapper(*args):
        return plain(*args)

    assert code_hash(wrapper) == code_hash(plain)  # a decorator: the function it wraps

    def looped(x):
        return x

    looped.__wrapped__ = looped  # a cycle of __wrapped__ (inspect gives up): the function's bytecode
    assert len(code_hash(looped)) == 64 and code_hash(looped) != code_hash(plain)


def test_a_class_is_its_source_asked_first_or_after_an_instance():
    assert code_hash(Agent) != code_hash(OtherAgent)  # two classes asked in turn: each its own
    assert code_hash(OtherAgent) == sha(inspect.getsource(OtherAgent))
    assert code_hash(OtherAgent()) == code_hash(OtherAgent)


class HasFuncAttribute:
    func = "not callable"

    def __call__(self, x):
        return x


class HasCallableFunc:
    func = staticmethod(plain)

    def __call__(self, x):
        return x


def test_only_a_real_partial_is_hashed_as_its_function_and_arguments():
    assert code_hash(HasFuncAttribute()) == sha(inspect.getsource(HasFuncAttribute))
    assert code_hash(HasCallableFunc()) == sha(inspect.getsource(HasCallableFunc))


def test_code_without_source_hashes_the_same_each_time_nested_code_too():
    source = "def f(a):\n    return (lambda: a + 1)()\n"
    first: dict = {}
    second: dict = {}
    exec(source, first)
    exec(source, second)
    assert code_hash(first["f"]) == code_hash(second["f"])  # not by the code objects' addresses
    second["f"].__wrapped__ = second["f"]  # a __wrapped__ cycle: hashed as the function itself
    assert code_hash(second["f"]) == code_hash(first["f"])
