"""Building and validating graphs: every bad input is caught at build time with a clear error."""

import pytest

from gecko_temporal import GraphError, Next, Team, Workflow, WorkflowContext, step


def _fn(x):
    return x


def test_seed_quick_start_compiles_with_readable_activity_types():
    @step(name="Fetcher")
    def fetch_data(url: str):
        return url

    @step(name="Analyzer")
    async def analyze(data: dict):
        return {"result": "pass"}

    wf = Workflow(name="DataPipeline")
    wf.add_node("Fetcher", fetch_data)
    wf.add_node("Analyzer", analyze)
    wf.add_node("ErrorHandler", lambda x: print(f"Error: {x}"))
    wf.add_edge("Fetcher", "Analyzer")
    wf.set_entry_point("Fetcher")
    spec = wf.compile()
    assert spec.entry == "Fetcher"
    assert [n.activity_type for n in spec.nodes] == [
        "DataPipeline.Fetcher",
        "DataPipeline.Analyzer",
        "DataPipeline.ErrorHandler",
    ]
    assert spec.node("Fetcher").successors == ["Analyzer"]
    assert spec.node("ErrorHandler").predecessors == []


def test_add_node_takes_step_name_and_options():
    @step(name="Named", retries=1, timeout=7, local=True)
    def f(x):
        return x

    wf = Workflow("w").add_node(f).set_entry_point("Named")
    node = wf.compile().node("Named")
    assert (node.retry.maximum_attempts, node.start_to_close_timeout, node.local) == (1, 7, True)
    assert node.heartbeat_timeout is None  # local activities cannot heartbeat


def test_add_node_options_override_step_options():
    wf = Workflow("w").add_node("A", step(retries=5)(_fn), retries=2, reads=["k"]).set_entry_point("A")
    node = wf.compile().node("A")
    assert node.retry.maximum_attempts == 2 and node.reads == ["k"]


def test_parameter_injection_is_detected():
    def with_context(data, context):
        return data

    def annotated(data, ctx: WorkflowContext):
        return data

    def no_params():
        return 1

    wf = Workflow("w")
    wf.add_node("a", with_context).add_node("b", annotated).add_node("c", no_params)
    nodes = wf.nodes
    assert nodes["a"].callee.context_param == "context" and nodes["a"].callee.takes_input
    assert nodes["b"].callee.context_param == "ctx"
    assert not nodes["c"].callee.takes_input and nodes["c"].callee.context_param is None
    assert nodes["c"].callee.invoke("ignored", None) == 1


def test_agent_objects_and_callables_are_nodes():
    class Agent:
        async def run(self, prompt):
            return prompt

    class Callable:
        def __call__(self, x):
            return x

    wf = Workflow("w").add_node("agent", Agent()).add_node("call", Callable())
    assert wf.nodes["agent"].callee.is_async
    assert not wf.nodes["call"].callee.is_async


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda wf: wf.add_node("A", _fn).add_node("A", _fn), 'duplicate node "A"'),
        (lambda wf: wf.add_node("A", 42), 'node "A" must be a function'),
        (lambda wf: wf.add_node("A", lambda a, b: a), "takes 2 required positional parameters (a, b)"),
        (lambda wf: wf.add_node("A", _fn, retries=0), "retries counts attempts"),
        (lambda wf: wf.add_node("A", _fn, timeout=-1), "timeout must be a positive number"),
        (lambda wf: wf.add_node("A", _fn, colour="red"), "unknown option(s) ['colour']"),
        (lambda wf: wf.add_node("", _fn), "non-empty str name"),
    ],
)
def test_bad_nodes_fail_at_add_node(build, message):
    with pytest.raises(GraphError) as err:
        build(Workflow("w"))
    assert message in str(err.value)


def test_compile_reports_every_problem_at_once():
    wf = Workflow("w")
    wf.add_node("Fetcher", _fn).add_node("Analyzer", _fn)
    wf.add_edge("Fetcher", "Analyser").add_edge("Ghost", "Fetcher")
    wf.set_entry_point("Fetchr")
    with pytest.raises(GraphError) as err:
        wf.compile()
    problems = err.value.problems
    assert len(problems) == 3
    assert (
        'edge "Fetcher" -> "Analyser": no node named "Analyser" (did you mean "Analyzer"? valid: "Fetcher", "Analyzer")'
        in problems
    )
    assert any('no node named "Ghost"' in p for p in problems)
    assert any(
        'entry point "Fetchr" is not a node (did you mean "Fetcher"? valid: "Fetcher", "Analyzer")' in p
        for p in problems
    )
    assert "3 problems" in str(err.value)


