"""Model fallbacks: a provider that asks models in order (across providers) until one answers.

A job or an agent lists models (`[{"provider": "openai", "model": "gpt-4o-mini"},
{"provider": "anthropic"}, {"provider": "builtin"}]`); each call goes to the first, and a
failure that another model may not share moves it to the next:
- the provider could not be reached (connection refused, DNS), timed out, or its stream broke;
- it answered 5xx, 408, 409, or 429 past the wait its link allows (see `LimitedProvider`);
- it refused this account or model: 401, 403, 404 (a bad key or an unknown model at one
  provider says nothing about the next one);
- it cannot do this honestly (`CapabilityUnavailable`: the builtin provider asked for JSON).
A 400 or 422 is the request's fault (too long, a bad schema): every model would refuse it, so it
fails at once, as without fallbacks. A link that already streamed text is not replaced either:
its words reached subscribers, and another model's answer would follow them.

Each failed link is reported to `on_failure` (the job's usage ledger records it); `name` is the
provider that answered last, so results name who really answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agentqueue.ai.providers.base import (
    CapabilityUnavailable,
    Provider,
    ProviderError,
    TextCallback,
)
from agentqueue.ai.types import ChatMessage, EmbeddingResult, ProviderReply, ToolSpec

T = TypeVar("T")
BUILTIN = "builtin"
# The request itself is wrong: no other model will take it.
REQUEST_ERRORS = frozenset({400, 422})

FailureCallback = Callable[[str, str, ProviderError], Awaitable[None]]
# The setting that makes each provider available (builtin always is).
PROVIDER_SETTINGS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class ModelChoice(BaseModel):
    """One model of a fallback chain, as a job's `models` or an agent's `models` name it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: Literal["openai", "anthropic", "builtin"]
    model: str | None = Field(None, min_length=1, max_length=200,
                              description="default: the provider's (OPENAI_MODEL, ...)")


def unconfigured(choices: Sequence[ModelChoice], available: Sequence[str]) -> str | None:
    """Why a chain cannot run with these providers configured (naming the setting), or None."""
    for index, choice in enumerate(choices):
        if choice.provider not in available:
            setting = PROVIDER_SETTINGS.get(choice.provider, "AI_PROVIDER")
            return (f"models[{index}]: provider {choice.provider!r} is not configured "
                    f"(set {setting})")
    return None


@dataclass(frozen=True)
class ModelLink:
    """One model of a chain: the provider (already limited for the job) and the model name."""

    provider: Provider
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


def falls_back(error: ProviderError) -> bool:
    """Whether the next model may answer where this one failed."""
    return error.status_code not in REQUEST_ERRORS


class AllModelsFailed(ProviderError):
    """Every model of the chain failed; retryable when any of their failures was."""

    def __init__(self, failures: list[tuple[ModelLink, ProviderError]]) -> None:
        text = "; ".join(f"{link.label}: {error}" for link, error in failures)
        last = failures[-1][1]
        super().__init__(f"every model failed: {text}",
                         retryable=any(error.retryable for _, error in failures),
                         status_code=last.status_code, retry_after_s=last.retry_after_s)
        self.failures = failures


class FallbackProvider:
    """Asks each model of `links` in order; the first answer is the reply."""

    def __init__(self, links: list[ModelLink], *, on_failure: FailureCallback | None = None
                 ) -> None:
        if not links:
            raise ValueError("a fallback chain needs at least one model")
        self.links = links
        self.on_failure = on_failure
        self.model = links[0].model
        # Before any answer: the first language model's name, so a text task (which takes the
        # builtin provider's own path when `name` is "builtin") asks the chain, whose builtin
        # link answers only agent turns.
        self._answered = next((link.provider.name for link in links
                               if link.provider.name != BUILTIN), BUILTIN)

    @property
    def name(self) -> str:
        """The provider that answered the latest call."""
        return self._answered

    def __repr__(self) -> str:
        return f"FallbackProvider({', '.join(link.label for link in self.links)})"

    async def chat(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
    ) -> ProviderReply:
        """`model` is ignored: each link asks its own."""
        async def ask(link: ModelLink, streamed: list[bool]) -> ProviderReply:
            if link.provider.name == BUILTIN and not tools:
                # Without tools the builtin provider has no way to answer honestly: a task's
                # prompt (summarize this) would get its "I answer dataset questions" text.
                raise CapabilityUnavailable(
                    "the builtin provider has no language model: in a chain it answers agent "
                    "jobs (chat, batch, agent-task), not free-form prompts")
            relay: TextCallback | None = None
            if on_text is not None:
                async def relay(text: str) -> None:
                    streamed[0] = True
                    await on_text(text)
            return await link.provider.chat(
                messages, tools, model=link.model, max_tokens=max_tokens,
                temperature=temperature, json_schema=json_schema, on_text=relay)

        return await self._first(ask)

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        """Each provider embeds with its embedding model (`model`, else its own default)."""
        async def ask(link: ModelLink, _streamed: list[bool]) -> EmbeddingResult:
            return await link.provider.embed(texts, model=model)

        return await self._first(ask)

    async def _first(self, ask: Callable[[ModelLink, list[bool]], Awaitable[T]]) -> T:
        failures: list[tuple[ModelLink, ProviderError]] = []
        for link in self.links:
            streamed = [False]
            try:
                result = await ask(link, streamed)
            except ProviderError as exc:
                if not falls_back(exc) or streamed[0]:
                    raise
                failures.append((link, exc))
                if self.on_failure is not None:
                    await self.on_failure(link.provider.name, link.model, exc)
                continue
            self._answered = link.provider.name
            return result
        raise AllModelsFailed(failures)

    async def aclose(self) -> None:
        """The links' providers are shared by many jobs: their owner closes them."""
