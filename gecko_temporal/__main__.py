"""``python -m gecko_temporal ...`` is the ``gecko-temporal`` command."""

import sys

from gecko_temporal.ops.cli import main

sys.exit(main())
