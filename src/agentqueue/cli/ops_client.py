"""What the operator commands (`jobs`, `queues`, `workers`, `usage`) ask of agentqueue, and the
choice of where they ask it: a running service over HTTP (remote mode) or Redis and the
records directly (direct mode).

Both clients answer the same plain JSON-able dicts, in the shapes of the HTTP API (a job as
`GET /api/jobs/{queue}:{id}` answers it, usage as `GET /api/usage`), so `--json` prints the
same thing in either mode; where a mode knows more (direct mode: a job's usage and status
history, each worker process) it adds keys, never changes them.

The mode: `--url` (or `AGENTQUEUE_URL`) is remote; otherwise `REDIS_URL` (or `REDIS_HOST`…) set
is direct; with neither, remote at `http://127.0.0.1:<PORT>`, the laptop's `agentqueue serve`
(which serves this machine without a key while no key exists).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

Mode = Literal["direct", "remote"]
FINISHED = frozenset({"completed", "failed", "cancelled"})  # seed 001's final statuses


class OpsError(Exception):
    """A refusal or failure to show the user as one line (exit code `code`, 1 by default)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Update:
    """What `wait` shows: progress (current/total/message), streamed text so far, an attempt
    that failed and will be retried, or the finished job (the last update)."""

    kind: Literal["progress", "text", "retrying", "done"]
    progress: dict[str, Any] | None = None
    text: str | None = None
    job: dict[str, Any] | None = None


class OpsClient(Protocol):
    mode: Mode

    async def list_jobs(self, *, queue: str | None, type_: str | None, status: str | None,
                        limit: int, offset: int) -> dict[str, Any]: ...

    async def get_job(self, ref: str) -> dict[str, Any]: ...

    async def submit(self, type_: str, data: dict[str, Any], *, priority: int | None,
                     attempts: int | None, delay_ms: int, user: str | None,
                     org: str | None) -> dict[str, Any]: ...

    def follow(self, ref: str, timeout: float | None) -> AsyncIterator[Update]: ...

    async def cancel(self, ref: str) -> dict[str, Any]: ...

    async def retry(self, ref: str) -> dict[str, Any]: ...

    async def decide(self, ref: str, decision: str, reason: str | None) -> dict[str, Any]: ...

    async def queues(self) -> list[dict[str, Any]]: ...

    async def pause(self, queue: str) -> dict[str, Any]: ...

    async def resume(self, queue: str) -> dict[str, Any]: ...

    async def clean(self, queue: str, *, older_than_s: float, state: str,
                    limit: int) -> dict[str, Any]: ...

    async def workers(self) -> dict[str, Any]: ...

    async def usage(self, *, since: date | None, org: str | None) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def split_ref(ref: str) -> tuple[str, str]:
    """`queue:id` (as /api/jobs names jobs) -> (queue, id). Job ids may hold ':'; queues not."""
    queue, sep, job_id = ref.partition(":")
    if not sep or not queue or not job_id:
        raise OpsError(f"job {ref!r}: name a job as QUEUE:ID, e.g. ai-jobs:1 "
                       "(the ids `agentqueue jobs list` shows)")
    return queue, job_id


def progress_of(raw: Any) -> dict[str, Any]:
    """A job's progress as current/total/percentage/message, whatever it reported: a number
    (percent), `{current, total, message}`, or streamed text's `{percent, text, streaming}`."""
    message = None
    if isinstance(raw, dict):
        if "current" in raw and "total" in raw:
            current, total = float(raw["current"] or 0), float(raw["total"] or 0)
            percentage = round(100 * current / total, 2) if total else 0.0
            return {"current": current, "total": total, "percentage": percentage,
                    "message": raw.get("message")}
        message = raw.get("message")
        raw = raw.get("percent", 0)
    value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    return {"current": value, "total": 100.0, "percentage": value, "message": message}


def choose_mode(url: str | None, app_ref: str | None) -> tuple[Mode, str | None]:
    """(mode, URL of the service in remote mode), as the module docstring says."""
    from agentqueue.config import get_settings

    if url:
        return "remote", url  # the service's own job types apply: `app_ref` is not needed
    settings = get_settings()
    if settings.external_redis_url is not None:
        return "direct", None
    return "remote", f"http://127.0.0.1:{settings.port}"


@contextlib.asynccontextmanager
async def open_client(url: str | None, key: str | None,
                      app_ref: str | None) -> AsyncIterator[OpsClient]:
    mode, base = choose_mode(url, app_ref)
    client: OpsClient
    if mode == "remote":
        from agentqueue.cli.remote_client import RemoteClient

        assert base is not None
        client = RemoteClient(base, key, implicit=url is None)
    else:
        from agentqueue.cli.direct_client import DirectClient

        client = DirectClient.for_app(app_ref)
    try:
        yield client
    finally:
        await client.close()
