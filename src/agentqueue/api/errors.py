"""Error answers as the seeds show them: `{"success": false, "message": "..."}`, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import ClusterDownError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout
from starlette.exceptions import HTTPException

from agentqueue.core.admission import BacklogFull
from agentqueue.core.budgets import BudgetExceeded
from agentqueue.core.errors import JobConflict, JobNotFound
from agentqueue.core.schedules import ScheduleNotFound
from agentqueue.core.submission import NotQueued
from agentqueue.engine.health import RedisUnavailable

log = logging.getLogger("agentqueue.api")


class ApiError(Exception):
    """Raise from a route to answer `status` with `{"success": false, "message": message}`."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def join_field(*parts: str | int) -> str:
    """A field path: ("data", "items", 0, "text") -> "data.items[0].text"; empty parts skipped."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else part
    return out


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "conversationHistory", 0, "role") -> "conversationHistory[0].role"
    # Only the leading location is dropped: a field may itself be called "body" or "query".
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    return join_field(*(p if isinstance(p, int) else str(p) for p in parts)) or "body"


def _json_error(error: dict[str, Any], body: Any) -> str:
    """ "body: invalid JSON at line 1 column 18: Expecting ',' delimiter" """
    reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
    loc = tuple(error.get("loc", ()))
    pos = loc[-1] if loc and isinstance(loc[-1], int) else None
    if pos is None or not isinstance(body, str):
        return f"body: invalid JSON: {reason}"
    line = body.count("\n", 0, pos) + 1
    column = pos - body.rfind("\n", 0, pos)
    return f"body: invalid JSON at line {line} column {column}: {reason}"


def describe_validation_error(
    exc: RequestValidationError | ValidationError, *, within: tuple[str | int, ...] = ()
) -> str:
    """One line naming each invalid field and what is wrong; `within` is where the validated
    value sits in the request (("data",) for a job's data), so fields read `data.url`."""
    messages = []
    body = getattr(exc, "body", None)
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            messages.append(_json_error(dict(error), body))
            continue
        where = _field(within + tuple(error.get("loc", ())))
        text = str(error.get("msg", "is invalid"))
        if error.get("type") == "missing":
            text = "is required"
        elif error.get("type") == "extra_forbidden":
            text = "unknown field (not accepted here)"
        elif error.get("type") == "value_error":
            text = text.removeprefix("Value error, ")
        elif (error.get("ctx") or {}).get("pattern") == r"\S":
            text = "must not be blank"  # rather than "String should match pattern '\S'"
        messages.append(f"{where}: {text}")
    return "; ".join(messages) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"success": False, "message": exc.message, **exc.extra}, status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"success": False, "message": describe_validation_error(exc)}, status_code=400
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405 and request.scope.get("path_params"):
            # The path only fits a template (`POST /v1/jobs/bogus` against
            # `GET /v1/jobs/{job_id}`): there is no such resource, rather than a wrong method.
            return JSONResponse(
                {"success": False, "message": f"Not found: {request.method} {request.url.path}"},
                status_code=404,
            )
        if exc.status_code == 404 and exc.detail == "Not Found":
            return JSONResponse(
                {"success": False, "message": f"Not found: {request.method} {request.url.path}"},
                status_code=404,
            )
        return JSONResponse(
            {"success": False, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # The core's refusals, one status each, whichever API the request came through.
    @app.exception_handler(JobNotFound)
    async def _not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=404)

    @app.exception_handler(ScheduleNotFound)
    async def _no_schedule(_: Request, exc: ScheduleNotFound) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=404)

    @app.exception_handler(JobConflict)
    async def _conflict(_: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=409)

    @app.exception_handler(BacklogFull)
    async def _backlog_full(_: Request, exc: BacklogFull) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(BudgetExceeded)
    async def _over_budget(_: Request, exc: BudgetExceeded) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=402)

    # Redis unreachable (or known to be down: the request client refuses at once), or a job
    # Redis certainly did not take (its record is gone too): nothing happened, try again. A
    # cluster client that reaches no node raises RedisClusterException, which is no RedisError.
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisClusterException)
    @app.exception_handler(ClusterDownError)
    @app.exception_handler(RedisTimeoutError)
    @app.exception_handler(NotQueued)
    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        _count(request, "agentqueue_redis_errors_total")
        cause = exc.__cause__ if isinstance(exc, NotQueued) and exc.__cause__ else exc
        if not isinstance(cause, RedisUnavailable):  # known down: the monitor said so once
            log.warning("Redis unavailable: %s: %s", type(cause).__name__, cause)
        return JSONResponse(
            {"success": False, "message": "queue backend unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    # The records database has no free connection in time (overload) or cannot be reached.
    # Logged without the error's text, which may carry SQL parameters or the database URL.
    @app.exception_handler(SqlPoolTimeout)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _records_down(request: Request, exc: Exception) -> JSONResponse:
        _count(request, "agentqueue_sql_errors_total")
        log.warning("Records database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"success": False,
             "message": "records database busy or unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error")
        return JSONResponse({"success": False, "message": "internal error"}, status_code=500)


def _count(request: Request, name: str) -> None:
    services = getattr(request.app.state, "services", None)
    if services is not None and services.metrics is not None:
        services.metrics.count(name, {"process": "api"})
