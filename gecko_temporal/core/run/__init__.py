"""What the workflow decides while a run goes, apart from Temporal (pure: no temporalio import).

``GeckoWorkflow`` (``temporal/workflow.py``) does the Temporal I/O and asks these objects what to do,
the way it asks ``TeamRun`` about a Team node:

- ``driver``: one run loop for both scheduling modes: begin a step, finish a batch of tasks (the
  merge in node order, jump events, completed), the deadline, local bursts, when to switch runs.
- ``writes``: eager runs' write tracking (overlapping writers) and fan-outs' held deltas.
- ``layer``: one layer's launch queue, its first failure in node order, and a paused layer.
- ``handoff``: the one builder of the workflow input (start, continue-as-new, a subgraph's child).
- ``person``: one wait for a person (WaitForInput and ``context.interrupt()``).
- ``rewind``: rewind points and resets seen.
- ``failure``: how a failed node, child run or run is told (messages and details).
"""
