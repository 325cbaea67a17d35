"""The inbound drain alone, as this file measured it before `scripts/bench.sh` existed:

    .venv/bin/python benchmarks/throughput.py --messages 2000

is `python -m benchmarks --scenarios inbound-pg,inbound-sqlite --messages 2000` (one fresh database
and topic prefix per scenario, the worker as its own process). See docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.cli import main

    args = sys.argv[1:]
    if not any(a.startswith("--scenarios") for a in args):
        args = ["--scenarios", "inbound-pg,inbound-sqlite", *args]
    sys.exit(main(args))
