"""A reducer of the user's own (``Workflow(reducers={key: fn})``): which functions a worker can import
by name, the JSON it leaves in the state, and the errors that name the reducer, key and node."""

from __future__ import annotations

import pytest

from gecko_temporal.core.state import (
    CUSTOM_REDUCERS,
    ReducerError,
    StateDelta,
    after_own_writes,
    custom_reducer,
    merge_layer,
    reduce_value,
)

NO_NAME = (
    "has no qualified name a worker can import it by (a lambda or a nested function); "
    "define the reducer at module level"
)


def keep_last_two(old, new):
    return ([*(old or []), new])[-2:]


class Reducers:
    @staticmethod
    def longest(old, new):
        return new if old is None or len(new) > len(old) else old

    class Nested:
        @staticmethod
        def words(old, new):
            return {"text": f"{(old or {}).get('text', '')}{new}", "note": "café ✓", "n": [1, 2.5]}


def nan_reducer(old, new):
    return float("nan")


def failing_reducer(old, new):
    raise ValueError(f"cannot combine {old!r} and {new!r}")


class CallableThing:
    def __call__(self, old, new):
        return new


class NamedValue:
    """Not callable, though named like a function."""

    def __init__(self) -> None:
        self.__qualname__ = "NamedValue"


def test_a_module_level_function_is_registered_by_its_qualified_name():
    assert custom_reducer(keep_last_two) == (f"{__name__}:keep_last_two", None)
    assert CUSTOM_REDUCERS[f"{__name__}:keep_last_two"] is keep_last_two
    assert custom_reducer(Reducers.longest) == (f"{__name__}:Reducers.longest", None)


def test_a_reducer_named_by_text_is_imported_through_nested_names():
    name = f"{__name__}:Reducers.Nested.words"
    assert custom_reducer(name) == (name, None)
    assert CUSTOM_REDUCERS[name] is Reducers.Nested.words


def test_a_name_that_cannot_be_imported_says_what_failed():
    assert custom_reducer("no_such_module_here:fn") == (
        None,
        "cannot import 'no_such_module_here:fn' (ModuleNotFoundError: No module named 'no_such_module_here')",
    )
    assert custom_reducer(f"{__name__}:Reducers.missing") == (
        None,
        f"cannot import '{__name__}:Reducers.missing' (AttributeError: type object 'Reducers' has no attribute "
        "'missing')",
    )
    # the module is what comes before the first colon
    name, why = custom_reducer(f"{__name__}:Reducers:longest")
    assert (
        name is None
        and why is not None
        and why.startswith(f"cannot import '{__name__}:Reducers:longest' (AttributeError")
    )


@pytest.mark.parametrize(
    "how",
    [lambda old, new: new, CallableThing(), [].append, NamedValue(), 5],
    ids=["lambda", "callable-object", "builtin-method", "not-callable", "number"],
)
def test_what_a_worker_cannot_import_by_name_is_refused_with_the_fix(how):
    assert custom_reducer(how) == (None, f"{how!r} {NO_NAME}")


def test_a_nested_function_is_refused():
    def inner(old, new):
        return new

    assert custom_reducer(inner) == (None, f"{inner!r} {NO_NAME}")


def test_a_custom_reducer_leaves_compact_unicode_json():
    name, _ = custom_reducer(Reducers.Nested.words)
    assert name is not None
    text = reduce_value(name, '{"text":"ab"}', '"c"', node="N", key="k")
    assert text == '{"text":"abc","note":"café ✓","n":[1,2.5]}'
    state = {"k": '["x"]'}
    merge_layer(state, [("A", StateDelta(writes={"k": '"y"'})), ("B", StateDelta(writes={"k": '"z"'}))],
                {"k": custom_reducer(keep_last_two)[0] or ""})  # fmt: skip
    assert state == {"k": '["y","z"]'}


def test_a_custom_reducer_that_returns_nan_fails_naming_it():
    name, _ = custom_reducer(nan_reducer)
    with pytest.raises(ReducerError) as info:
        reduce_value(name or "", "1", "2", node="Sum", key="total")
    assert (info.value.node, info.value.key) == ("Sum", "total")
    assert str(info.value).startswith(f"reducer \"{name}\" of state key 'total' raised ValueError: ")
    assert str(info.value).endswith('combining node "Sum"\'s write 2')


def test_a_custom_reducer_that_raises_fails_naming_reducer_key_node_and_write():
    name, _ = custom_reducer(failing_reducer)
    with pytest.raises(ReducerError) as info:
        reduce_value(name or "", '"old"', '"' + "n" * 100 + '"', node="Writer", key="notes")
    assert (info.value.node, info.value.key) == ("Writer", "notes")
    assert str(info.value) == (
        f"reducer \"{name}\" of state key 'notes' raised ValueError: cannot combine 'old' and '{'n' * 100}' "
        f'combining node "Writer"\'s write "{"n" * 79}...'
    )


def test_a_router_state_failure_without_a_node_name_names_none():
    with pytest.raises(ReducerError) as info:
        after_own_writes({"n": '"text"'}, StateDelta(writes={"n": "1"}), {"n": "add"})
    assert info.value.node == "" and str(info.value).startswith("node \"\" wrote state key 'n'")
