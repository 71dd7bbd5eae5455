"""Choosing a provider and the default tools from settings (passed in; ``ai`` reads no env)."""

from __future__ import annotations

from pathlib import Path

from agentqueue.ai.providers.base import Provider, ProviderNotConfigured
from agentqueue.ai.providers.builtin import BuiltinProvider
from agentqueue.ai.providers.http_client import DEFAULT_HTTP_CLIENT
from agentqueue.ai.tools.base import ToolRegistry
from agentqueue.ai.tools.calculator import calculator_tool
from agentqueue.ai.tools.dataset import dataset_tools, load_dataset

PROVIDER_NAMES = ("auto", "openai", "anthropic", "builtin")


def available_provider_names(
    openai_api_key: str | None = None, anthropic_api_key: str | None = None
) -> list[str]:
    """The providers that can be built with these settings: always builtin, then each provider
    whose key is set (so an API can refuse a request naming one that is not configured)."""
    names = ["builtin"]
    if openai_api_key:
        names.append("openai")
    if anthropic_api_key:
        names.append("anthropic")
    return names


def build_provider(
    name: str | None = None,
    *,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
    openai_model: str | None = None,
    openai_stream: bool = True,
    anthropic_api_key: str | None = None,
    anthropic_base_url: str | None = None,
    anthropic_model: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    dataset_path: str | Path | None = None,
    http_client: str = DEFAULT_HTTP_CLIENT,
) -> Provider:
    """The provider called ``name``. None or "auto" means openai when its key is set, else
    anthropic when its key is set, else builtin.

    ``dataset_path`` lets the builtin provider recognise the dataset's names in questions; pass
    the same path as to ``default_tools``. ``http_client`` is the HTTP client under the SDKs
    ("aiohttp" or "httpx", see ``agentqueue.ai.providers.http_client``).
    """
    choice = (name or "auto").strip().lower()
    if choice not in PROVIDER_NAMES:
        raise ProviderNotConfigured(
            f"unknown provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}"
        )
    if choice == "auto":
        if openai_api_key:
            choice = "openai"
        elif anthropic_api_key:
            choice = "anthropic"
        else:
            choice = "builtin"
    if choice == "openai":
        if not openai_api_key:
            raise ProviderNotConfigured("provider 'openai' needs OPENAI_API_KEY")
        # Imported here: the SDK takes a while to import (see agentqueue.ai.providers).
        from agentqueue.ai.providers.openai_provider import DEFAULT_MODEL, OpenAIProvider

        return OpenAIProvider(
            api_key=openai_api_key,
            base_url=openai_base_url or None,
            model=openai_model or DEFAULT_MODEL,
            stream=openai_stream,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
    if choice == "anthropic":
        if not anthropic_api_key:
            raise ProviderNotConfigured("provider 'anthropic' needs ANTHROPIC_API_KEY")
        from agentqueue.ai.providers.anthropic_provider import (
            DEFAULT_MODEL as ANTHROPIC_DEFAULT_MODEL,
        )
        from agentqueue.ai.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=anthropic_api_key,
            base_url=anthropic_base_url or None,
            model=anthropic_model or ANTHROPIC_DEFAULT_MODEL,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
    return BuiltinProvider(load_dataset(dataset_path))


def default_tools(dataset_path: str | Path | None = None) -> ToolRegistry:
    """Calculator plus the dataset search tools over ``dataset_path`` (default: shipped CSV)."""
    return ToolRegistry([calculator_tool(), *dataset_tools(load_dataset(dataset_path))])
