"""Checks every request passes before any route sees it, whichever API receives it.

- JSON bodies are strict JSON: `NaN`, `Infinity` and `-Infinity` (which Python's `json` accepts)
  are refused, as no other JSON parser and no database column takes them.
- No string may contain a NUL character (`\\u0000`), in the body (keys and values, at any depth),
  the path or the query: PostgreSQL cannot store one, and no job input needs one.

- JSON may nest at most `MAX_JSON_DEPTH` levels: deeper documents exhaust parsers and
  serializers (Python's, pydantic's, Node's) long before any job could need them.

Each answers 400 naming where the problem is. Every router uses `EdgeRoute` as its route class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from agentqueue.api.errors import ApiError

NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
# A JSON string literal, or one of the constants Python's json reads and JSON does not have.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


MAX_JSON_DEPTH = 64
# A JSON string literal (skipped: brackets inside strings do not nest), or a bracket.
_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|([\[{])|[\]}]', re.DOTALL)


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body` nests arrays and objects more than `limit` levels, found by a scan rather
    than by parsing (a parser would recurse that deep first)."""
    depth = 0
    for match in _NESTING.finditer(body):
        if match.group(1):
            depth += 1
            if depth > limit:
                return True
        elif match.group(0) in (b"]", b"}"):
            depth -= 1
    return False


class _NonFinite(Exception):
    def __init__(self, constant: str) -> None:
        self.constant = constant


def _refuse(constant: str) -> Any:
    raise _NonFinite(constant)


def parse_json(body: bytes) -> Any:
    """`body` as strict JSON; `json.JSONDecodeError` (with its position) otherwise."""
    try:
        return json.loads(body, parse_constant=_refuse)
    except _NonFinite as exc:
        doc = body.decode("utf-8", errors="replace")
        pos = next((m.start(1) for m in _TOKEN.finditer(doc) if m.group(1)), 0)
        raise json.JSONDecodeError(
            f"{exc.constant} is not a JSON number (JSON has no NaN or Infinity)", doc, pos
        ) from None


def nul_path(value: Any, where: str = "body") -> str | None:
    """Where in `value` (parsed JSON) a string holds a NUL, e.g. `body.data.items[2]`; or None."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                return where
            found = nul_path(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = nul_path(item, f"{where}[{i}]")
            if found:
                return found
    return None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if too_deep(body):
                raise HTTPException(status_code=400,
                                    detail=f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels")
            parsed = parse_json(body)
            where = nul_path(parsed)
            if where:
                # An HTTPException: FastAPI lets it through its body parsing as it is.
                raise HTTPException(status_code=400, detail=f"{where}: {NUL_MESSAGE}")
            self._json = parsed
        return self._json


def check_url(request: Request) -> None:
    """400 for a NUL in the path or in a query parameter (name or value)."""
    if NUL in request.url.path:
        raise ApiError(400, f"path: {NUL_MESSAGE}")
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            raise ApiError(400, f"{name.replace(NUL, '?')}: {NUL_MESSAGE}")


class EdgeRoute(APIRoute):
    """An APIRoute whose requests pass the checks above before its handler runs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check_url(request)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return checked
