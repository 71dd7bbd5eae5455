"""OpenTelemetry traces: on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otel` extra
(`pip install 'agentqueue[otel]'`) is installed; otherwise every call here costs nothing.

A trace runs from the HTTP request (FastAPI's instrumentation) through the enqueue, the worker's
run of the job and each provider and tool call in it. The enqueue's context travels in the job
as BullMQ's own telemetry option does (`opts.telemetry.metadata`, a JSON carrier of W3C trace
context), so a Node worker using BullMQ's telemetry continues the same trace, and ours continue
a Node producer's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("agentqueue.tracing")

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_configured = False


def enabled() -> bool:
    """Whether spans are recorded in this process (configures tracing on first call)."""
    if not _configured:
        configure()
    return _tracer is not None


def configure(provider: TracerProvider | None = None) -> None:
    """Trace with `provider` (tests pass one with an in-memory exporter), or, without one, with
    an OTLP exporter to `OTEL_EXPORTER_OTLP_ENDPOINT` if that is set (the SDK reads the other
    `OTEL_*` variables itself: service name, headers, sampler)."""
    global _tracer, _provider, _configured
    _configured = True
    if provider is None:
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            _tracer = _provider = None
            return
        try:
            provider = _otlp_provider()
        except ImportError:
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
                        "installed: pip install 'agentqueue[otel]'; tracing stays off")
            _tracer = _provider = None
            return
    _provider = provider
    _tracer = provider.get_tracer("agentqueue")


def _otlp_provider() -> TracerProvider:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "agentqueue")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def provider() -> TracerProvider | None:
    """The provider spans go to (to instrument libraries such as FastAPI), None when off."""
    return _provider if enabled() else None


# Where a job's span waits in `ctx.state` between the worker's hooks.
JOB_SPAN = "tracing.span"


def start_span(name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None,
               parent: Mapping[str, str] | None = None) -> Span | None:
    """A started span, not made current (None when tracing is off). `parent`: a carrier (from
    `carrier()` or a job's telemetry metadata) whose trace it continues; else the current
    span's."""
    if not enabled():
        return None
    assert _tracer is not None
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    return _tracer.start_span(
        name, context=extract(dict(parent)) if parent else None,
        kind=getattr(trace.SpanKind, kind.upper()),
        attributes={k: v for k, v in (attributes or {}).items() if v is not None})


@contextlib.contextmanager
def current(span: Span | None) -> Iterator[None]:
    """`span` is the current one within the block (nothing when None)."""
    if span is None:
        yield
        return
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False, record_exception=False,
                        set_status_on_exception=False):
        yield


@contextlib.contextmanager
def span(name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None,
         parent: Mapping[str, str] | None = None) -> Iterator[Span | None]:
    """A span around the block, current within it, ended after it (None when off); an
    exception leaving the block is recorded on it."""
    started = start_span(name, kind=kind, attributes=attributes, parent=parent)
    if started is None:
        yield None
        return
    try:
        with current(started):
            yield started
    except BaseException as exc:
        failed(started, exc)
        raise
    finally:
        started.end()


def failed(span: Span | None, error: BaseException) -> None:
    """Mark `span` as failed with `error`."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers (`traceparent`, …), or None when off."""
    if not enabled():
        return None
    from opentelemetry.propagate import inject

    headers: dict[str, str] = {}
    inject(headers)
    return headers or None


def job_telemetry() -> dict[str, Any] | None:
    """BullMQ's `telemetry` job option carrying the current context, or None when off."""
    headers = carrier()
    return {"metadata": json.dumps(headers)} if headers else None


def parent_of(opts: Mapping[str, Any]) -> dict[str, str] | None:
    """The carrier a job's options hold (BullMQ's `telemetry.metadata`), if any."""
    telemetry = opts.get("telemetry")
    if not isinstance(telemetry, Mapping) or not isinstance(telemetry.get("metadata"), str):
        return None
    try:
        found = json.loads(telemetry["metadata"])
    except ValueError:
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def ids_of(span: Span | None = None) -> tuple[str, str] | None:
    """(trace id, span id) in hex of `span` (default: the current span), for log lines; None
    without one."""
    if not enabled():
        return None
    from opentelemetry import trace

    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
