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
WINDOW_PATCH = "gecko-activity-window"  # workflow.patched id: runs recorded before started every node of a layer at once
