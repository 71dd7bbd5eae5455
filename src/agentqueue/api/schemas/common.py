"""Shapes every API shares: the error answer, and the string and number rules of inputs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agentqueue.handlers.inputs import Name


class ErrorBody(BaseModel):
    """Every error answer: `{"success": false, "message": "what was wrong"}` (some add fields)."""

    model_config = ConfigDict(extra="allow")

    success: bool = False
    message: str


__all__ = ["MAX_AGE_MS", "MAX_DELAY_MS", "MAX_OFFSET", "STRICT_INPUT", "ErrorBody", "Name"]

# Bounds of integer query parameters, so no value reaches SQL or Redis out of their range
# (an offset over 2**63-1 is no SQL integer). A billion rows; a hundred years in ms.
MAX_OFFSET = 1_000_000_000
MAX_AGE_MS = 100 * 366 * 24 * 3600 * 1000
# A job may be delayed by up to a year: further is a mistake, not a plan.
MAX_DELAY_MS = 366 * 24 * 3600 * 1000

# Inputs take JSON types as they are: `true` is not a number, `"5"` is not an integer, as the
# schema says. (Strict in Python mode still reads nested objects from dicts.) A field the API
# does not know is refused, not dropped without a word (a misspelt `delay` must not pass).
STRICT_INPUT = ConfigDict(strict=True, extra="forbid")
