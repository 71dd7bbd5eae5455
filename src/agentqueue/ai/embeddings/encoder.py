"""The all-MiniLM-L6-v2 encoder in numpy: what sentence-transformers runs for this model (its
``modules.json``: Transformer, Pooling(mean), Normalize).

1. ``tokenizers`` splits each text into WordPieces with ``[CLS]``/``[SEP]``, truncated to 256
   tokens (``sentence_bert_config.json``); a batch is padded to its longest text.
2. The BERT encoder (``config.json``): word + position + token-type embeddings, LayerNorm, then
   6 layers of 12-head self-attention and a GELU feed-forward block, each followed by a residual
   LayerNorm (eps 1e-12). Padding is masked out of attention.
3. Mean of the token vectors over the attention mask, then L2 normalisation.

Everything is float32. GELU is the exact (erf) form, not the tanh approximation; ``erf`` is a
rational approximation (Eigen's, also used by XLA) whose largest error against ``math.erf`` is
about 4e-7, i.e. a few float32 units in the last place; PyTorch's own CPU erf is an
approximation of the same accuracy. Outputs match sentence-transformers to within 3e-7 (see
``tests/ai/test_embeddings.py`` and the reference vectors in ``tests/ai/reference``).

Imported by ``minilm.get_model`` on first use: a process that never embeds never loads numpy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agentqueue.ai.embeddings.minilm import (
    BATCH_SIZE,
    MODEL_NAME,
    EmbeddingModelUnavailable,
    find_model_dir,
)

Vectors = npt.NDArray[np.float32]
_F32 = np.float32

# erf(x) = x * A(x^2) / B(x^2) for |x| <= 4, and +-1 beyond (float32 cannot tell the difference).
# Coefficients from Eigen's generic_fast_erf_float, highest power first.
_ERF_ALPHA = tuple(
    _F32(c)
    for c in (
        -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
        -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)  # fmt: skip
_ERF_BETA = tuple(
    _F32(c)
    for c in (
        -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
        -7.37332916720468e-03, -1.42647390514189e-02,
    )
)  # fmt: skip


def _horner(z: Vectors, coefficients: tuple[np.float32, ...]) -> Vectors:
    result = z * coefficients[0]
    result += coefficients[1]
    for c in coefficients[2:]:
        result *= z
        result += c
    return result


def erf(x: Vectors) -> Vectors:
    """The error function, elementwise, in float32 (max abs error ~4e-7)."""
    clamped = np.clip(x, _F32(-4.0), _F32(4.0))
    z = clamped * clamped
    numerator = _horner(z, _ERF_ALPHA)
    numerator *= clamped
    numerator /= _horner(z, _ERF_BETA)
    return numerator


def gelu(x: Vectors) -> Vectors:
    """Exact GELU, x * Phi(x) = x/2 * (1 + erf(x / sqrt(2))), as BERT's ``hidden_act="gelu"``."""
    result = erf(x * _F32(np.sqrt(0.5)))
    result += _F32(1.0)
    result *= x
    result *= _F32(0.5)
    return result


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    variance = np.mean(centered * centered, axis=-1, keepdims=True)
    centered /= np.sqrt(variance + _F32(eps))
    centered *= weight
    centered += bias
    return centered


def _softmax_inplace(scores: Vectors) -> Vectors:
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


@dataclass(frozen=True)
class _Layer:
    qkv_w: Vectors  # (hidden, 3*hidden), already transposed for x @ w
    qkv_b: Vectors
    attn_out_w: Vectors
    attn_out_b: Vectors
    attn_ln_w: Vectors
    attn_ln_b: Vectors
    ffn_in_w: Vectors
    ffn_in_b: Vectors
    ffn_out_w: Vectors
    ffn_out_b: Vectors
    ffn_ln_w: Vectors
    ffn_ln_b: Vectors


