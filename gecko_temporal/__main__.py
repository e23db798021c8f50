"""``python -m gecko_temporal ...`` is the ``gecko-temporal`` command."""

import sys

from .cli import main

sys.exit(main())
