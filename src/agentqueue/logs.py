"""Log output: text for people, or JSON lines (`LOG_FORMAT=json`) for log pipelines.

JSON lines carry `time`, `level`, `logger` and `message`, the job's `job_id`, `queue` and
`job_type` on the lines a worker logs about a job, and `trace_id`/`span_id` wherever a trace
is current (see `agentqueue.tracing`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

from agentqueue import tracing

# The fields a record may carry as `extra`, copied into JSON lines when present.
JOB_FIELDS = ("job_id", "queue", "job_type", "trace_id", "span_id")


# The job a worker's task is running now: its fields go on every line logged meanwhile.
_job: ContextVar[Mapping[str, str] | None] = ContextVar("agentqueue_log_job", default=None)


@contextlib.contextmanager
def about_job(fields: Mapping[str, str]) -> Iterator[None]:
    """Lines logged within the block (by the handler, a provider, a tool) carry `fields`."""
    token = _job.set(fields)
    try:
        yield
    finally:
        _job.reset(token)


class TraceIds(logging.Filter):
    """Adds the job being run (if any) and the current trace's ids to a record that lacks
    them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_job.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "trace_id"):
            ids = tracing.ids_of()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


def json_formatter(tag: str = "") -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    static = {"process_tag": tag.strip(" []")} if tag else None
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields=static,
    )


def setup(level: str, fmt: str, tag: str = "") -> None:
    """Configure the root logger: `fmt` "text" or "json"; `tag` names a supervised process."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(json_formatter(tag))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s{tag} [%(name)s] %(message)s"))
    handler.addFilter(TraceIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
