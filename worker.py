"""Serve gecko_temporal workflows on a Temporal server.

    python worker.py package.module:wf [package.module:other ...] [--task-queue Q] [--threads N]
                     [--address HOST:PORT | --dev [--port P] [--db-filename F]]

A thin shell over ``gecko-temporal worker`` (gecko_temporal.ops.cli), so the two never diverge.
"""

import sys

from gecko_temporal.ops.cli import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
