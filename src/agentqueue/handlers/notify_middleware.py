"""The notifications middleware: when a job with a `notify` option (`handlers.notify`) ends for
good — completed, failed with no attempt left or unretryable, or cancelled; never on a retry —
it queues one notification job per target that asked for that outcome.

Not lost if the worker dies: the notification jobs are queued from inside the job's run, as
soon as the handler has returned (or raised for the last time) and BEFORE the worker stores the
outcome in Redis — each recorded in SQL and queued in Redis like any submission, so durable
from then on. A worker killed in between leaves the job active; the stalled-job check runs it
again and that run announces its own outcome: at-least-once (a crash there announces twice),
never silently lost. The outcome hooks (run once Redis has the outcome) queue the same jobs
again, under the same job ids, so nothing is queued twice for one run; they cover the outcomes
decided outside the handler (cancelled, expired, stalled too often, a result that is not JSON).

Each notification job's id names the job, the run (its start time) and the outcome, so a job
retried by hand and ending again is announced again. Notification jobs carry no `notify`
themselves.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bullmq import UnrecoverableError

from agentqueue.config import Settings
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware
from agentqueue.engine.queue import CANCELLED_REASON
from agentqueue.handlers.chat_webhooks import DISCORD_MAX_CHARS, DISCORD_MESSAGE, SLACK_MESSAGE
from agentqueue.handlers.mail import SEND_NOTIFICATION
from agentqueue.handlers.notify import OPTION, NotifyTarget, Outcome, stored_targets
from agentqueue.handlers.webhooks import WEBHOOK
from agentqueue.registry import JobRegistry
from agentqueue.timefmt import iso_now

log = logging.getLogger("agentqueue.notify")

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")
ERROR_CHARS = 500  # of a failure's reason, in a chat message or email


class Notifications(Middleware):
    """Queue each ended job's notifications through `submitter` (recorded, owned)."""

    def __init__(self, submitter: JobSubmitter, settings: Settings,
                 registry: JobRegistry) -> None:
        self.submitter = submitter
        self.settings = settings
        self.registry = registry

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        if not ctx.opts.get(OPTION):
            return await call_next()
        try:
            result = await call_next()
        except Exception as exc:
            if _final(ctx, exc):
                await self._announce_safely(ctx, _outcome_of(exc), None, str(exc))
            raise
        await self._announce_safely(ctx, "completed", result, None)
        return result

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        if ctx.opts.get(OPTION):
            await self.announce(ctx, "completed", result, None)

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        if ctx.opts.get(OPTION) and not will_retry:
            await self.announce(ctx, _outcome_of(error), None, str(error))

    async def _announce_safely(self, ctx: JobContext, outcome: Outcome, result: Any,
                               error: str | None) -> None:
        # Inside the run, a failure to queue must not change the job's outcome: the outcome
        # hooks try again once it is stored.
        try:
            await self.announce(ctx, outcome, result, error)
        except Exception as exc:
            log.warning("Could not queue the notifications of job %s:%s yet: %s",
                        ctx.queue, ctx.id, exc)

    async def announce(self, ctx: JobContext, outcome: Outcome, result: Any,
                       error: str | None) -> None:
        owner, targets = stored_targets(ctx.opts[OPTION])
        event = _event(ctx, outcome, result, error)
        for index, target in enumerate(targets):
            if outcome not in target.on:
                continue
            name, data = self._job_for(target, event)
            definition = self.registry.get(name)
            if definition is None:  # served with --no-builtin
                log.warning("Job %s:%s asks for a %s notification, but this worker does not "
                            "serve %r", ctx.queue, ctx.id, target.kind, name)
                continue
            await self.submitter.accept(
                queue=definition.queue_name(self.settings), name=name, data=data, owner=owner,
                job_id=_notification_id(ctx, outcome, index),
            )

    def _job_for(self, target: NotifyTarget, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if target.webhook is not None:
            return WEBHOOK, {"url": str(target.webhook), "event": f"job.{event['status']}",
                             "payload": event}
        text = _line(event)
        if target.slack is not None:
            return SLACK_MESSAGE, {"url": str(target.slack), "text": text}
        if target.discord is not None:
            return DISCORD_MESSAGE, {"url": str(target.discord),
                                     "text": text[:DISCORD_MAX_CHARS]}
        return SEND_NOTIFICATION, {
            "to": target.email,
            "subject": f"Job {event['type']} {event['jobId']} {event['status']}"[:200],
            "message": text,
        }


def _final(ctx: JobContext, error: BaseException) -> bool:
    """Whether the worker will fail this job for good (as `WorkerRuntime._failed` decides)."""
    attempts = int(ctx.opts.get("attempts") or 1)
    return isinstance(error, UnrecoverableError) or ctx.attempt >= attempts


def _outcome_of(error: BaseException) -> Outcome:
    return "cancelled" if str(error) == CANCELLED_REASON else "failed"


def _event(ctx: JobContext, outcome: Outcome, result: Any, error: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "jobId": f"{ctx.queue}:{ctx.id}", "queue": ctx.queue, "type": ctx.name,
        "status": outcome, "attempts": ctx.attempt, "finishedAt": iso_now(),
    }
    if outcome == "completed":
        event["result"] = result
    else:
        event["error"] = error
    return event


def _line(event: dict[str, Any]) -> str:
    """The chat line (and email text) announcing an outcome."""
    icon = {"completed": "✅", "failed": "❌", "cancelled": "⏹"}[event["status"]]
    line = f"{icon} Job {event['type']} ({event['jobId']}) {event['status']}"
    if event.get("error"):
        reason = str(event["error"])
        line += f": {reason[:ERROR_CHARS]}{'…' if len(reason) > ERROR_CHARS else ''}"
    attempts = event["attempts"]
    return f"{line} after {attempts} attempt{'s' if attempts != 1 else ''}"


def _notification_id(ctx: JobContext, outcome: Outcome, index: int) -> str:
    """One id per (job, run, outcome, target): the run is its start time, the same inside the
    run and in the outcome hooks, new for a run after a crash or a retry by hand."""
    run = ctx.job.processedOn or ctx.attempt
    return _ID_UNSAFE.sub("_", f"notify.{ctx.queue}.{ctx.id}.{ctx.job.timestamp}.{run}."
                               f"{outcome}.{index}")
