"""The providers a worker can use, built once from settings and chosen per job."""

from __future__ import annotations

from agentqueue.ai.factory import available_provider_names, build_provider
from agentqueue.ai.providers.base import Provider
from agentqueue.config import Settings


class ProviderPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Provider] = {}
        self.default = self.get(settings.ai_provider)

    @property
    def names(self) -> list[str]:
        """Providers that can be asked for by name with the current settings."""
        return available_provider_names(
            openai_api_key=self.settings.secret("openai_api_key"),
            anthropic_api_key=self.settings.secret("anthropic_api_key"),
        )

    def get(self, name: str | None) -> Provider:
        """The provider called `name` (None: the default); ProviderNotConfigured if it can't be."""
        key = (name or self.settings.ai_provider).strip().lower()
        if key not in self._built:
            s = self.settings
            provider = build_provider(
                key,
                openai_api_key=s.secret("openai_api_key"),
                openai_base_url=s.openai_base_url,
                openai_model=s.openai_model,
                openai_stream=s.openai_stream,
                anthropic_api_key=s.secret("anthropic_api_key"),
                anthropic_base_url=s.anthropic_base_url,
                anthropic_model=s.anthropic_model,
                dataset_path=str(s.agent_dataset) if s.agent_dataset else None,
                http_client=s.ai_http_client,
                timeout=s.ai_timeout_s,
                max_retries=s.ai_max_retries,
            )
            # "auto" and an explicit name may resolve to the same provider: share it.
            self._built[key] = self._built.setdefault(provider.name, provider)
        return self._built[key]

    async def aclose(self) -> None:
        for provider in {id(p): p for p in self._built.values()}.values():
            await provider.aclose()
