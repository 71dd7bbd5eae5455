"""The job records repository: one `Records` object per process, shared by API and worker code.

Every method opens its own short transaction and returns Pydantic views, never ORM objects.
`Records.connect` does not migrate: callers run `agentqueue.records.migrations.upgrade` first.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from agentqueue.records.batching import Batcher
from agentqueue.records.db import PoolLimits, make_engine, writer
from agentqueue.records.models import STATUSES, TERMINAL, ApiKey, JobEvent, JobRecord
from agentqueue.records.views import (
    ApiKeyView,
    JobEventView,
    JobOwner,
    JobRecordView,
    UsageRow,
)

log = logging.getLogger("agentqueue.records")

# The database cannot be reached or is busy: a batch fails as a whole (each caller answers 503).
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)

API_KEY_PREFIX = "aq_"
API_KEY_SHOWN_CHARS = 12
# last_used_at is refreshed at most this often, so checking a key is a read, not a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long a key found valid is taken as valid without asking the database again.
API_KEY_CACHE_S = 1.0
_MAX_KNOWN_KEYS = 10_000

Clock = Callable[[], datetime]
_JOBS = cast(Table, JobRecord.__table__)
_EVENTS = cast(Table, JobEvent.__table__)


@dataclass(frozen=True, eq=False)
class _NewJob:
    """A record to create: its column values and its first history events."""

    values: dict[str, Any]
    events: list[tuple[str, str | None]]  # (status, message), oldest first
    attempt: int
    now: datetime


@dataclass(frozen=True)
class _Mark:
    """A status change to write (see `Records.mark`)."""

    queue: str
    job_id: str
    status: str
    attempt: int | None
    message: str | None
    result: Any
    error: str | None
    progress: Any
    usage: tuple[int, int, float] | None
    provider: str | None
    model: str | None
    expect_version: int | None
    now: datetime


@dataclass(frozen=True)
class _LeaseEnd:
    """A submission lease to end (if the record still holds it)."""

    queue: str
    job_id: str
    until: datetime


class JobExistsError(ValueError):
    """`create_job` for a (queue, job_id) that already has a record."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"a record for job {job_id!r} in queue {queue!r} already exists")
        self.queue = queue
        self.job_id = job_id


def utc_now() -> datetime:
    return datetime.now(UTC)


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
    return moment.astimezone(UTC)


class utc_day(FunctionElement[date]):  # noqa: N801 - reads as the SQL function it renders
    """The UTC calendar day of a timestamp column (a date on PostgreSQL, text on SQLite)."""

    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return f"date({compiler.process(element.clauses, **kw)})"


