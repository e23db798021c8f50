"""The pure parts of context.once, idempotency keys and node caching, and the file records they use."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import inspect
import os

import pytest

from gecko_temporal import CachePolicy, EffectError, ExecutionStrategy, GraphError, Team, WaitForInput, Workflow, step
from gecko_temporal.core.cache import cache_key, code_fingerprint, entry_bytes, entry_output, node_group, refusal
from gecko_temporal.core.code_hash import code_hash
from gecko_temporal.core.context import WorkflowContext
from gecko_temporal.core.effects import Effects, EffectScope
from gecko_temporal.temporal.effects import FileRecords
from gecko_temporal.temporal.payloads import GeckoCodec, parse_keys
from tests.pipelines.core_parts import MemoryRecords, node_context

SCOPE = EffectScope("run-1", "sess", "Pay", 3)


def _attempt(store, scope: EffectScope = SCOPE) -> Effects:
    """Effects of one attempt (a new object per attempt, as a retried activity builds it)."""
    return Effects(scope, store)


# -- idempotency keys ---------------------------------------------------------------------------------
def test_an_idempotency_key_is_stable_per_execution_and_name_and_differs_otherwise():
    key = SCOPE.idempotency_key("charge")
    assert key == EffectScope("run-1", "sess", "Pay", 3).idempotency_key("charge")
    assert key.startswith("gecko-") and len(key) == 44
    others = {
        SCOPE.idempotency_key(""),
        SCOPE.idempotency_key("refund"),
        EffectScope("run-2", "sess", "Pay", 3).idempotency_key("charge"),  # the session id used again
        EffectScope("run-1", "sess2", "Pay", 3).idempotency_key("charge"),
        EffectScope("run-1", "sess", "Ship", 3).idempotency_key("charge"),
        EffectScope("run-1", "sess", "Pay", 4).idempotency_key("charge"),  # another step or Send instance
        EffectScope("run-1", "sess", "Pay", 3, member=0).idempotency_key("charge"),
        EffectScope("run-1", "sess", "Pay", 3, member=1).idempotency_key("charge"),
    }
    assert key not in others and len(others) == 8
    with pytest.raises(EffectError, match="takes a str name, got int"):
        SCOPE.idempotency_key(3)  # type: ignore[arg-type]


# -- once ---------------------------------------------------------------------------------------------
def test_once_calls_fn_once_across_attempts_and_returns_the_recorded_result():
    store, calls = MemoryRecords(), []

    def send(to: str, *, subject: str) -> tuple:
        calls.append(to)
        return (to, subject)

    first = _attempt(store).once("mail", send, ("ada",), {"subject": "hi"})
    assert first == ["ada", "hi"]  # as JSON gives it back, the same on every attempt
    assert _attempt(store).once("mail", send, ("bob",), {"subject": "other"}) == ["ada", "hi"]
    effects = _attempt(store)
    assert effects.once("mail", send, ("x",), {"subject": "y"}) == ["ada", "hi"]
    assert effects.once("other", send, ("cy",), {"subject": "z"}) == ["cy", "z"]  # another key runs
    assert calls == ["ada", "cy"]
    # Another node execution (another step) has its own records.
    assert _attempt(store, EffectScope("run-1", "sess", "Pay", 4)).once("mail", send, ("dee",), {"subject": "s"}) == [
        "dee",
        "s",
    ]
    assert calls == ["ada", "cy", "dee"]


def test_a_raising_fn_records_nothing_so_the_next_attempt_calls_it_again():
    store, calls = MemoryRecords(), []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("down")
        return "ok"

    with pytest.raises(ConnectionError):
        _attempt(store).once("call", flaky, (), {})
    assert store.records == {}
    assert _attempt(store).once("call", flaky, (), {}) == "ok"
    assert _attempt(store).once("call", flaky, (), {}) == "ok" and len(calls) == 2


def test_once_with_an_async_fn_is_awaited_and_recorded():
    store, calls = MemoryRecords(), []

    async def charge(amount: int) -> dict:
        calls.append(amount)
        return {"charged": amount}

    async def node() -> list:
        return [await _attempt(store).once("charge", charge, (5,), {}) for _ in range(3)]

    assert asyncio.run(node()) == [{"charged": 5}] * 3 and calls == [5]


def test_once_refuses_bad_keys_results_that_are_not_json_and_a_missing_store():
    store = MemoryRecords()
    with pytest.raises(EffectError, match="non-empty str key of at most 200"):
        _attempt(store).once("", lambda: 1, (), {})
    with pytest.raises(EffectError, match="non-empty str key"):
        _attempt(store).once(7, lambda: 1, (), {})  # type: ignore[arg-type]
    with pytest.raises(EffectError, match="fn must be callable"):
        _attempt(store).once("k", "not callable", (), {})  # type: ignore[arg-type]
    with pytest.raises(EffectError, match=r'result of context.once\("k"\) in node "Pay".*cannot be recorded'):
        _attempt(store).once("k", object, (), {})
    missing = Effects(SCOPE, None, "set GECKO_PAYLOAD_STORE=file:///dir")
    calls = []
    with pytest.raises(EffectError, match=r'node "Pay": context.once\("k", ...\) cannot record.*GECKO_PAYLOAD_STORE'):
        missing.once("k", calls.append, (1,), {})
    assert calls == []  # refused before the effect


def _context(effects: Effects | None) -> WorkflowContext:
    return node_context(node="Pay", step=1, effects=effects)


def test_the_context_methods_use_the_node_executions_records():
    store = MemoryRecords()
    assert _context(Effects(SCOPE, store)).once("k", lambda a, b=0: a + b, 1, b=2) == 3
    assert _context(Effects(SCOPE, store)).once("k", lambda a, b=0: 99, 1) == 3
    assert _context(Effects(SCOPE, store)).idempotency_key("x") == SCOPE.idempotency_key("x")
    with pytest.raises(EffectError, match="works only while the node runs on a worker"):
        _context(None).once("k", print)


# -- cache: policy, refusals, keys ------------------------------------------------------------------
def test_cache_policies_are_checked():
    assert CachePolicy(ttl=1.5).key is None
    for bad in (0, -1, True, float("inf"), "60"):
        with pytest.raises(GraphError, match="must be a positive number of seconds"):
            CachePolicy(ttl=bad)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"key=\.\.\.\) must be a function"):
        CachePolicy(ttl=1, key="model")  # type: ignore[arg-type]


def test_caching_is_refused_where_the_key_cannot_cover_the_output():
    wf = Workflow("Refusals")
    with pytest.raises(GraphError, match=r'node "Ask": cache= cannot cache a WaitForInput'):
        wf.add_node("Ask", WaitForInput("ok?"), cache=CachePolicy(ttl=60))
    race = Team([lambda x: x, lambda x: x], ExecutionStrategy.RACE)
    with pytest.raises(GraphError, match=r'node "Race": cache= cannot cache a RACE Team: its output is whichever'):
        wf.add_node("Race", race, cache=CachePolicy(ttl=60))
    with pytest.raises(GraphError, match="not supported on a Team"):
        wf.add_node("All", Team([lambda x: x]), cache=CachePolicy(ttl=60))
    with pytest.raises(GraphError, match=r"needs reads=\[\.\.\.\] on a node that takes context"):
        wf.add_node("Reader", lambda x, context: context.state["k"], cache=CachePolicy(ttl=60))
    with pytest.raises(GraphError, match=r"cache takes a CachePolicy\(ttl=SECONDS, key=None\), got 60"):
        wf.add_node("Bad", lambda x: x, cache=60)
    with pytest.raises(GraphError, match="apply to function nodes only"):
        wf.add_node("Sub", Workflow("Child").add_node("a", lambda x: x).set_entry_point("a"), cache=CachePolicy(ttl=1))
    assert list(wf.node_table()) == []  # nothing refused stayed in the graph
    wf.add_node("Reader", lambda x, context: context.state["k"], cache=CachePolicy(ttl=60), reads=["k"])

    @step(cache=CachePolicy(ttl=5))
    def plain(x):
        return x

    wf.add_node(plain)
    assert wf.node_table()["Reader"].cache == CachePolicy(ttl=60) and wf.node_table()["plain"].cache.ttl == 5
    assert refusal("n", "function", None, None, True, None) is None  # no policy, nothing to refuse


def test_the_cache_key_covers_code_input_declared_state_history_run_input_and_the_key_function():
    base = dict(graph="G", node="N", fingerprint="f1", input_text='"duck"', state={"a": "1", "b": "2"})
    key = cache_key(**base)
    assert key == cache_key(**{**base, "state": {"b": "2", "a": "1"}})  # order does not matter
    changed = [
        {"graph": "G2"},
        {"node": "M"},
        {"fingerprint": "f2"},
        {"input_text": '"goose"'},
        {"state": {"a": "1", "b": "3"}},
        {"state": {"a": "1"}},
        {"history": {"X": "1"}},
        {"run_input": '"r"'},
        {"extra": '"gpt-5"'},
    ]
    keys = {cache_key(**{**base, **c}) for c in changed}
    assert key not in keys and len(keys) == len(changed)


def _one(x):
    return x + 1


def _two(x):
    return x + 2


def test_code_fingerprints_follow_the_code():
    assert code_fingerprint(_one) == code_fingerprint(_one)
    assert code_fingerprint(_one) != code_fingerprint(_two)
    assert code_fingerprint(_one, None) != code_fingerprint(_one, _two)  # the router counts
    lam = eval("lambda x: x * 3")  # no source file: its bytecode and constants count
    assert code_fingerprint(lam) != code_fingerprint(eval("lambda x: x * 4"))
    assert code_fingerprint(len)  # a builtin: named by its qualified name


def test_entries_expire_and_foreign_bytes_are_misses():
    data = entry_bytes("N", {"value": "1"}, expires=100.0)
    assert entry_output(data, now=99.0) == {"value": "1"}
    assert entry_output(data, now=100.0) is None
    assert entry_output(b"\xff", now=0) is None and entry_output(b'{"output": 1}', now=0) is None
    assert node_group("Embed") == node_group("Embed") != node_group("Label")


# -- the file records (the shell) -----------------------------------------------------------------------
def test_file_records_are_whole_encrypted_when_configured_and_cleared_by_node(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    records = FileRecords(str(tmp_path), GeckoCodec(parse_keys(f"k1:{key}")))
    rid = SCOPE.record_id("mail")
    records.save("effects", "", rid, b'{"secret": "card 4242"}')
    assert records.load("effects", "", rid) == b'{"secret": "card 4242"}'
    on_disk = (tmp_path / "records" / "effects" / rid[:2] / rid).read_bytes()
    assert b"4242" not in on_disk  # encrypted at rest, like history
    assert records.load("effects", "", "0" * 64) is None
    with pytest.raises(ValueError, match="malformed record name"):
        records.load("effects", "", "../../etc/passwd")
    records.save("cache", node_group("A"), "a" * 64, b"1")
    records.save("cache", node_group("A"), "b" * 64, b"2")
    records.save("cache", node_group("B"), "c" * 64, b"3")
    assert records.clear("cache", node_group("A")) == 2 and records.load("cache", node_group("B"), "c" * 64) == b"3"
    assert records.clear("cache") == 1 and records.clear("cache") == 0
    assert list((tmp_path / "records" / "effects").rglob("*.tmp")) == []


# -- formats that stored records depend on: a new release must find what the last one wrote ----------
def test_record_ids_idempotency_keys_and_cache_keys_are_stable_across_releases():
    assert SCOPE.idempotency_key("charge") == "gecko-8e2c908ea4b2e93c3f2accdce8fbd2f4953f08"
    assert SCOPE.idempotency_key() == "gecko-f839e941d094d90ae2ce82afae8cac54a90226"
    assert EffectScope("run-1", "sess", "Pay", 3, member=0).idempotency_key() == (
        "gecko-29bcc13ec8eab8c4f2dfee684cfc4167bc3726"
    )
    assert SCOPE.record_id("mail") == "f34a40e63ed4396383f2037d56d1a98be7d141772cabc282e0a8f31ecbed49f1"
    assert SCOPE.record_id("mail") != SCOPE.idempotency_key("mail")[6:]  # a key never reveals a record id
    key = cache_key(
        graph="G",
        node="N",
        fingerprint="f1",
        input_text='"café"',
        state={"b": "2", "a": "1"},
        history={"X": "1"},
        run_input='"r"',
        extra="7",
    )
    assert key == "5cb98e7bf128243b666cee58c41f8efff27db7d36796e87a59ceabbf0b08fef4"
    assert node_group("Embed") == "n7512561d2f685534f3a83998"
    assert entry_bytes("N", {"value": "1"}, 100.0) == b'{"expires": 100.0, "node": "N", "output": {"value": "1"}}'


def test_once_keeps_an_attempts_own_results_and_reads_a_record_once():
    store, calls = MemoryRecords(), []
    effects = _attempt(store)
    assert effects.once("k", lambda: calls.append(1) or "first", (), {}) == "first"
    store.records.clear()  # even if the store lost it, this attempt keeps its own result
    assert effects.once("k", lambda: calls.append(2) or "second", (), {}) == "first" and calls == [1]
    store.save("effects", "", SCOPE.record_id("r"), b'"kept"')
    effects = _attempt(store)
    assert effects.recorded("r") == (True, "kept")
    store.records.clear()
    assert effects.recorded("r") == (True, "kept")  # read once per attempt
    assert effects.recorded("never") == (False, None)


def test_once_awaits_what_an_fn_returns_when_it_is_awaitable():
    store = MemoryRecords()

    class Notifier:
        def __init__(self) -> None:
            self.sent: list[tuple] = []

        async def __call__(self, to: str, *, channel: str) -> str:
            self.sent.append((to, channel))
            return f"{channel}:{to}"

    notify = Notifier()

    async def later(text: str) -> str:
        return text

    async def node() -> list:
        return [
            await _attempt(store).once("notify", notify, ("ada",), {"channel": "sms"}),
            await _attempt(store).once("notify", notify, ("bob",), {"channel": "mail"}),
        ]

    assert asyncio.run(node()) == ["sms:ada", "sms:ada"]
    assert notify.sent == [("ada", "sms")]
    # A sync function that returns a coroutine: a later attempt could not know to give an awaitable.
    with pytest.raises(EffectError, match=r'context.once\("made", fn\): fn returned an awaitable; pass an async'):
        _attempt(store).once("made", lambda: later("made"), (), {})
    assert _attempt(store).recorded("made") == (False, None)


def test_once_messages_name_the_node_the_key_and_the_fix():
    store = MemoryRecords()
    assert _attempt(store).once("k" * 200, lambda: 1, (), {}) == 1  # 200 characters is allowed
    with pytest.raises(EffectError) as err:
        _attempt(store).once("k" * 201, lambda: 1, (), {})
    assert (
        str(err.value)
        == (
            'node "Pay": context.once(key, fn) takes a non-empty str key of at most 200 characters naming the '
            f'effect (e.g. "send-invoice"), got {("k" * 201)!r}'[:-123]
        )
    )
    with pytest.raises(EffectError) as err:
        _attempt(store).once("k", object, (), {})
    assert str(err.value).endswith(
        "; the effect ran but its result cannot be recorded, so a later attempt would run it again: return "
        "JSON-like data (a dict, a str, a model) from the function"
    )
    with pytest.raises(EffectError) as err:
        Effects(SCOPE, None).once("k", print, (), {})
    assert (
        str(err.value) == 'node "Pay": context.once("k", ...) cannot record its result: this worker has no record store'
    )
    store.save("effects", "", SCOPE.record_id("bad"), b"\xff\xfe")
    with pytest.raises(EffectError) as err:
        _attempt(store).once("bad", print, (), {})
    assert str(err.value) == (
        'node "Pay": the record of context.once("bad") is not UTF-8 JSON (was it written by another tool?); '
        "delete it to run the effect again"
    )


def test_the_refusals_say_exactly_what_is_wrong():
    policy = CachePolicy(ttl=60)
    assert refusal("n", "function", None, 60, False, None) == (
        'node "n": cache= takes a CachePolicy(ttl=SECONDS, key=None), got int 60'
    )
    assert refusal("n", "team", object(), policy, False, None) == (
        'node "n": cache= is not supported on a Team; wrap the work in a function node and cache that'
    )
    assert refusal("n", "team", Team([print], ExecutionStrategy.RACE), policy, False, None) == (
        'node "n": cache= cannot cache a RACE Team: its output is whichever member finished first, not a '
        "function of its input; cache a function node instead"
    )
    assert refusal("n", "subgraph", None, policy, False, None) == (
        'node "n": cache= is not supported on a subgraph; cache nodes inside it'
    )
    assert refusal("n", "function", None, policy, True, None) == (
        'node "n": cache= needs reads=[...] on a node that takes context: the cache key covers only the state '
        "keys it declares, so undeclared reads could return a stale output (declare reads=[] if it reads none)"
    )
    assert refusal("n", "function", None, policy, True, ()) is None
    assert refusal("n", "function", None, policy, False, None) is None
    assert CachePolicy(ttl=1, key=lambda data, context: data).key is not None


def _decorated(fn):
    @functools.wraps(fn)
    def call(*args):
        return fn(*args)

    return call


class _Agent:
    def run(self, x):
        return x


def test_code_fingerprints_cover_partials_decorators_methods_objects_and_nested_code():
    # The format, pinned: the hash of the node code hashes (core/code_hash.py, the graph fingerprint's
    # too), each the SHA-256 of the function's source when it reads no module constants.
    one, two = (hashlib.sha256(inspect.getsource(f).encode()).hexdigest() for f in (_one, _two))
    assert code_hash(_one) == one
    assert code_fingerprint(_one) == hashlib.sha256(one.encode()).hexdigest()
    assert code_fingerprint(_one, _two) == hashlib.sha256(f"{one}\x1e{two}".encode()).hexdigest()
    assert code_fingerprint(_one, None) == hashlib.sha256(f"{one}\x1e".encode()).hexdigest()
    assert code_fingerprint(functools.partial(_one, 1)) != code_fingerprint(functools.partial(_one, 2))
    assert code_fingerprint(functools.partial(_one, x=1)) != code_fingerprint(functools.partial(_one, x=2))
    assert code_fingerprint(functools.partial(_one, 1)) != code_fingerprint(functools.partial(_two, 1))
    assert code_fingerprint(_decorated(_one)) != code_fingerprint(_decorated(_two))
    assert code_fingerprint(_Agent().run) == code_fingerprint(_Agent.run)  # a method: its function
    assert code_fingerprint(_Agent()) == code_fingerprint(_Agent)  # an object: its class
    assert code_fingerprint(len) != code_fingerprint(print)
    outer = "def f(x):\n    return (lambda y: y + {n})(x)\n"
    first, second = {}, {}
    exec(outer.format(n=1), first)
    exec(outer.format(n=2), second)
    assert code_fingerprint(first["f"]) != code_fingerprint(second["f"])  # a nested function's constant

    def looped():
        return 1

    looped.__wrapped__ = looped  # a cycle of decorators ends
    assert code_fingerprint(looped)


def test_entries_that_are_not_ours_are_misses():
    assert entry_output(b"[1]", now=0) is None
    assert entry_output(b'{"output": {"value": "1"}, "expires": true}', now=0) is None
    assert entry_output(b'{"output": {"value": "1"}, "expires": "later"}', now=0) is None
    assert entry_output(b'{"output": {"value": "1"}, "expires": 5}', now=0) == {"value": "1"}
