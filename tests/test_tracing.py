"""One trace from the HTTP request through the enqueue, the worker's run and the agent's tool
call, recorded with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentqueue import tracing
from tests.support.app_api import in_process_api
from tests.support.waiting import eventually

LOCAL = ("127.0.0.1", 50000)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(provider)
    yield exporter
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.configure()  # off again for the other tests


def by_name(found: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [s for s in found if s.name == name]
    return span


async def test_a_chat_is_one_trace_from_request_to_tool_call(
    spans: InMemorySpanExporter, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path, run_worker=True,
                              AI_PROVIDER="builtin") as (http, _):
        queued = await http.post("/agent/queue/chat", json={"message": "Calculate 6 * 7"})
        job_id = queued.json()["jobId"]

        async def done() -> Any:
            job = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
            return job if job["status"] == "completed" else None

        await eventually(done, what="the chat to complete")

        async def recorded() -> tuple[ReadableSpan, ...] | None:
            found = spans.get_finished_spans()
            return found if any(s.name == "process agent-queue" for s in found) else None

        found = await eventually(recorded, what="the worker's span")
    request = by_name(found, "POST /agent/queue/chat")
    send = by_name(found, "send agent-queue")
    process = by_name(found, "process agent-queue")
    tool = by_name(found, "tool calculator")
    assert request.context is not None and send.context is not None
    assert process.context is not None and tool.context is not None
    trace_id = request.context.trace_id
    assert {s.context.trace_id for s in (send, process, tool)} == {trace_id}
    # Each the child of the one before: request -> enqueue -> run -> tool call.
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert tool.parent is not None and tool.parent.span_id == process.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.message.id"] == job_id


def test_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.configure()
    assert not tracing.enabled()
    assert tracing.job_telemetry() is None
    with tracing.span("nothing") as span:
        assert span is None
