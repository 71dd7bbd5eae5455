"""Offline sentence embeddings (all-MiniLM-L6-v2 in numpy) and what is built on them."""

from agentqueue.ai.embeddings.minilm import (
    DIMENSIONS,
    MODEL_NAME,
    EmbeddingModelUnavailable,
    embed,
    embed_texts,
    get_model,
    model_available,
)

__all__ = [
    "DIMENSIONS",
    "MODEL_NAME",
    "EmbeddingModelUnavailable",
    "embed",
    "embed_texts",
    "get_model",
    "model_available",
]