class MiniLM:
    """The all-MiniLM-L6-v2 encoder. Build with ``MiniLM.load``; ``encode`` is thread-safe."""

    def __init__(
        self,
        tokenizer: Any,
        weights: dict[str, Vectors],
        config: dict[str, Any],
        max_tokens: int,
    ) -> None:
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()
        self.max_tokens = max_tokens
        self.dimensions = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        if config.get("hidden_act", "gelu") != "gelu":
            raise EmbeddingModelUnavailable(f"unsupported activation {config['hidden_act']!r}")

        def w(name: str) -> Vectors:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        self._word = w("embeddings.word_embeddings.weight")
        self._position = w("embeddings.position_embeddings.weight")
        self._token_type = w("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            attention = p + "attention.self."
            qkv_w = np.concatenate(
                [w(attention + part + ".weight") for part in ("query", "key", "value")]
            )
            qkv_b = np.concatenate(
                [w(attention + part + ".bias") for part in ("query", "key", "value")]
            )
            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv_w.T),
                    qkv_b=qkv_b,
                    attn_out_w=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    attn_out_b=w(p + "attention.output.dense.bias"),
                    attn_ln_w=w(p + "attention.output.LayerNorm.weight"),
                    attn_ln_b=w(p + "attention.output.LayerNorm.bias"),
                    ffn_in_w=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    ffn_in_b=w(p + "intermediate.dense.bias"),
                    ffn_out_w=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    ffn_out_b=w(p + "output.dense.bias"),
                    ffn_ln_w=w(p + "output.LayerNorm.weight"),
                    ffn_ln_b=w(p + "output.LayerNorm.bias"),
                )
            )

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> MiniLM:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(model_dir) if model_dir is not None else find_model_dir()
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            st_config_file = path / "sentence_bert_config.json"
            st_config = (
                json.loads(st_config_file.read_text(encoding="utf-8"))
                if st_config_file.is_file()
                else {}
            )
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            weights = load_file(str(path / "model.safetensors"))
        except (OSError, ValueError, KeyError) as exc:
            raise EmbeddingModelUnavailable(
                f"could not load the {MODEL_NAME} model from {str(path)!r}: {exc}"
            ) from exc
        max_tokens = min(
            int(st_config.get("max_seq_length", 256)), int(config["max_position_embeddings"])
        )
        # tokenizer.json comes with truncation at 128 and fixed padding to 128: replace both
        # with sentence-transformers' settings (truncate at max_seq_length, pad per batch here).
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens)
        return cls(tokenizer, weights, config, max_tokens)

    def tokenize(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], Vectors]:
        """Token ids and attention mask, both (batch, longest), padded with id 0 / mask 0."""
        with self._tokenizer_lock:
            # One text at a time: encode_batch would start the tokenizers thread pool, which
            # then warns on every later fork of the process.
            encodings = [self._tokenizer.encode(text) for text in texts]
        longest = max((len(e.ids) for e in encodings), default=0)
        ids = np.zeros((len(texts), longest), dtype=np.int64)
        mask = np.zeros((len(texts), longest), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        return ids, mask

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Vectors:
        """Unit-length sentence embeddings, shape (len(texts), 384), float32, in input order."""
        texts = [str(t) for t in texts]
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return result
        # Texts of similar length share a batch, so little work goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in chosen])
            result[chosen] = self._forward(ids, mask)
        return result

    def _forward(self, ids: npt.NDArray[np.int64], mask: Vectors) -> Vectors:
        batch, length = ids.shape
        hidden, heads = self.dimensions, self._heads
        head_dim = hidden // heads
        x = self._word[ids] + self._position[:length] + self._token_type
        x = _layer_norm(x.reshape(batch * length, hidden), *self._emb_ln, self._eps)
        # Added to attention scores: 0 for real tokens, a large negative number for padding.
        mask_bias = ((mask - _F32(1.0)) * _F32(np.finfo(np.float32).max))[:, None, None, :]
        scale = _F32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            # (batch, length, 3, heads, head_dim) -> 3 x (batch, heads, length, head_dim)
            q, k, v = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            scores = (q * scale) @ k.transpose(0, 1, 3, 2)
            scores += mask_bias
            context = _softmax_inplace(scores) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            attended = context @ layer.attn_out_w
            attended += layer.attn_out_b
            attended += x
            x = _layer_norm(attended, layer.attn_ln_w, layer.attn_ln_b, self._eps)
            inner = x @ layer.ffn_in_w
            inner += layer.ffn_in_b
            out = gelu(inner) @ layer.ffn_out_w
            out += layer.ffn_out_b
            out += x
            x = _layer_norm(out, layer.ffn_ln_w, layer.ffn_ln_b, self._eps)
        tokens = x.reshape(batch, length, hidden)
        summed = np.einsum("bld,bl->bd", tokens, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), _F32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, _F32(1e-12))).astype(np.float32, copy=False)
