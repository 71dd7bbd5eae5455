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

from agentqueue.admission import BacklogFull

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

    @app.exception_handler(BacklogFull)
    async def _backlog_full(_: Request, exc: BacklogFull) -> JSONResponse:
        return JSONResponse({"success": False, "message": exc.message}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unavailable: %s", exc)
        return JSONResponse(
            {"success": False, "message": "queue backend unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error")
        return JSONResponse({"success": False, "message": "internal error"}, status_code=500)
