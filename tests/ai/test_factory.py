from __future__ import annotations

import pytest

from agentqueue.ai import ProviderNotConfigured, build_provider, default_tools


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
        "get_company",
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
