"""The middleware tests' fixtures (tests/support/workers.py)."""

from tests.support.workers import mw_queue, start_worker

__all__ = ["mw_queue", "start_worker"]
