"""Error answers as the seeds show them: `{"success": false, "message": "..."}`, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from agentqueue.engine.health import RedisUnavailable
from agentqueue.submission import NotQueued

log = logging.getLogger("agentqueue.api")


class ApiError(Exception):
    """Raise from a route to answer `status` with `{"success": false, "message": message}`."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "conversationHistory", 0, "role") -> "conversationHistory[0].role"
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def describe_validation_error(exc: RequestValidationError | ValidationError) -> str:
    messages = []
    for error in exc.errors():
        where = _field(tuple(error.get("loc", ())))
        text = str(error.get("msg", "is invalid"))
        if error.get("type") == "missing":
            text = "is required"
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
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"success": False, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # Redis unreachable (or known to be down: the request client refuses at once), or a job
    # Redis certainly did not take (its record is gone too): nothing happened, try again.
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    @app.exception_handler(NotQueued)
    async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
        cause = exc.__cause__ if isinstance(exc, NotQueued) and exc.__cause__ else exc
        if not isinstance(cause, RedisUnavailable):  # known down: the monitor said so once
            log.warning("Redis unavailable: %s: %s", type(cause).__name__, cause)
        return JSONResponse(
            {"success": False, "message": "queue backend unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error")
        return JSONResponse({"success": False, "message": "internal error"}, status_code=500)
