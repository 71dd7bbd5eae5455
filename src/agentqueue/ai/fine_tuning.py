"""Fine-tuning on an OpenAI-compatible endpoint, with the official SDK: check the training
examples, upload them as a JSONL file (`POST /files`, purpose `fine-tune`), create the
fine-tuning job, read its status and events, cancel it.

What OpenAI asks of chat training data (platform.openai.com/docs/guides/fine-tuning): one JSON
object per line with a `messages` list of system/user/assistant (and tool) messages, at least one
assistant message to learn from, and at least 10 examples.

The SDK is imported with the first client, not with this module (start-up time).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentqueue.ai.providers.base import ProviderError, retry_after, safe_error_text

if TYPE_CHECKING:
    import openai

MIN_EXAMPLES = 10  # OpenAI refuses fewer
MAX_EXAMPLES = 50_000
ROLES = ("system", "developer", "user", "assistant", "tool")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class TrainingDataError(ValueError):
    """The examples cannot be trained on; the message names the example and what is wrong."""


def check_example(example: Any, where: str) -> dict[str, Any]:
    """One chat example as OpenAI reads it, or TrainingDataError naming `where` it is."""
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        raise TrainingDataError(f"{where}: an example is an object with a `messages` list")
    messages = example["messages"]
    if not messages:
        raise TrainingDataError(f"{where}: `messages` is empty")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise TrainingDataError(
                f"{where}: messages[{n}] needs a role, one of {', '.join(ROLES)}")
        content, calls = message.get("content"), message.get("tool_calls")
        if not (isinstance(content, str | list) or (message["role"] == "assistant" and calls)):
            raise TrainingDataError(f"{where}: messages[{n}] has no content")
    if not any(m["role"] == "assistant" for m in messages):
        raise TrainingDataError(f"{where}: no assistant message to learn from")
    return example


def check_examples(examples: Sequence[Any], what: str = "examples") -> list[dict[str, Any]]:
    if len(examples) < MIN_EXAMPLES:
        raise TrainingDataError(
            f"{what}: {len(examples)} given; fine-tuning needs at least {MIN_EXAMPLES}")
    if len(examples) > MAX_EXAMPLES:
        raise TrainingDataError(f"{what}: at most {MAX_EXAMPLES} examples")
    return [check_example(e, f"{what}[{i}]") for i, e in enumerate(examples)]


def parse_jsonl(text: str) -> list[Any]:
    """The examples of a JSONL text (blank lines skipped); TrainingDataError names a bad line."""
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                examples.append(json.loads(line))
            except ValueError:
                raise TrainingDataError(f"line {number}: not valid JSON") from None
    return examples


def to_jsonl(examples: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode()


@dataclass(frozen=True)
class RemoteJob:
    """A fine-tuning job as the endpoint reports it."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    message: str
    level: str = "info"
    # metrics events carry {"step", "total_steps", "train_loss", …}
    data: dict[str, Any] = field(default_factory=dict)


class FineTuningClient:
    """The files and fine-tuning endpoints of one OpenAI-compatible API."""

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 2) -> None:
        from openai import AsyncOpenAI

        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key
        self._client = AsyncOpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout,
                                   max_retries=max_retries)

    async def aclose(self) -> None:
        await self._client.close()

    async def upload(self, examples: Sequence[dict[str, Any]], filename: str) -> str:
        """Upload the examples as a JSONL training file; its file id."""
        created = await self._call(self._client.files.create(
            file=(filename, to_jsonl(examples), "application/jsonl"), purpose="fine-tune"))
        return str(created.id)

    async def create(self, *, model: str, training_file: str, suffix: str | None = None,
                     seed: int | None = None, hyperparameters: dict[str, Any] | None = None,
                     metadata: dict[str, str] | None = None) -> RemoteJob:
        options: dict[str, Any] = {}
        if suffix is not None:
            options["suffix"] = suffix
        if seed is not None:
            options["seed"] = seed
        if hyperparameters:
            options["hyperparameters"] = hyperparameters
        if metadata:
            options["metadata"] = metadata
        job = await self._call(self._client.fine_tuning.jobs.create(
            model=model, training_file=training_file, **options))
        return _remote_job(job)

    async def retrieve(self, job_id: str) -> RemoteJob:
        return _remote_job(await self._call(self._client.fine_tuning.jobs.retrieve(job_id)))

    async def cancel(self, job_id: str) -> RemoteJob:
        return _remote_job(await self._call(self._client.fine_tuning.jobs.cancel(job_id)))

    async def events(self, job_id: str, limit: int = 100) -> list[RemoteEvent]:
        """The newest `limit` events, oldest first (the API lists newest first)."""
        page = await self._call(self._client.fine_tuning.jobs.list_events(job_id, limit=limit))
        events = [RemoteEvent(id=str(e.id), message=str(e.message), level=str(e.level),
                              data=e.data if isinstance(e.data, dict) else {})
                  for e in page.data]
        return list(reversed(events))

    async def _call(self, call: Awaitable[Any]) -> Any:
        import openai

        try:
            return await call
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        import openai

        status = None
        retryable = True
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            body = exc.body
            error = body.get("error", body) if isinstance(body, dict) else None
            detail = (error.get("message") if isinstance(error, dict) else None) or exc.message
            message = f"answered HTTP {status}: {detail}"
        elif isinstance(exc, openai.APIConnectionError):
            message = "could not be reached"
        else:
            message = f"failed: {exc}"
        text = safe_error_text(f"fine-tuning API at {self.base_url} {message}", self._api_key)
        response = getattr(exc, "response", None)
        return ProviderError(text, retryable=retryable, status_code=status,
                             retry_after_s=retry_after(getattr(response, "headers", None)))


def _remote_job(job: Any) -> RemoteJob:
    error = getattr(job, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    return RemoteJob(id=str(job.id), status=str(job.status), model=str(job.model),
                     fine_tuned_model=job.fine_tuned_model,
                     trained_tokens=getattr(job, "trained_tokens", None),
                     error=str(message) if message else None)


@dataclass
class Backoff:
    """Seconds between polls: `start`, growing by `factor` while nothing happens, up to
    `ceiling`; back to `start` when something did."""

    start: float = 1.0
    factor: float = 1.6
    ceiling: float = 60.0
    current: float = 0.0

    def next(self, activity: bool) -> float:
        self.current = self.start if activity or not self.current else min(
            self.ceiling, self.current * self.factor)
        return self.current


async def follow(
    client: FineTuningClient,
    job_id: str,
    on_event: Callable[[RemoteEvent], Awaitable[None]],
    on_status: Callable[[RemoteJob], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
) -> RemoteJob:
    """Poll the job until it finishes, handing each new event (oldest first) and each status
    change to the callbacks; the finished job."""
    backoff = backoff or Backoff()
    seen: set[str] = set()
    status = ""
    while True:
        job = await client.retrieve(job_id)
        activity = job.status != status
        if activity:
            status = job.status
            await on_status(job)
        for event in await client.events(job_id):
            if event.id not in seen:
                seen.add(event.id)
                activity = True
                await on_event(event)
        if job.finished:
            return job
        await asyncio.sleep(backoff.next(activity))
