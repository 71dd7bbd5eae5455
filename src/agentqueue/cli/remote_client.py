"""Remote mode: the operator commands over a running service's HTTP API, with an API key
(`--key` / `AGENTQUEUE_KEY`, sent as `Authorization: Bearer <key>`).

Routes: jobs at seed 001's `/api/jobs` (every job type, every queue; what the key's owner may
see, everything for an admin key), queues at seed 003's admin routes `/v1/admin/queue/…`
(admins), workers from `GET /metrics` (admins), usage at `/api/usage`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx

from agentqueue.cli.ops_client import FINISHED, Mode, OpsError, Update, split_ref

# `wait` polls (the service has no push channel to follow yet): progress, and a streaming
# job's text so far (`progress.text`).
POLL_INTERVAL_S = 0.5


class RemoteClient:
    mode: Mode = "remote"

    def __init__(self, base_url: str, key: str | None, *, implicit: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)
        # No --url was given: say how to give one if nothing answers here.
        self.implicit = implicit

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            hint = (" (no --url/AGENTQUEUE_URL and no REDIS_URL: is `agentqueue serve` running "
                    "here?)" if self.implicit else "")
            raise OpsError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}"
                           f"{hint}") from None
        if answer.is_success:
            return answer.json() if answer.headers.get("content-type", "").startswith(
                "application/json") else answer.text
        raise OpsError(_refusal(answer))

    # -- jobs ----------------------------------------------------------------------------------

    async def list_jobs(self, *, queue: str | None, type_: str | None, status: str | None,
                        limit: int, offset: int) -> dict[str, Any]:
        if queue is not None:
            raise OpsError("--queue needs direct mode (REDIS_URL): GET /api/jobs lists every "
                           "queue; filter by --type instead")
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if type_:
            params["type"] = type_
        if status:
            params["status"] = status
        return dict(await self._call("GET", "/api/jobs", params=params))

    async def get_job(self, ref: str) -> dict[str, Any]:
        split_ref(ref)
        return dict(await self._call("GET", f"/api/jobs/{ref}"))

    async def submit(self, type_: str, data: dict[str, Any], *, priority: int | None,
                     attempts: int | None, delay_ms: int, user: str | None,
                     org: str | None) -> dict[str, Any]:
        if user is not None or org is not None:
            raise OpsError("--user/--org are for direct mode: over HTTP the job belongs to "
                           "the key's user")
        body: dict[str, Any] = {"type": type_, "data": data, "delay": delay_ms}
        if priority is not None:
            body["priority"] = priority
        if attempts is not None:
            body["maxAttempts"] = attempts
        return dict(await self._call("POST", "/api/jobs", json=body))

    async def follow(self, ref: str, timeout: float | None) -> AsyncIterator[Update]:
        deadline = None if timeout is None else time.monotonic() + timeout
        last: tuple[Any, ...] | None = None
        attempts = None
        while True:
            job = await self.get_job(ref)
            if job["status"] in FINISHED:
                yield Update("done", job=job)
                return
            if attempts is not None and job["attempts"] > attempts:
                yield Update("retrying")
            attempts = job["attempts"]
            progress = job["progress"]
            seen = tuple(sorted(progress.items()))
            if seen != last:
                last = seen
                text = progress.get("text")  # a streaming job's text so far
                yield (Update("text", progress=progress, text=text) if text is not None
                       else Update("progress", progress=progress))
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {ref} did not finish within {timeout:g}s")
            await asyncio.sleep(POLL_INTERVAL_S)

    async def cancel(self, ref: str) -> dict[str, Any]:
        split_ref(ref)
        return dict(await self._call("PATCH", f"/api/jobs/{ref}/cancel"))

    async def retry(self, ref: str) -> dict[str, Any]:
        split_ref(ref)
        return dict(await self._call("POST", f"/api/jobs/{ref}/retry"))

    async def decide(self, ref: str, decision: str, reason: str | None) -> dict[str, Any]:
        split_ref(ref)
        return dict(await self._call("POST", f"/api/jobs/{ref}/approval",
                                     json={"decision": decision, "reason": reason}))

    # -- queues --------------------------------------------------------------------------------

    async def queues(self) -> list[dict[str, Any]]:
        every = await self._call("GET", "/v1/admin/queue/metrics/all")
        return [dict(counts) for counts in every.values()]

    async def pause(self, queue: str) -> dict[str, Any]:
        await self._call("POST", "/v1/admin/queue/pause", params={"queue": queue})
        return {"queue": queue, "paused": True}

    async def resume(self, queue: str) -> dict[str, Any]:
        await self._call("POST", "/v1/admin/queue/resume", params={"queue": queue})
        return {"queue": queue, "paused": False}

    async def clean(self, queue: str, *, older_than_s: float, state: str,
                    limit: int) -> dict[str, Any]:
        if state != "finished" or limit:
            raise OpsError("--state and --limit need direct mode (REDIS_URL): the HTTP API "
                           "cleans finished jobs (completed and failed) only")
        answer = await self._call("POST", "/v1/admin/queue/clean",
                                  params={"queue": queue, "olderThan": int(older_than_s * 1000)})
        return {"queue": queue, "removed": int(answer["removed"])}

    # -- workers and usage ---------------------------------------------------------------------

    async def workers(self) -> dict[str, Any]:
        from prometheus_client.parser import text_string_to_metric_families

        text = await self._call("GET", "/metrics")
        counts: dict[str, int] = {}
        for family in text_string_to_metric_families(str(text)):
            if family.name == "agentqueue_workers":
                for sample in family.samples:
                    counts[sample.labels["queue"]] = int(sample.value)
        return {"queues": counts}

    async def usage(self, *, since: date | None, org: str | None) -> dict[str, Any]:
        params = {}
        if since is not None:
            params["since"] = since.isoformat()
        if org is not None:
            params["organizationId"] = org
        return dict(await self._call("GET", "/api/usage", params=params))


def _refusal(answer: httpx.Response) -> str:
    """The service's own message for a refused request, on one line."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    message = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail")
    if not isinstance(message, str):
        message = (answer.text or answer.reason_phrase).strip()
    hints = {401: "; give an API key: --key or AGENTQUEUE_KEY",
             403: "; this needs an admin key"}
    first = message.splitlines()[0] if message else answer.reason_phrase
    return f"{first} (HTTP {answer.status_code}{hints.get(answer.status_code, '')})"