class Records:
    """Durable job records, their status history, usage, and API keys."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self._engine = engine
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._clock = clock or utc_now
        # SQLite has one writer at a time, and a second one waits in its busy handler, which
        # sleeps up to 100 ms a try: this process's writers take turns here instead.
        self._write_turn: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else nullcontext())
        # Status changes (the workers' above all: a job starting, finishing), group-committed.
        self._marks: Batcher[_Mark, bool | Exception] = Batcher(
            self._mark_batch, name="record-marks")
        self._progress: dict[tuple[str, str], Any] = {}
        self._progress_flusher: asyncio.Task[None] | None = None
        self._known_keys: dict[str, tuple[ApiKeyView, datetime]] = {}
        # Lookups under way, by key hash: a busy client's requests, finding its cached key
        # expired together, share one query (instead of each taking a connection) …
        self._finding_keys: dict[str, asyncio.Future[ApiKeyView | None]] = {}
        # … and a lookup that overlapped a revocation caches nothing.
        self._revocations = 0
        # Submissions' writes (new records, lease ends), group-committed.
        self._submissions: Batcher[_NewJob | _LeaseEnd, JobRecordView | Exception | None] = (
            Batcher(self._submission_batch, name="submission-writes",
                    max_flushes=1 if engine.dialect.name == "sqlite" else 4))

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        schema: str | None = None,
        clock: Clock | None = None,
        pool: PoolLimits | None = None,
    ) -> Records:
        """Open the database at `url` (`sqlite+aiosqlite:///path`, `postgresql+asyncpg://…`;
        plain `sqlite:`/`postgresql:`/`postgres:` URLs get the async driver). `schema`
        (PostgreSQL only) sets the search_path. `clock` returns the current aware datetime
        (tests pin it). Does not migrate: run `migrations.upgrade(url)` first."""
        engine = make_engine(url, schema=schema, pool=pool)
        try:
            async with engine.connect():
                pass
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def close(self) -> None:
        await self._submissions.drain()
        await self._marks.drain()
        while self._progress_flusher is not None:
            await asyncio.shield(self._progress_flusher)
        await self._engine.dispose()

    def _now(self) -> datetime:
        return _aware(self._clock())

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._write_turn, self._writes() as session, session.begin():
            yield session

    # -- jobs -------------------------------------------------------------------------------

    async def create_job(
        self,
        *,
        queue: str,
        job_id: str,
        type: str,
        data: Any,
        owner: JobOwner,
        name: str | None = None,
        description: str | None = None,
        max_attempts: int = 1,
        priority: int = 0,
        status: str = "queued",
        lease_until: datetime | None = None,
        attempt: int = 0,
        message: str | None = None,
        created_at: datetime | None = None,
        passed_through: Sequence[str] = (),
    ) -> JobRecordView:
        """Write the record and its first history event. Raises `JobExistsError` if
        (queue, job_id) already has one. `lease_until`: the caller is putting the job into Redis
        until then, and the repair service leaves the record alone (see `claim`). `attempt` and
        `message` go to the first event; `created_at` (default: now) is when the job was made,
        for a job recorded after it was queued. `passed_through`: statuses the job went through
        before `status`, each a history event of its own (a submission records `pending` and
        `queued` in one write).

        Records created at the same time by concurrent callers share one transaction (see
        `agentqueue.records.batching`); each returns once its record is committed."""
        _check_status(status)
        for earlier in passed_through:
            _check_status(earlier)
        now = self._now()
        made = _aware(created_at) if created_at is not None else now
        values: dict[str, Any] = dict(
            queue=queue,
            job_id=job_id,
            type=type,
            name=name,
            description=description,
            status=status,
            data=data,
            result=None,
            error=None,
            progress=None,
            attempts_made=attempt,
            max_attempts=max_attempts,
            priority=priority,
            user_id=owner.user_id,
            org_id=owner.org_id,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            created_at=made,
            queued_at=made if status in ("queued", "active") else None,
            started_at=now if status == "active" else None,
            finished_at=now if status in TERMINAL else None,
            updated_at=now,
            version=0,
            submitting_until=_aware(lease_until) if lease_until is not None else None,
        )
        events = [(earlier, None) for earlier in passed_through] + [(status, message)]
        try:
            outcome = await self._submissions.submit(_NewJob(values, events, attempt, now))
            if isinstance(outcome, Exception):
                raise outcome
        except IntegrityError as exc:
            if await self.get(queue, job_id) is not None:
                raise JobExistsError(queue, job_id) from exc
            raise
        assert isinstance(outcome, JobRecordView)
        return outcome

    async def _submission_batch(
        self, writes: list[_NewJob | _LeaseEnd]
    ) -> list[JobRecordView | Exception | None]:
        """New records and lease ends, in one transaction. If a new record cannot be written
        (it clashes with one already there, say), each on its own, and those that fail get
        their own error; if the database is unavailable, every caller gets that error."""
        jobs = [write for write in writes if isinstance(write, _NewJob)]
        leases = [write for write in writes if isinstance(write, _LeaseEnd)]
        created: dict[int, JobRecordView | Exception] = {}
        try:
            async with self._writing() as session:
                for job, view in zip(jobs, await self._insert(session, jobs), strict=True):
                    created[id(job)] = view
                await self._end_leases(session, leases)
        except UNAVAILABLE:
            raise
        except Exception as exc:
            if not jobs:
                raise
            if len(jobs) == 1:
                created[id(jobs[0])] = exc
            else:
                for job in jobs:
                    try:
                        async with self._writing() as session:
                            created[id(job)] = (await self._insert(session, [job]))[0]
                    except UNAVAILABLE:
                        raise
                    except Exception as failed:
                        created[id(job)] = failed
            if leases:
                async with self._writing() as session:
                    await self._end_leases(session, leases)
        return [created[id(write)] if isinstance(write, _NewJob) else None for write in writes]

    @staticmethod
    async def _insert(session: AsyncSession, jobs: list[_NewJob]) -> list[JobRecordView]:
        """Core `INSERT`s, not ORM objects: one multi-row `INSERT … RETURNING id` for the
        records (ids in the order given) and one executemany for their events. The ORM's unit
        of work cost more per record than the database did (a submission's main SQL cost)."""
        if not jobs:
            return []
        connection = await session.connection()
        inserted = await connection.execute(
            insert(_JOBS).returning(_JOBS.c.id, sort_by_parameter_order=True),
            [job.values for job in jobs])
        ids = list(inserted.scalars())
        await connection.execute(insert(_EVENTS), [
            {"job_pk": pk, "status": status, "attempt": job.attempt, "message": message,
             "at": job.now}
            for pk, job in zip(ids, jobs, strict=True) for status, message in job.events])
        return [JobRecordView.model_validate({**job.values, "id": pk, "provider": None,
                                              "model": None})
                for pk, job in zip(ids, jobs, strict=True)]

    async def mark(
        self,
        queue: str,
        job_id: str,
        status: str,
        *,
        attempt: int | None = None,
        message: str | None = None,
        result: Any = None,
        error: str | None = None,
        progress: Any = None,
        usage: tuple[int, int, float] | None = None,
        provider: str | None = None,
        model: str | None = None,
        expect_version: int | None = None,
    ) -> bool:
        """Move the record to `status` and append a history event. False if there is no record,
        or if `expect_version` is given and the record has moved on since (compare-and-set).

        Arguments left as None leave the record's value alone; `usage` is the job's running
        TOTAL (input tokens, output tokens, cost in USD) and replaces the stored one, so a retry
        never double-counts. The same (status, attempt) as the last event adds no second event,
        and while the job runs, an event of an earlier attempt than the record's is ignored.
        A terminal record (completed/failed/cancelled) ignores every status but a repeat of its
        own (which may still fill in fields): only `claim` opens a finished record again.
        'completed' clears the error of earlier attempts unless one is given.
        """
        _check_status(status)
        outcome = await self._marks.submit(_Mark(
            queue, job_id, status, attempt=attempt, message=message, result=result, error=error,
            progress=progress, usage=usage, provider=provider, model=model,
            expect_version=expect_version, now=self._now()))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _mark_batch(self, marks: list[_Mark]) -> list[bool | Exception]:
        """`marks` in one transaction, in order, with one read of their records and of their
        last events; if that fails for one of them, each in a transaction of its own (and only
        the failing ones fail), unless the database is unavailable: then all of them."""
        try:
            async with self._writing() as session:
                return list(await self._apply_marks(session, marks))
        except UNAVAILABLE:
            raise
        except Exception:
            if len(marks) == 1:
                raise
        outcomes: list[bool | Exception] = []
        for mark in marks:
            try:
                async with self._writing() as session:
                    outcomes.extend(await self._apply_marks(session, [mark]))
            except UNAVAILABLE:
                raise
            except Exception as failed:
                outcomes.append(failed)
        return outcomes

    @staticmethod
    async def _apply_marks(session: AsyncSession, marks: list[_Mark]) -> list[bool]:
        by_queue: dict[str, set[str]] = {}
        for mark in marks:
            by_queue.setdefault(mark.queue, set()).add(mark.job_id)
        rows = (await session.scalars(
            select(JobRecord)
            .where(or_(*(and_(JobRecord.queue == queue_name,
                              JobRecord.job_id.in_(sorted(job_ids)))
                         for queue_name, job_ids in by_queue.items())))
            .with_for_update()
        )).all()
        jobs = {(row.queue, row.job_id): row for row in rows}
        last_ids = (select(func.max(JobEvent.id))
                    .where(JobEvent.job_pk.in_([row.id for row in rows]))
                    .group_by(JobEvent.job_pk))
        last: dict[int, tuple[str, int | None]] = {
            event.job_pk: (event.status, event.attempt)
            for event in (await session.scalars(
                select(JobEvent).where(JobEvent.id.in_(last_ids)))).all()
        } if rows else {}
        outcomes = []
        for mark in marks:
            job = jobs.get((mark.queue, mark.job_id))
            outcomes.append(job is not None and Records._apply_mark(session, job, mark, last))
        return outcomes

    @staticmethod
    def _apply_mark(
        session: AsyncSession, job: JobRecord, mark: _Mark,
        last: dict[int, tuple[str, int | None]],
    ) -> bool:
        """`mark` applied to `job` (see `mark`); `last`: each record's last (status, attempt)
        event, kept up to date here."""
        if mark.expect_version is not None and job.version != mark.expect_version:
            return False
        previous = job.status
        if previous in TERMINAL and mark.status != previous:
            return True  # a late event for an attempt that is over
        if (previous not in TERMINAL and mark.attempt is not None
                and mark.attempt < job.attempts_made):
            return True  # a late event of an earlier attempt (the next one has begun)
        now = mark.now
        Records._move(job, mark.status, now, attempt=mark.attempt)
        if mark.result is not None:
            job.result = mark.result
        if mark.error is not None:
            job.error = mark.error
        if mark.progress is not None:
            job.progress = mark.progress
        if mark.usage is not None:
            job.input_tokens, job.output_tokens = int(mark.usage[0]), int(mark.usage[1])
            job.cost_usd = float(mark.usage[2])
        if mark.provider is not None:
            job.provider = mark.provider
        if mark.model is not None:
            job.model = mark.model
        message = mark.message
        if mark.error is not None and message is None and mark.status in ("failed", "cancelled"):
            message = mark.error
        event = (job.status, job.attempts_made)
        if last.get(job.id) != event:
            session.add(JobEvent(job_pk=job.id, status=job.status, attempt=job.attempts_made,
                                 message=message, at=now))
            last[job.id] = event
        return True

    async def claim(
        self,
        queue: str,
        job_id: str,
        *,
        version: int,
        status: str,
        lease_until: datetime,
        attempt: int | None = None,
        message: str | None = None,
        data: Any = None,
    ) -> JobRecordView | None:
        """Compare-and-set for writers that race each other to put a job into Redis (the
        submitter, the repair service, a manual retry): move the record to `status` and hold
        it until `lease_until`, only if it is still at `version`. None if someone moved it first.

        The only way to open a finished record again (a manual retry); `data`, if given,
        replaces the job's data (a dead letter replayed with new data).
        """
        _check_status(status)
        now = self._now()
        async with self._writing() as session:
            job = await self._locked(session, queue, job_id)
            if job is None or job.version != version:
                return None
            if job.status in TERMINAL and status not in TERMINAL:
                job.finished_at = None  # open again (the last error stays)
            if data is not None:
                job.data = data
            self._move(job, status, now, attempt=attempt)
            job.submitting_until = _aware(lease_until)
            await self._add_event(session, job, message, now)
            return JobRecordView.model_validate(job)

    async def release(self, queue: str, job_id: str, lease_until: datetime) -> bool:
        """End the lease taken until `lease_until` (by `create_job` or `claim`); False if the
        record no longer holds that lease (it expired and someone else claimed the record)."""
        async with self._writing() as session:
            result = await session.execute(
                update(JobRecord)
                .where(
                    JobRecord.queue == queue,
                    JobRecord.job_id == job_id,
                    JobRecord.submitting_until == _aware(lease_until),
                )
                .values(submitting_until=None)
                .execution_options(synchronize_session=False)
            )
            return cast(CursorResult[Any], result).rowcount > 0

    async def end_lease(self, queue: str, job_id: str, lease_until: datetime) -> None:
        """`release`, with the lease ends of concurrent callers written in one transaction (a
        submission's: it need not know whether the lease was still its own)."""
        await self._submissions.submit(_LeaseEnd(queue, job_id, _aware(lease_until)))

    def end_lease_soon(self, queue: str, job_id: str, lease_until: datetime) -> None:
        """`end_lease` without waiting for it: written with the next group commit (and before
        `close` returns). Failing, it is logged, and the lease runs out by itself."""
        written = self._submissions.post(_LeaseEnd(queue, job_id, _aware(lease_until)))

        def failed(future: asyncio.Future[JobRecordView | Exception | None]) -> None:
            if not future.cancelled() and future.exception() is not None:
                log.warning("Could not end the submission lease of job %s of %r (%s); it "
                            "expires", job_id, queue, type(future.exception()).__name__)

        written.add_done_callback(failed)

    @staticmethod
    async def _end_leases(session: AsyncSession, leases: list[_LeaseEnd]) -> None:
        if not leases:
            return
        table = cast(Table, JobRecord.__table__)
        statement = (
            update(table)
            .where(table.c.queue == bindparam("q"), table.c.job_id == bindparam("j"),
                   table.c.submitting_until == bindparam("lease"))
            .values(submitting_until=None)
        )
        connection = await session.connection()
        await connection.execute(statement, [
            {"q": lease.queue, "j": lease.job_id, "lease": lease.until} for lease in leases])

    async def cancel_many(self, queue: str, job_ids: Sequence[str], *, error: str,
                          message: str) -> int:
        """Mark the unfinished records among `job_ids` cancelled, in one transaction per 500
        (as `mark(…, "cancelled")` would each: a queue drained of thousands of jobs is not
        thousands of commits). Returns how many moved."""
        moved = 0
        for start in range(0, len(job_ids), 500):
            chunk = list(job_ids[start:start + 500])
            async with self._writing() as session:
                now = self._now()
                jobs = (await session.scalars(
                    select(JobRecord)
                    .where(JobRecord.queue == queue, JobRecord.job_id.in_(chunk),
                           JobRecord.status.not_in(TERMINAL))
                    .with_for_update()
                )).all()
                for job in jobs:
                    self._move(job, "cancelled", now, attempt=None)
                    job.error = error
                    # Unfinished until now, so its last event cannot already say cancelled.
                    session.add(JobEvent(job_pk=job.id, status=job.status,
                                         attempt=job.attempts_made, message=message, at=now))
                moved += len(jobs)
        return moved

    @staticmethod
    async def _locked(session: AsyncSession, queue: str, job_id: str) -> JobRecord | None:
        return cast(
            JobRecord | None,
            await session.scalar(
                select(JobRecord)
                .where(JobRecord.queue == queue, JobRecord.job_id == job_id)
                .with_for_update()
            ),
        )

    @staticmethod
    def _move(job: JobRecord, status: str, now: datetime, *, attempt: int | None) -> None:
        """The status change itself: timestamps, attempts, and the compare-and-set token."""
        if attempt is not None:
            job.attempts_made = attempt
        if status != job.status:
            if status == "queued":
                job.queued_at = now
            if status == "completed":
                job.error = None  # mark() puts back an error it is given
        if status == "queued" and job.queued_at is None:
            job.queued_at = now
        if status == "active" and job.started_at is None:
            job.started_at = now
        if status in TERMINAL and job.finished_at is None:
            job.finished_at = now
        job.status = status
        job.updated_at = now
        job.version += 1

    @staticmethod
    async def _add_event(
        session: AsyncSession, job: JobRecord, message: str | None, now: datetime
    ) -> None:
        """A history event, unless it repeats the last one's (status, attempt)."""
        attempt = job.attempts_made
        last = await session.scalar(
            select(JobEvent)
            .where(JobEvent.job_pk == job.id)
            .order_by(JobEvent.id.desc())
            .limit(1)
        )
        if last is None or (last.status, last.attempt) != (job.status, attempt):
            session.add(
                JobEvent(job_pk=job.id, status=job.status, attempt=attempt, message=message, at=now)
            )

    async def set_progress(self, queue: str, job_id: str, progress: Any) -> None:
        """Store progress (no history event). Ignored once the job is terminal."""
        async with self._writing() as session:
            await session.execute(
                update(JobRecord)
                .where(
                    JobRecord.queue == queue,
                    JobRecord.job_id == job_id,
                    JobRecord.status.not_in(TERMINAL),
                )
                .values(progress=progress, updated_at=self._now())
                .execution_options(synchronize_session=False)
            )

    def note_progress(self, queue: str, job_id: str, progress: Any) -> None:
        """`set_progress`, written behind: the caller does not wait, only the latest value of
        each job is kept, and those of many jobs go in one transaction (the next flush takes
        all that arrived during the one before). For a copy of progress whose live value is
        elsewhere (Redis); `close` flushes what is left."""
        self._progress[(queue, job_id)] = progress
        if self._progress_flusher is None:
            self._progress_flusher = asyncio.create_task(self._flush_progress(),
                                                         name="record-progress")

    async def _flush_progress(self) -> None:
        table = cast(Table, JobRecord.__table__)
        statement = (
            update(table)
            .where(table.c.queue == bindparam("q"), table.c.job_id == bindparam("j"),
                   # not NOT IN: an expanding list cannot be used with executemany; a job
                   # parked for approval keeps the progress naming its pending call
                   *(table.c.status != status for status in (*TERMINAL, "awaiting")))
            .values(progress=bindparam("p"), updated_at=bindparam("now"))
        )
        try:
            while self._progress:
                pending, self._progress = self._progress, {}
                now = self._now()
                try:
                    async with self._writing() as session:
                        connection = await session.connection()
                        await connection.execute(statement, [
                            {"q": q, "j": j, "p": progress, "now": now}
                            for (q, j), progress in pending.items()])
                except Exception as exc:  # a copy: the next update or the outcome writes it
                    log.warning("Could not write the progress of %d job records (%s)",
                                len(pending), type(exc).__name__)
        finally:
            self._progress_flusher = None

    async def highest_numeric_job_id(self, queue: str) -> int:
        """The largest numeric job id among the queue's most recent records (0 if none).

        BullMQ numbers jobs from a counter in Redis; if Redis lost it (a new server, a flush)
        while the records kept theirs, new ids would collide with recorded ones.
        """
        async with self._reads() as session:
            recent = await session.scalars(
                select(JobRecord.job_id).where(JobRecord.queue == queue)
                .order_by(JobRecord.id.desc()).limit(1000)
            )
            return max((int(i) for i in recent if i.isdigit()), default=0)

    async def get(self, queue: str, job_id: str) -> JobRecordView | None:
        async with self._reads() as session:
            job = await session.scalar(
                select(JobRecord).where(JobRecord.queue == queue, JobRecord.job_id == job_id)
            )
            return None if job is None else JobRecordView.model_validate(job)

    @staticmethod
    def _filters(
        *,
        queues: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
        no_org: bool = False,
        search: str | None = None,
        job_id_prefix: str | None = None,
    ) -> list[ColumnElement[bool]]:
        # `org_id=None` means any organization; `no_org` means records without one. `search`:
        # the job id, or words in its title or description.
        conditions: list[ColumnElement[bool]] = []
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            conditions.append(or_(JobRecord.job_id == search,
                                  JobRecord.name.ilike(pattern, escape="\\"),
                                  JobRecord.description.ilike(pattern, escape="\\")))
        if job_id_prefix is not None:  # a schedule's runs: `repeat:<id>:…`
            conditions.append(JobRecord.job_id.startswith(job_id_prefix, autoescape=True))
        if queues is not None:
            conditions.append(JobRecord.queue.in_(list(queues)))
        if types is not None:
            conditions.append(JobRecord.type.in_(list(types)))
        if statuses is not None:
            conditions.append(JobRecord.status.in_(list(statuses)))
        if user_id is not None:
            conditions.append(JobRecord.user_id == user_id)
        if org_id is not None:
            conditions.append(JobRecord.org_id == org_id)
        if no_org:
            conditions.append(JobRecord.org_id.is_(None))
        return conditions

    async def list_jobs(
        self,
        *,
        queues: list[str] | None = None,
        types: list[str] | None = None,
        statuses: list[str] | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
        no_org: bool = False,
        limit: int = 20,
        offset: int = 0,
        search: str | None = None,
        oldest_first: bool = False,
        job_id_prefix: str | None = None,
    ) -> tuple[list[JobRecordView], int]:
        """A page of records, newest first (or oldest), and the number of all records
        matching. `search`: the job id, or text in the job's title or description."""
        conditions = self._filters(
            queues=queues, types=types, statuses=statuses, user_id=user_id, org_id=org_id,
            no_org=no_org, search=search, job_id_prefix=job_id_prefix,
        )
        order = ((JobRecord.created_at.asc(), JobRecord.id.asc()) if oldest_first
                 else (JobRecord.created_at.desc(), JobRecord.id.desc()))
        async with self._reads() as session:
            total = await session.scalar(
                select(func.count()).select_from(JobRecord).where(*conditions)
            )
            jobs = await session.scalars(
                select(JobRecord)
                .where(*conditions)
                .order_by(*order)
                .limit(max(0, limit))
                .offset(max(0, offset))
            )
            return [JobRecordView.model_validate(job) for job in jobs], int(total or 0)

    async def counts(
        self,
        *,
        queues: list[str] | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
        no_org: bool = False,
    ) -> dict[str, int]:
        """Records per status; every status is a key (0 when none)."""
        conditions = self._filters(queues=queues, user_id=user_id, org_id=org_id, no_org=no_org)
        counts = dict.fromkeys(STATUSES, 0)
        async with self._reads() as session:
            rows = await session.execute(
                select(JobRecord.status, func.count()).where(*conditions).group_by(JobRecord.status)
            )
            for status, count in rows:
                counts[status] = int(count)
        return counts

    async def history(self, queue: str, job_id: str) -> list[JobEventView]:
        """The record's status events, oldest first ([] if there is no record)."""
        async with self._reads() as session:
            events = await session.scalars(
                select(JobEvent)
                .join(JobRecord, JobRecord.id == JobEvent.job_pk)
                .where(JobRecord.queue == queue, JobRecord.job_id == job_id)
                .order_by(JobEvent.id)
            )
            return [JobEventView.model_validate(event) for event in events]

    async def usage(
        self,
        *,
        user_id: str | None = None,
        org_id: str | None = None,
        no_org: bool = False,
        since: date | None = None,
    ) -> list[UsageRow]:
        """Finished jobs' tokens and cost, grouped by UTC day of finished_at, model and type;
        ordered by day, model, type. `since` is the first day included."""
        day = utc_day(JobRecord.finished_at).label("day")
        conditions = self._filters(user_id=user_id, org_id=org_id, no_org=no_org)
        conditions.append(JobRecord.finished_at.is_not(None))
        if since is not None:
            conditions.append(JobRecord.finished_at >= datetime.combine(since, time(), UTC))
        statement = (
            select(
                day,
                JobRecord.model,
                JobRecord.type,
                func.count(),
                func.sum(JobRecord.input_tokens),
                func.sum(JobRecord.output_tokens),
                func.sum(JobRecord.cost_usd),
            )
            .where(*conditions)
            .group_by(day, JobRecord.model, JobRecord.type)
        )
        async with self._reads() as session:
            rows = (await session.execute(statement)).all()
        usage = [
            UsageRow(
                day=value if isinstance(value, date) else date.fromisoformat(str(value)),
                model=model,
                type=type_,
                jobs=int(jobs),
                input_tokens=int(input_tokens or 0),
                output_tokens=int(output_tokens or 0),
                cost_usd=float(cost or 0.0),
            )
            for value, model, type_, jobs, input_tokens, output_tokens, cost in rows
        ]
        usage.sort(key=lambda row: (row.day, row.model is not None, row.model or "", row.type))
        return usage

    async def usage_by_org(self, *, since: date | None = None,
                           org_id: str | None = None) -> list[tuple[str | None, int, float]]:
        """Finished jobs' (organization, tokens, cost in USD) since `since`, most costly
        first (`org_id`: that organization only)."""
        conditions = self._filters(org_id=org_id)
        conditions.append(JobRecord.finished_at.is_not(None))
        if since is not None:
            conditions.append(JobRecord.finished_at >= datetime.combine(since, time(), UTC))
        cost = func.sum(JobRecord.cost_usd)
        statement = (
            select(JobRecord.org_id,
                   func.sum(JobRecord.input_tokens + JobRecord.output_tokens), cost)
            .where(*conditions).group_by(JobRecord.org_id))
        async with self._reads() as session:
            rows = (await session.execute(statement)).all()
        found = [(org, int(tokens or 0), float(spent or 0.0)) for org, tokens, spent in rows]
        return sorted(found, key=lambda row: (-row[2], -row[1], row[0] or ""))

    async def in_status_since(
        self, statuses: list[str], before: datetime, limit: int = 500
    ) -> list[JobRecordView]:
        """Records in one of `statuses` not updated since `before` (oldest update first) and
        not leased to a submitter: candidates for drift repair against the queue."""
        async with self._reads() as session:
            jobs = await session.scalars(
                select(JobRecord)
                .where(
                    JobRecord.status.in_(statuses),
                    JobRecord.updated_at < _aware(before),
                    or_(JobRecord.submitting_until.is_(None),
                        JobRecord.submitting_until <= self._now()),
                )
                .order_by(JobRecord.updated_at, JobRecord.id)
                .limit(limit)
            )
            return [JobRecordView.model_validate(job) for job in jobs]

    async def count_unfinished(
        self, *, org_id: str | None = None, user_id: str | None = None
    ) -> int:
        """Pending, queued and active jobs of an organization, or (no `org_id`) of a user
        without one. Index-only on (org_id, status) / (user_id, status)."""
        unfinished = [s for s in STATUSES if s not in TERMINAL]
        owner = (JobRecord.org_id == org_id if org_id is not None
                 else (JobRecord.user_id == user_id) & JobRecord.org_id.is_(None))
        async with self._reads() as session:
            total = await session.scalar(
                select(func.count()).select_from(JobRecord)
                .where(owner, JobRecord.status.in_(unfinished))
            )
            return int(total or 0)

    async def delete_job(self, queue: str, job_id: str, *, version: int | None = None) -> bool:
        """Delete the record and its history. False if there was none (or, with `version`, if
        the record has moved on from that version)."""
        conditions = [JobRecord.queue == queue, JobRecord.job_id == job_id]
        if version is not None:
            conditions.append(JobRecord.version == version)
        async with self._writing() as session:
            result = await session.execute(
                delete(JobRecord)
                .where(*conditions)
                .execution_options(synchronize_session=False)
            )
            return cast(CursorResult[Any], result).rowcount > 0

    # -- API keys ---------------------------------------------------------------------------

    async def create_api_key(
        self, *, user_id: str, org_id: str | None, is_admin: bool
    ) -> tuple[str, ApiKeyView]:
        """A new key: the plaintext (returned this once; only its sha256 is stored) and its view."""
        plaintext = API_KEY_PREFIX + secrets.token_urlsafe(30)  # 30 bytes: 40 url-safe chars
        key = ApiKey(
            key_hash=hash_api_key(plaintext),
            prefix=plaintext[:API_KEY_SHOWN_CHARS],
            user_id=user_id,
            org_id=org_id,
            is_admin=is_admin,
            created_at=self._now(),
            revoked_at=None,
            last_used_at=None,
        )
        async with self._writing() as session:
            session.add(key)
        return plaintext, ApiKeyView.model_validate(key)

    async def find_api_key(self, plaintext: str) -> ApiKeyView | None:
        """The key's view, or None if unknown or revoked. Refreshes last_used_at (at most once
        a minute, so most checks write nothing).

        A key found is remembered for `API_KEY_CACHE_S`, so a busy client's requests cost no
        query each: a key revoked through this `Records` stops working at once, one revoked
        by another process (`agentqueue keys revoke`) within that time."""
        key_hash = hash_api_key(plaintext)
        cached = self._known_keys.get(key_hash)
        if cached is not None and self._now() < cached[1]:
            return cached[0]
        finding = self._finding_keys.get(key_hash)
        if finding is None:
            finding = asyncio.ensure_future(self._look_up_key(key_hash))
            self._finding_keys[key_hash] = finding
            finding.add_done_callback(functools.partial(self._found_key, key_hash))
        return await asyncio.shield(finding)

    def _found_key(self, key_hash: str, finding: asyncio.Future[ApiKeyView | None]) -> None:
        if self._finding_keys.get(key_hash) is finding:
            del self._finding_keys[key_hash]

    def _forget_keys(self) -> None:
        """Ask the database again: every key found so far, and every lookup under way."""
        self._revocations += 1
        self._known_keys.clear()
        self._finding_keys.clear()

    async def _look_up_key(self, key_hash: str) -> ApiKeyView | None:
        revocations = self._revocations
        async with self._reads() as session:
            key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
            if key is None or key.revoked_at is not None:
                return None
            view = ApiKeyView.model_validate(key)
        now = self._now()
        if view.last_used_at is None or now - view.last_used_at >= LAST_USED_RESOLUTION:
            async with self._writing() as session:
                await session.execute(
                    update(ApiKey)
                    .where(
                        ApiKey.id == view.id,
                        or_(
                            ApiKey.last_used_at.is_(None),
                            ApiKey.last_used_at <= now - LAST_USED_RESOLUTION,
                        ),
                    )
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
            view = view.model_copy(update={"last_used_at": now})
        if revocations != self._revocations:
            return view  # valid when asked; whether it still is, the next lookup tells
        if len(self._known_keys) >= _MAX_KNOWN_KEYS:
            self._known_keys.clear()
        self._known_keys[key_hash] = (view, now + timedelta(seconds=API_KEY_CACHE_S))
        return view

    async def list_api_keys(self) -> list[ApiKeyView]:
        """Every key, revoked ones included, oldest first."""
        async with self._reads() as session:
            keys = await session.scalars(select(ApiKey).order_by(ApiKey.id))
            return [ApiKeyView.model_validate(key) for key in keys]

    async def revoke_api_key(self, key: str) -> bool:
        """Revoke by id (digits), by the 12-character prefix shown in lists, or by the full key.
        False if no such key is active."""
        if key.isdigit():
            match: ColumnElement[bool] = ApiKey.id == int(key)
        elif len(key) > API_KEY_SHOWN_CHARS:
            match = ApiKey.key_hash == hash_api_key(key)
        else:
            match = ApiKey.prefix == key
        self._forget_keys()
        try:
            async with self._writing() as session:
                result = await session.execute(
                    update(ApiKey)
                    .where(match, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=self._now())
                    .execution_options(synchronize_session=False)
                )
                return cast(CursorResult[Any], result).rowcount > 0
        finally:
            self._forget_keys()  # and what was looked up while the revocation committed

    async def has_api_keys(self) -> bool:
        """Whether any key is active (not revoked)."""
        async with self._reads() as session:
            found = await session.scalar(
                select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)
            )
            return found is not None
