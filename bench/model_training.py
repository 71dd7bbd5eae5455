"""What `model-training` costs: embedding the examples (all-MiniLM-L6-v2 in numpy), k-fold
cross-validation and the final fit of the logistic regression, and classifying one text with
the stored numbers, for growing numbers of examples. One run, this machine.

    python bench/model_training.py [--sizes 100,400,1600] [--labels 4] [--folds 5]

The texts are made from templates per label (a topic's words in varied sentences), so the
accuracy is that of an easy task: the figures to read are the seconds and the peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time

from agentqueue.ai import classifier as classifiers
from agentqueue.ai.embeddings import embed

TOPICS = {
    "billing": ["refund", "invoice", "charge", "payment", "price", "receipt"],
    "bug": ["crash", "error", "freeze", "broken", "exception", "timeout"],
    "account": ["password", "login", "email address", "profile", "username", "two-factor"],
    "shipping": ["parcel", "delivery", "courier", "tracking number", "warehouse", "address"],
    "feedback": ["love", "great", "suggestion", "feature idea", "thanks", "improve"],
    "legal": ["contract", "terms", "privacy", "GDPR", "liability", "licence"],
}
FRAMES = ["I have a question about the {w}", "the {w} is wrong again", "why is my {w} like this",
          "please help with the {w} today", "{w}: nothing works since Monday",
          "can someone look at the {w} and the {v}", "my {w} and my {v} are a problem"]


def examples(n: int, labels: int, rng: random.Random) -> tuple[list[str], list[str]]:
    names = list(TOPICS)[:labels]
    texts, ys = [], []
    for i in range(n):
        label = names[i % labels]
        w, v = rng.sample(TOPICS[label], 2)
        texts.append(rng.choice(FRAMES).format(w=w, v=v) + f" (#{i})")
        ys.append(label)
    return texts, ys


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400,1600", help="numbers of examples")
    parser.add_argument("--labels", type=int, default=4, choices=range(2, len(TOPICS) + 1))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    embed(["warm up: load the model"])  # its load is a one-off per process, not per training
    print(f"{'examples':>8} {'labels':>6} {'embed s':>8} {'cv+fit s':>8} {'accuracy':>8} "
          f"{'classify ms':>11} {'peak RSS MB':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        texts, labels = examples(size, args.labels, rng)
        began = time.perf_counter()
        vectors = embed(texts)
        embed_s = time.perf_counter() - began
        began = time.perf_counter()
        training = await classifiers.train_vectors(vectors, labels, folds=args.folds)
        train_s = time.perf_counter() - began
        began = time.perf_counter()
        await training.classifier.classify("the courier lost my parcel")
        classify_ms = (time.perf_counter() - began) * 1000
        print(f"{size:>8} {args.labels:>6} {embed_s:>8.2f} {train_s:>8.2f} "
              f"{training.accuracy:>8.3f} {classify_ms:>11.1f} {peak_rss_mb():>11.0f}")


if __name__ == "__main__":
    asyncio.run(main())
