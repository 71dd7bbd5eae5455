from __future__ import annotations

import subprocess
import sys

import pytest

from agentqueue.ai import ProviderNotConfigured, build_provider, default_tools
from agentqueue.ai.factory import available_provider_names
from agentqueue.ai.providers.anthropic_provider import AnthropicProvider


def test_auto_without_a_key_is_builtin() -> None:
    assert build_provider(None).name == "builtin"
    assert build_provider("auto", openai_api_key="").name == "builtin"


async def test_auto_with_a_key_is_openai() -> None:
    provider = build_provider("auto", openai_api_key="sk-secret-x", openai_model="m")
    try:
        assert provider.name == "openai"
        assert "sk-secret-x" not in repr(provider)
    finally:
        await provider.aclose()


def test_openai_without_a_key_is_not_configured() -> None:
    with pytest.raises(ProviderNotConfigured, match="provider 'openai' needs OPENAI_API_KEY"):
        build_provider("openai")


def test_unknown_provider_is_named_in_the_error() -> None:
    with pytest.raises(ProviderNotConfigured, match="unknown provider 'gemini'"):
        build_provider("gemini")


def test_default_tools() -> None:
    assert sorted(default_tools(None).names()) == [
        "calculator",
        "describe_dataset",
        "get_company",
        "search_companies",
        "search_companies_by_category",
        "search_deals_by_investor",
    ]


def test_history_items_are_validated() -> None:
    from pydantic import ValidationError

    from agentqueue.ai import ChatMessage

    assert ChatMessage.model_validate({"role": "user", "content": "hi", "extra": 1}).content == "hi"
    with pytest.raises(ValidationError):
        ChatMessage.model_validate({"role": "robot", "content": "hi"})
    with pytest.raises(ValidationError, match="tool_call_id"):
        ChatMessage.model_validate({"role": "tool", "content": "42"})


async def test_anthropic_by_name() -> None:
    provider = build_provider(
        "anthropic",
        anthropic_api_key="sk-ant-secret-y",
        anthropic_base_url="http://127.0.0.1:9",
        anthropic_model="claude-x",
    )
    try:
        assert isinstance(provider, AnthropicProvider)
        assert (provider.name, provider.model) == ("anthropic", "claude-x")
        assert provider.base_url == "http://127.0.0.1:9"
        assert "sk-ant-secret-y" not in repr(provider)
    finally:
        await provider.aclose()


async def test_anthropic_default_model() -> None:
    provider = build_provider("Anthropic", anthropic_api_key="sk-ant-secret-y")
    try:
        assert provider.model == "claude-3-5-haiku-latest"
    finally:
        await provider.aclose()


async def test_auto_prefers_openai_then_anthropic_then_builtin() -> None:
    both = build_provider("auto", openai_api_key="sk-o", anthropic_api_key="sk-a")
    only_anthropic = build_provider(None, anthropic_api_key="sk-a")
    try:
        assert both.name == "openai"
        assert only_anthropic.name == "anthropic"
        assert build_provider("auto", openai_api_key="", anthropic_api_key="").name == "builtin"
    finally:
        await both.aclose()
        await only_anthropic.aclose()


def test_anthropic_without_a_key_is_not_configured() -> None:
    with pytest.raises(
        ProviderNotConfigured, match="provider 'anthropic' needs ANTHROPIC_API_KEY"
    ) as caught:
        build_provider("anthropic", openai_api_key="sk-o")
    assert not caught.value.retryable


def test_available_provider_names() -> None:
    assert available_provider_names() == ["builtin"]
    assert available_provider_names(openai_api_key="sk-o") == ["builtin", "openai"]
    assert available_provider_names(anthropic_api_key="sk-a") == ["builtin", "anthropic"]
    assert available_provider_names("sk-o", "sk-a") == ["builtin", "openai", "anthropic"]
    assert available_provider_names(openai_api_key="", anthropic_api_key=None) == ["builtin"]


def test_every_available_name_builds() -> None:
    for name in available_provider_names():
        assert build_provider(name).name == name


def test_the_provider_sdks_are_imported_only_when_a_provider_is_built() -> None:
    # Importing the anthropic and openai SDKs takes seconds: a process that never calls them
    # (an API process, a worker on the builtin provider) must not pay for them at start.
    probe = ("import sys, agentqueue.cli, agentqueue.services, agentqueue.api.app; "
             "print('anthropic' in sys.modules, 'openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]
