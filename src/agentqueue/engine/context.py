"""What a handler (and each middleware) gets for one run of a job, and the error that fails a
job without retry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bullmq import Job, UnrecoverableError

if TYPE_CHECKING:
    from agentqueue.engine.deltas import DeltaWriter
    from agentqueue.engine.middleware import MiddlewareChain


class PermanentJobError(UnrecoverableError):
    """A failure that retrying cannot fix (bad input, unknown job name): fail without retry."""


@dataclass
class JobContext:
    """What a handler gets: the job's identity and data, and ways to report on it."""

    job: Job
    queue: str
    # The worker's middleware, told of progress reports.
    middleware: MiddlewareChain | None = None
    # Times the job's worker stopped mid-run since it last ran: > 0 for a re-run after a crash.
    stalls: int = 0
    # The time limit of the job's type (seconds), if it was registered with one.
    type_timeout_s: float | None = None
    # What middleware and the worker's resources attach to this run (its owner, its meter, …),
    # by name; read through the public context's properties.
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.job.id)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def data(self) -> Any:
        return self.job.data

    @property
    def opts(self) -> dict[str, Any]:
        """The job's BullMQ options (attempts, timeout, expiresAt, …)."""
        return self.job.opts or {}

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, …"""
        return int(self.job.attemptsMade or 0) + 1

    async def progress(
        self,
        value: int | float | dict[str, Any] | None = None,
        total: int | float | None = None,
        message: str | None = None,
        *,
        current: int | float | None = None,
    ) -> None:
        """`progress(40)` (a percentage), or seed 001's `updateJobProgress` form:
        `progress(10, 100, "Processing item 10 of 100")` / `progress(current=10, total=100)`,
        stored as {"current", "total", "message", "percent"}."""
        if current is None and total is not None and isinstance(value, int | float):
            current, value = value, None
        if current is not None or total is not None:
            if current is None or total is None or value is not None:
                raise ValueError("progress takes a percentage, or current and total")
            percent = round(100 * current / total, 2) if total else 0.0
            value = {"current": current, "total": total, "percent": percent}
            if message is not None:
                value["message"] = message
        elif value is None:
            raise ValueError("progress takes a percentage, or current and total")
        elif message is not None:
            value = {"percent": value, "message": message}
        await self.job.updateProgress(value)
        if self.middleware is not None:
            await self.middleware.progress(self, value)

    def validation_context(self) -> dict[str, Any] | None:
        """The run-time facts input models check against (limits, known agents), as the APIs
        check them at enqueue; the layers above provide them (None: none)."""
        return None

    def delta_writer(self) -> DeltaWriter | None:
        """Where this run's streamed text deltas go as they arrive (`engine.deltas`); the
        layers above provide it (None: nowhere, progress alone)."""
        return None

    async def log(self, line: str) -> None:
        await self.job.log(line)

    async def children_results(self) -> dict[str, Any]:
        """A flow's parent: the results of its children that completed, by `<queue>:<job id>`
        (BullMQ's `getChildrenValues`)."""
        raw = await self.job.getChildrenValues()
        return {self._child_ref(key): value for key, value in raw.items()}

    async def children_failures(self) -> dict[str, str]:
        """A flow's parent: why each child whose failure it ignores failed, by
        `<queue>:<job id>` (BullMQ's `ignoreDependencyOnFailure`)."""
        backend = self.job.backend
        raw = await backend.connection.conn.hgetall(backend.toKey(f"{self.id}:failed"))
        return {self._child_ref(key): reason for key, reason in raw.items()}

    def _child_ref(self, key: str) -> str:
        # A child's key is `<prefix>:<queue>:<id>`; the prefix may itself hold colons.
        prefix = str((getattr(self.job.queue, "opts", None) or {}).get("prefix", "bull"))
        return key.removeprefix(f"{prefix}:")


Handler = Callable[[JobContext], Awaitable[Any]]
