"""A feed's position survives the trip through `Last-Event-ID`, and anything else is refused."""

from __future__ import annotations

import pytest

from agentqueue.push import Cursor, CursorError


def test_a_position_reads_back_as_written() -> None:
    cursor = Cursor({("ai-jobs", "e"): "1700000000000-3", ("ai-jobs", "d"): "0-0",
                     ("agent-queue", "e"): "17-0"})
    assert Cursor.decode(cursor.encode()) == cursor
    assert cursor.encode() == "agent-queue:e=17-0,ai-jobs:d=0-0,ai-jobs:e=1700000000000-3"


@pytest.mark.parametrize("text", ["", "nope", "ai-jobs:e=1-0,x", "ai-jobs:q=1-0",
                                  "ai-jobs:e=abc", ":e=1-0", "ai-jobs=1-0"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        Cursor.decode(text)
