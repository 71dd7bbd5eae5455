"""What this process serves: its job types (the built-in ones and the installed App's) and the
App's worker middleware. Set once at start by `App.install` (`agentqueue worker|serve|api
--app`); read by the workers, the APIs and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Sequence

from agentqueue.engine.middleware import Middleware
from agentqueue.handlers.builtin import builtin_registry
from agentqueue.registry import JobRegistry


def builtin_types() -> JobRegistry:
    """The job types agentqueue ships (a new registry: adding to it changes nothing served)."""
    return builtin_registry()


# What this process serves and accepts; None: the built-in types only.
_served: JobRegistry | None = None


def served() -> JobRegistry:
    """The job types this process's workers run and its APIs accept."""
    return _served if _served is not None else builtin_types()


def serve(registry: JobRegistry | None, *, middleware: Sequence[Middleware] = ()) -> None:
    """Serve `registry` in this process (None: the built-in types again), its workers running
    `middleware` after the built-in ones."""
    global _served
    _served = registry
    _middleware[:] = middleware


# The user's worker middleware this process runs (the installed App's), in order.
_middleware: list[Middleware] = []


def installed_middleware() -> list[Middleware]:
    return list(_middleware)
