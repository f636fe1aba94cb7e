"""The run worker process's entry point: `python -m coinwire.services.run_worker RUN_DIR` (started by services/runs.py).

The worker itself is `engine.worker`; this entry gives it the strategy registry, which sits above the
engine (the built-ins import the engine's Strategy API).
"""

from __future__ import annotations

import sys

from coinwire.engine.worker import main
from coinwire.strategies.registry import load_strategy

__all__ = ["MODULE"]

MODULE = "coinwire.services.run_worker"  # what the server runs, and looks for in a worker's command line


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], load_strategy))
