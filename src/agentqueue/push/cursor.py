"""A feed's position: the last entry handled of each stream it follows.

A feed merges several Redis streams (each queue's events and deltas). Their ids are not one
order (two streams can mint the same millisecond), so one id cannot say where a merged feed
stopped; the position of every stream can. Written `queue:e=<id>,queue:d=<id>` (queue names
cannot contain ':'): the `id:` of an SSE event, sent back as `Last-Event-ID`.
"""

from __future__ import annotations

import re

EVENTS, DELTAS = "e", "d"
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class CursorError(ValueError):
    """Not a position a feed gave."""


class Cursor(dict[tuple[str, str], str]):
    """(queue, EVENTS | DELTAS) -> the last stream entry id handled."""

    def encode(self) -> str:
        return ",".join(f"{queue}:{kind}={entry}" for (queue, kind), entry in sorted(self.items()))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        cursor = cls()
        for part in text.strip().split(","):
            name, sep, entry = part.rpartition("=")
            queue, colon, kind = name.rpartition(":")
            if not sep or not colon or not queue or kind not in (EVENTS, DELTAS) \
                    or not _ID.match(entry):
                raise CursorError(f"not an event id this API gave: {text[:100]!r}")
            cursor[(queue, kind)] = entry
        return cursor
