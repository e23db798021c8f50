"""A too-long pipeline name is not 'no search attributes'; a refusal is re-checked later (issue 28)."""

from temporalio.service import RPCError, RPCStatusCode

from gecko_temporal.temporal import visibility


def _refusal(message: str) -> RPCError:
    return RPCError(message, RPCStatusCode.INVALID_ARGUMENT, b"")


def test_a_value_too_big_is_cut_to_fit_the_limit_the_server_names():
    # the dev server's words, measured: a 2100-character name
    exc = _refusal("search attribute GeckoPipeline value size 2102 exceeds size limit 2048")
    cut = visibility._fitting("é" * 2100, exc)
    assert cut is not None and cut.endswith("...") and len(cut.encode()) + 2 <= 2048


def test_a_missing_attribute_is_not_taken_for_a_size_refusal():
    exc = _refusal("Namespace default has no mapping defined for search attribute GeckoPipeline")
    assert visibility._missing_attribute(exc) and visibility._fitting("p", exc) is None


async def test_starts_without_attributes_try_them_again_after_a_while(monkeypatch):
    calls = []

    class Client:
        async def start_workflow(self, *args, **kwargs):
            calls.append("search_attributes" in kwargs)
            if "search_attributes" in kwargs and len(calls) < 4:
                raise _refusal("Namespace default has no mapping defined for search attribute GeckoPipeline")
            return "started"

    class Spec:
        name, nodes, entry = "P", [], "a"

    now = [1000.0]
    monkeypatch.setattr(visibility.time, "monotonic", lambda: now[0])
    client = Client()
    assert await visibility.start_with_metadata(client, Spec(), "s", '"x"') == "started"  # tried, refused, without
    assert await visibility.start_with_metadata(client, Spec(), "s", '"x"') == "started"  # within a minute: without
    assert calls == [True, False, False]
    now[0] += visibility.RECHECK_AFTER
    assert await visibility.start_with_metadata(client, Spec(), "s", '"x"') == "started"  # registered since
    assert await visibility.start_with_metadata(client, Spec(), "s", '"x"') == "started"
    assert calls == [True, False, False, True, True] and id(client) not in visibility._without_attributes
