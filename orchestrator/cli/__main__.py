"""`python -m orchestrator.cli ...` runs `orchestrator ...` (how `serve` starts its children)."""

import sys

from orchestrator.cli.main import main

sys.exit(main())
