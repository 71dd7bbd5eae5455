"""Push: what happens to jobs, as it happens, for whoever may see them (SSE, WebSocket).

`PushHub` (one per process) reads each queue's BullMQ events stream and deltas stream
(`engine.deltas`) from Redis, so every API process hears every worker, wherever it runs; a
`Feed` is one subscriber's view: one job's events or all of a caller's jobs, filtered by
ownership as every HTTP API filters, each event with a resumable id (`Cursor`).
"""

from agentqueue.push.cursor import Cursor, CursorError
from agentqueue.push.feed import Feed, PushEvent, PushHub, Snapshot, Snapshots

__all__ = ["Cursor", "CursorError", "Feed", "PushEvent", "PushHub", "Snapshot", "Snapshots"]