def test_missing_entry_point_and_empty_graph():
    with pytest.raises(GraphError, match='no entry point: call set_entry_point\\("A"\\)'):
        Workflow("w").add_node("A", _fn).compile()
    with pytest.raises(GraphError, match="has no nodes"):
        Workflow("w").compile()


def test_static_cycle_is_named_and_points_to_next():
    wf = Workflow("w")
    for n in "ABC":
        wf.add_node(n, _fn)
    wf.add_edge("A", "B").add_edge("B", "C").add_edge("C", "A").set_entry_point("A")
    with pytest.raises(GraphError, match='static cycle "A" -> "B" -> "C" -> "A".*Next'):
        wf.compile()
    with pytest.raises(GraphError, match="loops on itself"):
        Workflow("w").add_node("A", _fn).add_edge("A", "A").set_entry_point("A").compile()


def test_duplicate_edge_and_bad_workflow_settings():
    wf = Workflow("w").add_node("A", _fn).add_node("B", _fn).add_edge("A", "B")
    with pytest.raises(GraphError, match='duplicate edge "A" -> "B"'):
        wf.add_edge("A", "B")
    with pytest.raises(GraphError, match="non-empty name"):
        Workflow("")
    with pytest.raises(GraphError, match="max_steps"):
        Workflow("w", max_steps=0)


def test_compiled_spec_is_cached_until_the_graph_changes():
    wf = Workflow("w").add_node("A", _fn).set_entry_point("A")
    first = wf.compile()
    assert wf.compile() is first
    wf.add_node("B", _fn).add_edge("A", "B")
    assert wf.compile().node("A").successors == ["B"]


def test_team_members_are_validated():
    with pytest.raises(GraphError, match="at least one member"):
        Team([])
    with pytest.raises(GraphError, match='Team member 0 "lambda"|Team member 0 "<lambda>"'):
        Team([lambda a, b: a])


def test_next_accepts_positional_and_keyword_forms():
    assert Next("X", 1) == Next(node="X", input=1)
    assert Next("X").input is None


def test_history_option_is_validated_and_compiled():
    wf = Workflow("w").add_node("A", _fn).add_node("B", _fn, history=["A"]).add_edge("A", "B").set_entry_point("A")
    assert wf.compile().node("B").history == ["A"]
    wf.add_node("C", _fn, history=["Z"])
    with pytest.raises(GraphError, match='node "C": history=\\[...\\] names no node "Z"'):
        wf.compile()


def test_history_limit_names_the_undeclared_node():
    from gecko_temporal.core.context import History

    history = History({"A": "1", "B": "2"}, node="C", limited_to=["A"])
    assert history["A"] == 1
    with pytest.raises(KeyError, match='node "C" read context.history\\["B"\\] but declared history=\\[\'A\'\\]'):
        history["B"]


def test_a_keyword_only_parameter_without_default_is_refused():
    def node(x, *, flag):
        return x

    def fine(x, *, flag=False, context=None):
        return x

    wf = Workflow("kw")
    with pytest.raises(GraphError, match="keyword-only parameter 'flag' has no default and would never be given"):
        wf.add_node("N", node)
    wf.add_node("Fine", fine)  # a default (or the context) is fine


def test_default_node_policies_are_the_documented_ones():
    """README: 3 attempts (1 s initial backoff, x2), 300 s per attempt, 5 s heartbeat; retries=1 disables."""

    def a(x):  # not _fn: step(retries=5)(_fn) above set options on that function object
        return x

    wf = Workflow("defaults")
    wf.add_node("A", a).add_node("B", lambda x: x, retries=1).add_edge("A", "B").set_entry_point("A")
    spec = wf.compile()
    a, b = spec.node("A"), spec.node("B")
    assert (a.retry.maximum_attempts, a.retry.initial_interval, a.retry.backoff_coefficient) == (3, 1.0, 2.0)
    assert (a.start_to_close_timeout, a.heartbeat_timeout, a.local) == (300.0, 5.0, False)
    assert b.retry.maximum_attempts == 1
    assert (spec.max_steps, spec.steps_per_run) == (10_000, 2000)  # max_steps: 5 runs of steps_per_run
