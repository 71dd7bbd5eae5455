"""A handle on one job: its state, its result, waiting for it, cancelling it."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, cast

from agentqueue.engine.jobs import FINISHED_STATES
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome
from agentqueue.errors import JobFailed, JobNotFinished, JobNotFound

if TYPE_CHECKING:
    from agentqueue.app import App

# Each blocking read of the events stream lasts at most this long before it is sent again.
_READ_SLICE_S = 5.0


class Job:
    """A handle on one job: its state, its result, waiting for it, cancelling it."""

    def __init__(self, app: App, queue: str, job_id: str) -> None:
        self.app = app
        self.queue = queue
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job(queue={self.queue!r}, id={self.id!r})"

    async def _snapshot(self) -> tuple[str, Any, str | None]:
        """(state, result, failure reason): from Redis, or from the record once Redis has
        dropped the job (retention)."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        if view is not None:
            return view.state, view.result, view.failed_reason
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        return record.status, record.result, record.error

    async def status(self) -> str:
        """Its state: waiting, prioritized, delayed, paused, active, completed, failed or
        cancelled."""
        return (await self._snapshot())[0]

    state = status

    async def progress(self) -> Any:
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        return None if view is None else view.progress

    async def result(self) -> Any:
        """Its result if it completed; `JobFailed` if it failed; `JobNotFinished` if not yet."""
        state, result, reason = await self._snapshot()
        return self._outcome(state, result, reason, finished_only=False)

    def _outcome(self, state: str, result: Any, reason: str | None, *,
                 finished_only: bool = True) -> Any:
        if state == "completed":
            return result
        if state in FINISHED_STATES:
            cancelled = state == "cancelled"
            raise JobFailed(self.id, self.queue,
                            reason or (CANCELLED_REASON if cancelled else "failed"))
        if not finished_only:
            raise JobNotFinished(f"job {self.id} of {self.queue!r} is {state}")
        return _PENDING

    async def wait(self, timeout: float | None = None) -> Any:
        """Its result once it completes, or `JobFailed` once it fails (after its last
        attempt); `TimeoutError` after `timeout` seconds.

        Follows BullMQ's events stream (so it hears Node workers too), reading from the last
        entry written before the state was checked: an event in between is not missed.
        """
        backend = await self.app._backend()
        client = backend.client
        events = f"{self.app.settings.queue_prefix}:{self.queue}:events"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            last = cast(list[tuple[str, dict[str, str]]],
                        await client.xrevrange(events, count=1))
            after = last[0][0] if last else "0-0"
            outcome = self._outcome(*await self._snapshot())
            if outcome is not _PENDING:
                return outcome
            while True:
                left = _READ_SLICE_S if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {self.id} of {self.queue!r} did not finish "
                                       f"within {timeout:g}s")
                block_ms = max(1, int(min(left, _READ_SLICE_S) * 1000))
                read = await client.xread({events: after}, block=block_ms, count=500)
                event = None
                for _, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]],
                                       read or []):
                    for entry_id, fields in entries:
                        after = entry_id
                        if fields.get("jobId") == self.id and event is None:
                            event = fields if fields.get("event") in (
                                "completed", "failed", "removed") else None
                if event is None:
                    continue
                if event["event"] == "completed" and "returnvalue" in event:
                    return json.loads(event["returnvalue"])
                if event["event"] == "failed":
                    raise JobFailed(self.id, self.queue, event.get("failedReason") or "failed")
                break  # removed (cancelled?): read its state again

    async def cancel(self) -> bool:
        """Cancel it if it has not finished: a pending job is removed, an active one's worker
        is told to stop it. False if it had already finished."""
        backend = await self.app._backend()
        outcome = await backend.queue(self.queue).cancel(self.id)
        if outcome is CancelOutcome.ALREADY_FINISHED:
            return False
        if outcome is CancelOutcome.REQUESTED:
            return True  # the worker records its own cancellation
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            if outcome is CancelOutcome.CANCELLED:
                return True
            if await backend.queue(self.queue).get(self.id) is None:  # not even a tombstone
                raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
            return False  # cancelled already
        if record.status in FINISHED_STATES:
            return outcome is CancelOutcome.CANCELLED
        # Removed before it ran (or dropped by Redis already): the record says so.
        await backend.records.mark(self.queue, self.id, "cancelled", error=CANCELLED_REASON,
                                   message=CANCELLED_REASON)
        return True

    # -- sync twins ----------------------------------------------------------------------------

    def status_sync(self) -> str:
        return self.app.run_sync(self.status())

    def result_sync(self) -> Any:
        return self.app.run_sync(self.result())

    def wait_sync(self, timeout: float | None = None) -> Any:
        return self.app.run_sync(self.wait(timeout))

    def cancel_sync(self) -> bool:
        return self.app.run_sync(self.cancel())


_PENDING: Any = object()
