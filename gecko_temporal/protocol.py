"""Every name that crosses the wire between clients, workers and the one workflow, written once.
Pure: no temporalio import. Changing one breaks running workflows and deployed clients."""

WORKFLOW_TYPE = "GeckoWorkflow"
STATE_QUERY = "gecko_state"
NEXT_SIGNAL = "gecko_next"  # a jump, fire and forget; a bad one is listed under rejected_jumps
ANSWER_SIGNAL = "gecko_answer"  # an answer for a WaitForInput node
JUMP_UPDATE = "gecko_jump"  # a jump the caller hears about (rejected at once if invalid)
ANSWER_UPDATE = "gecko_reply"
YIELD_ACTIVITY = "gecko.yield"  # a no-op activity that lets a long burst of local steps breathe
LOCAL_BURST_PATCH = "gecko-local-burst-yield"  # workflow.patched id: histories before the yield replay without it
STATE_UPDATE = "gecko_update_state"  # write state values / delete keys at the next safe point (validated)
STEPS_QUERY = "gecko_steps"  # the steps this run can be rewound to (node, step, time, history event)
REWOUND_SIGNAL = "gecko_rewound"  # sent with a rewind (post-reset): where the run came from, edits to apply
CHILD_USAGE_SIGNAL = "gecko_child_usage"  # a subgraph's child run tells its parent what it spent (session, usage)
REWIND_WAIT_PATCH = (
    "gecko-rewind-wait"  # workflow.patched id: runs reset before rewinds existed replay without the wait
)
EVENTS_TOPIC = "gecko"  # the workflow_streams topic a run's events (RunHandle.stream) travel on
OBSERVE_PATCH = "gecko-observe"  # workflow.patched id: event stream, search attribute upserts
PIPELINE_ATTRIBUTE = "GeckoPipeline"  # Keyword search attribute: the Workflow's name
STATUS_ATTRIBUTE = "GeckoStatus"  # Keyword search attribute: running, waiting, completed, failed, cancelled
WINDOW_PATCH = (
    "gecko-activity-window"  # workflow.patched id: runs recorded before started every node of a layer at once
)
WAIT_SWITCH_PATCH = (
    "gecko-wait-continue-as-new"  # workflow.patched id: runs recorded before waited in one history however long
)
WIDE_WAIT_SWITCH_PATCH = (  # workflow.patched id: runs recorded before waited in one history in a fan-out or an
    "gecko-wait-continue-as-new-fan-out-eager"  # eager run (WAIT_SWITCH_PATCH covered layers without Sends only)
)
STREAM_POLL_PATCH = (
    "gecko-stream-poll-bound"  # workflow.patched id: runs recorded before kept every stream poll waiting
)
# Flow control (issue 25): search attributes a run carries when the server has them.
TENANT_ATTRIBUTE = "GeckoTenant"  # Keyword: start(..., tenant=...)
COST_ATTRIBUTE = "GeckoCostUsd"  # Double: the run's reported cost so far (US dollars)
TOKENS_ATTRIBUTE = "GeckoTokens"  # Int: the run's reported tokens so far
USAGE_EVENT = "usage"  # stream event: a node's reported usage and the run's total
VALUES_QUERY = "gecko_values"  # an activity asks its run for the texts of value references (core/refs.py)
REFS_PATCH = "gecko-refs"  # workflow.patched id: node inputs carry references, outputs only what is new
ROUTE_LOOP_PATCH = (
    "gecko-route-loops"  # workflow.patched id: runs recorded before waited for routers a node leads to itself
)
SEND_INTERRUPT_PATCH = (
    "gecko-send-interrupts"  # workflow.patched id: runs recorded before failed on an interrupt in a Send instance
)
# Payload metadata the worker's data converter puts on a payload it read from the payload store (a
# resolved claim-check reference): a rejected request never previews such a value (it may hold
# another session's data: the store is shared and content-addressed).
FROM_STORE_METADATA = "gecko-from-store"
# Upgrade at continue-as-new (issue 27): the local activity that asks which version new runs start on
# and what graph it published; the patch that gates it; the Worker Deployment version metadata key
# (prefix + graph key) a versioned worker publishes each graph under.
UPGRADE_ACTIVITY = "gecko.upgrade_target"
EAGER_REDIRECT_PATCH = (  # workflow.patched id: eager runs recorded before applied a jump from outside only
    "gecko-eager-redirect-at-once"  # once a running task finished (its tasks that finished with it were not redirected)
)
REWOUND_RUN_PATCH = (  # workflow.patched id: runs recorded before took a gecko_rewound that named no run (a
    "gecko-rewound-names-its-run"  # forged one reapplied by a hand reset passed as the reset's own)
)
EAGER_SEND_WAIT_PATCH = (  # workflow.patched id: eager runs recorded before waited in one history while a Send
    "gecko-wait-continue-as-new-eager-send"  # instance ran (its fan-out could not go on collecting in a new run)
)
UPGRADE_PATCH = "gecko-upgrade-at-continue-as-new"
GRAPH_METADATA_PREFIX = "gecko.graph."
