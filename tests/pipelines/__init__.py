"""Example pipelines that tests load by MODULE:WF spec in worker subprocesses (worker.py, the CLI)."""
