"""A handle on one job: its state, progress, result, error, attempts and usage; waiting for
it and following its events on BullMQ's events stream; cancelling and retrying it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from agentqueue.core import states
from agentqueue.core.actions import cancel_job, retry_job
from agentqueue.core.approvals import AWAITING, AWAITING_STATE, Decision, decide, pending_call
from agentqueue.core.errors import JobConflict
from agentqueue.core.lookup import FoundJob
from agentqueue.engine.deltas import Delta
from agentqueue.engine.jobs import FINISHED_STATES
from agentqueue.engine.queue import CANCELLED_REASON
from agentqueue.engine.stream import Sink, event_json, id_key
from agentqueue.errors import JobFailed, JobNotFinished, JobNotFound, JobNotRetryable
from agentqueue.records.views import JobRecordView

if TYPE_CHECKING:
    from agentqueue.app import App
    from agentqueue.backend import Backend

# Reads again when a retry lost the race with the worker's last writes to the record.
_RETRY_RACES = 5


class Job:
    """A handle on one job: its state, its result, waiting for it, cancelling it."""

    def __init__(self, app: App, queue: str, job_id: str, *, existing: bool = False) -> None:
        self.app = app
        self.queue = queue
        self.id = job_id
        # Whether `enqueue` found this job already there (same job_id or dedup_key) instead of
        # queuing a new one.
        self.existing = existing

    def __repr__(self) -> str:
        return f"Job(queue={self.queue!r}, id={self.id!r})"

    async def _snapshot(self) -> tuple[str, Any, str | None]:
        """(state, result, failure reason): from Redis, or from the record once Redis has
        dropped the job (retention)."""
        return (await self._look())[:3]

    async def _look(self) -> tuple[str, Any, str | None, bool]:
        """`_snapshot`, and whether Redis still has the job."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        if view is not None:
            if view.state == "delayed":  # parked for a person's approval, or merely delayed
                record = await backend.records.get(self.queue, self.id)
                if record is not None and record.status == AWAITING:
                    return AWAITING_STATE, None, None, True
            return view.state, view.result, view.failed_reason, True
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        return states.state_of_record(record.status), record.result, record.error, False

    async def status(self) -> str:
        """Its state: waiting, prioritized, delayed, paused, active, awaiting_approval,
        completed, failed or cancelled."""
        return (await self._snapshot())[0]

    state = status

    async def progress(self) -> Any:
        """The last progress it reported (from its record once Redis has dropped it)."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        if view is not None:
            return view.progress
        return (await self._record(backend)).progress

    async def result(self) -> Any:
        """Its result if it completed; `JobFailed` if it failed; `JobNotFinished` if not yet."""
        state, result, reason = await self._snapshot()
        return self._outcome(state, result, reason)

    def _outcome(self, state: str, result: Any, reason: str | None) -> Any:
        if state not in FINISHED_STATES:
            raise JobNotFinished(f"job {self.id} of {self.queue!r} is {state}")
        event = _outcome_event(state, result, reason)
        if event.kind == "failed":
            raise JobFailed(self.id, self.queue, event.error or "failed")
        return event.result

    async def attempts(self) -> int:
        """How many times it has been attempted (started) so far."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        if view is not None:
            return view.attempts_made
        return (await self._record(backend)).attempts_made

    async def error(self) -> str | None:
        """Why it failed (or that it was cancelled); None unless it has."""
        state, _, reason = await self._snapshot()
        if state == "failed":
            return reason or "failed"
        if state == "cancelled":
            return reason or CANCELLED_REASON
        return None

    async def usage(self) -> RecordedUsage:
        """The AI tokens and cost it used, as its record has them (complete once it has
        finished: the worker writes them then)."""
        backend = await self.app._backend()
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            if await backend.queue(self.queue).get(self.id) is None:
                raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
            return RecordedUsage()  # added by a plain producer, not yet taken by a worker
        return RecordedUsage(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                        cost_usd=record.cost_usd, provider=record.provider, model=record.model)

    async def _record(self, backend: Backend) -> JobRecordView:
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        return record

    async def wait(self, timeout: float | None = None) -> Any:
        """Its result once it completes, or `JobFailed` once it fails (after its last
        attempt) or is cancelled; `TimeoutError` after `timeout` seconds.

        Follows BullMQ's events stream (so it hears Node workers too): no polling.
        """
        async with contextlib.aclosing(self._follow(timeout)) as events:
            async for event in events:
                if event.kind == "completed":
                    return event.result
                if event.kind == "failed":
                    raise JobFailed(self.id, self.queue, event.error or "failed")
        raise AssertionError("the events of a job end with its outcome")  # pragma: no cover

    def events(self, timeout: float | None = None) -> AsyncIterator[JobEvent]:
        """Its events from now on, as they happen: `active`, `progress`, `text` (streamed
        model output so far, from jobs that stream: coalesced), `delta` (each piece of streamed
        output as the provider gave it, none lost: `text` the piece, `offset` where it starts),
        `retrying` (an attempt failed and another follows), then `completed` or `failed`,
        which ends the iteration (after every delta). A job that has already finished yields
        its outcome alone. `TimeoutError` after `timeout` seconds.

            async for event in job.events():
                if event.kind == "delta": print(event.text, end="")

        Read from BullMQ's events stream `<prefix>:<queue>:events` and the queue's deltas
        stream (`engine.deltas`) with blocking XREADs.
        """
        return self._follow(timeout, deltas=True)

    async def _follow(self, timeout: float | None, *, deltas: bool = False
                      ) -> AsyncGenerator[JobEvent, None]:
        """What `wait` and `events` both read: the job's entries of its queue's events stream
        (through the loop's one shared reader of that stream, `Backend.events`), and with
        `deltas` those of its deltas stream.

        Follows from the last entry written before the job's state is checked, so an event
        written in between is not missed; a `removed` event (cancelled while pending) checks
        the state again.
        """
        backend = await self.app._backend()
        client = backend.client
        reader = backend.events(self.queue)
        delta_reader = backend.deltas(self.queue) if deltas else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            last = cast(list[tuple[str, dict[str, str]]],
                        await client.xrevrange(reader.key, count=1))
            after = last[0][0] if last else "0-0"
            delta_after = "0-0"
            if delta_reader is not None:
                last = cast(list[tuple[str, dict[str, str]]],
                            await client.xrevrange(delta_reader.key, count=1))
                delta_after = last[0][0] if last else "0-0"
            state, result, reason, in_redis = await self._look()
            if state in FINISHED_STATES:
                yield _outcome_event(state, result, reason)
                return
            if not in_redis:
                # Finished and dropped by Redis (retention) before its record caught up: its
                # outcome is in the events already written.
                outcome = await self._past_outcome(client, reader.key, after)
                if outcome is not None:
                    yield outcome
                    return
            # A delayed job that has run is backing off between attempts.
            ran = state == "active" or (state == "delayed" and await self._started() > 0)
            sink: Sink = asyncio.Queue()
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(reader.subscribe(after, sink=sink))
                if delta_reader is not None:
                    await stack.enter_async_context(
                        delta_reader.subscribe(delta_after, sink=sink))
                while True:
                    left = None if deadline is None else deadline - time.monotonic()
                    try:
                        if left is not None and left <= 0:
                            raise TimeoutError
                        async with asyncio.timeout(left):
                            item = await sink.get()
                    except TimeoutError:
                        raise TimeoutError(f"job {self.id} of {self.queue!r} did not finish "
                                           f"within {timeout:g}s") from None
                    if isinstance(item, BaseException):
                        raise item
                    key, entry_id, fields = item
                    if fields.get("jobId") != self.id:
                        continue
                    if delta_reader is not None and key == delta_reader.key:
                        if id_key(entry_id) > id_key(delta_after):
                            delta_after = entry_id
                            yield _delta_event(fields)
                        continue
                    kind = fields.get("event")
                    if kind == "removed":
                        break  # cancelled before it ran? its state says
                    event = _event(kind, fields, ran)
                    ran = ran or kind == "active"
                    if event is None:
                        continue
                    if event.kind == "completed" and "returnvalue" not in fields:
                        event = _outcome_event(*await self._snapshot())
                    if event.final and delta_reader is not None:
                        # Its deltas were all written before its outcome: those not read yet.
                        for _, delta_fields in await delta_reader.read_after(
                                delta_after):
                            if delta_fields.get("jobId") == self.id:
                                yield _delta_event(delta_fields)
                    yield event
                    if event.final:
                        return

    async def _past_outcome(self, client: Any, stream: str, upto: str) -> JobEvent | None:
        """The job's `completed` or `failed` event among the stream's entries up to `upto`,
        newest first (the stream keeps BullMQ's last ~10,000 events)."""
        while True:
            entries = cast(list[tuple[str, dict[str, str]]],
                           await client.xrevrange(stream, max=upto, count=500))
            for entry_id, fields in entries:
                if fields.get("jobId") == self.id and fields.get("event") in (
                        "completed", "failed"):
                    return _event(fields["event"], fields, True)
                upto = entry_id
            if len(entries) < 500:
                return None
            upto = f"({upto}"  # exclusive: on past the oldest read

    async def _started(self) -> int:
        """Attempts started so far (a delayed job that has run was backing off)."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        return 0 if view is None else view.attempts_made

    async def retry(self) -> None:
        """Run a failed or cancelled job again, with fresh attempts and its priority.
        `JobNotRetryable` in any other state."""
        backend = await self.app._backend()
        queue = backend.queue(self.queue)
        for _ in range(_RETRY_RACES):
            record = await backend.records.get(self.queue, self.id)
            live = await queue.get(self.id)
            if record is None and live is None:
                raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
            try:
                await retry_job(backend, self.queue, self.id, FoundJob(record, live))
                return
            except JobConflict as exc:
                refused = exc.message
                # Just failed in Redis, its record may be catching up (the worker's writes move
                # its version): read both again. Anything else is a refusal.
                if live is None or live.state != "failed":
                    break
        raise JobNotRetryable(refused)

    async def pending_approval(self) -> dict[str, Any] | None:
        """The tool call it waits on a person's approval for (tool, arguments, callId,
        requestedAt, expiresAt, onTimeout); None if it waits on none."""
        record = await (await self.app._backend()).records.get(self.queue, self.id)
        if record is None or record.status != AWAITING:
            return None
        return pending_call(record.progress)

    async def approve(self, reason: str | None = None, *, by: str = "python") -> bool:
        """Approve the tool call it awaits, and let it run on; False if it awaits none."""
        return await self._decide("approve", reason, by)

    async def deny(self, reason: str | None = None, *, by: str = "python") -> bool:
        """Deny the tool call it awaits (the model is told, with `reason`); False if none."""
        return await self._decide("deny", reason, by)

    async def _decide(self, decision: Decision, reason: str | None, by: str) -> bool:
        backend = await self.app._backend()
        record = await backend.records.get(self.queue, self.id)
        live = await backend.queue(self.queue).get(self.id)
        if record is None and live is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        try:
            await decide(backend, self.queue, self.id, FoundJob(record, live), decision,
                         reason, by)
        except JobConflict:
            return False
        return True

    async def cancel(self) -> bool:
        """Cancel it if it has not finished: a pending job is removed, an active one's worker
        is told to stop it (and records it). False if it had already finished."""
        backend = await self.app._backend()
        record = await backend.records.get(self.queue, self.id)
        live = await backend.queue(self.queue).get(self.id)
        if record is None and live is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        try:  # as every HTTP API cancels
            await cancel_job(backend, self.queue, self.id, FoundJob(record, live))
        except JobConflict:
            return False
        return True

    # -- sync twins ----------------------------------------------------------------------------

    def status_sync(self) -> str:
        return self.app.run_sync(self.status())

    def result_sync(self) -> Any:
        return self.app.run_sync(self.result())

    def wait_sync(self, timeout: float | None = None) -> Any:
        return self.app.run_sync(self.wait(timeout))

    def approve_sync(self, reason: str | None = None, *, by: str = "python") -> bool:
        return self.app.run_sync(self.approve(reason, by=by))

    def deny_sync(self, reason: str | None = None, *, by: str = "python") -> bool:
        return self.app.run_sync(self.deny(reason, by=by))

    def pending_approval_sync(self) -> dict[str, Any] | None:
        return self.app.run_sync(self.pending_approval())

    def cancel_sync(self) -> bool:
        return self.app.run_sync(self.cancel())

    def retry_sync(self) -> None:
        self.app.run_sync(self.retry())

    def progress_sync(self) -> Any:
        return self.app.run_sync(self.progress())

    def attempts_sync(self) -> int:
        return self.app.run_sync(self.attempts())

    def error_sync(self) -> str | None:
        return self.app.run_sync(self.error())

    def usage_sync(self) -> RecordedUsage:
        return self.app.run_sync(self.usage())

    def events_sync(self, timeout: float | None = None) -> Iterator[JobEvent]:
        """`events` for code without an event loop: each event is read on the App's private
        loop as the iteration asks for it."""
        return self.app.iterate_sync(self._follow(timeout))


EventKind = Literal["active", "progress", "text", "delta", "retrying", "completed", "failed"]


@dataclass(frozen=True)
class JobEvent:
    """One event of a job (`Job.events`)."""

    kind: EventKind
    progress: Any = None  # progress and text: what the job reported
    text: str | None = None  # text: the streamed output so far; delta: the piece
    offset: int | None = None  # delta: where the piece starts in the attempt's output
    attempt: int | None = None  # delta: the attempt that streamed it
    result: Any = None  # completed
    error: str | None = None  # failed: the reason

    @property
    def final(self) -> bool:
        return self.kind in ("completed", "failed")


@dataclass(frozen=True)
class RecordedUsage:
    """What a job spent on AI providers, as its record has it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    provider: str | None = None
    model: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _outcome_event(state: str, result: Any, reason: str | None) -> JobEvent:
    if state == "completed":
        return JobEvent("completed", result=result)
    return JobEvent("failed", error=reason or (
        CANCELLED_REASON if state == "cancelled" else "failed"))


def _delta_event(fields: dict[str, str]) -> JobEvent:
    delta = Delta.from_fields(fields)
    if delta is None:
        return JobEvent("delta", text=fields.get("text", ""))
    return JobEvent("delta", text=delta.text, offset=delta.offset, attempt=delta.attempt)


def _event(kind: str | None, fields: dict[str, str], ran: bool) -> JobEvent | None:
    """A BullMQ event as a `JobEvent`; None for those a job's follower does not hear."""
    if kind == "active":
        return JobEvent("active")
    if kind == "progress":
        progress = event_json(fields.get("data"))
        if isinstance(progress, dict) and progress.get("streaming") and "text" in progress:
            return JobEvent("text", progress=progress, text=str(progress["text"]))
        return JobEvent("progress", progress=progress)
    if kind == "completed":
        return JobEvent("completed", result=event_json(fields.get("returnvalue")))
    if kind == "failed":
        return JobEvent("failed", error=fields.get("failedReason") or "failed")
    # A failed attempt goes back to wait for its backoff (delayed) or at once (waiting, from
    # active); a retry by hand goes to waiting from failed.
    if (kind == "delayed" and ran) or (kind == "waiting" and fields.get("prev") in (
            "active", "failed")):
        return JobEvent("retrying")
    return None
