"""A job type of your own, run by `agentqueue worker`, enqueued and waited for from Python.

Run a worker for it, then this file (both need the same REDIS_URL and database):

    agentqueue worker examples.custom_job:app      # from the repository's root
    python examples/custom_job.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's


class WordCountInput(BaseModel):
    text: str = Field(min_length=1)
    top: int = Field(3, ge=1, le=20)


@app.job("word-count", queue="jobs", attempts=2, timeout=60)
async def count_words(ctx: agentqueue.Context, data: WordCountInput) -> dict[str, object]:
    words = data.text.lower().split()
    counts: dict[str, int] = {}
    for index, word in enumerate(words, start=1):
        counts[word] = counts.get(word, 0) + 1
        if index % 100 == 0 or index == len(words):
            await ctx.progress(index, len(words), f"Counted {index} of {len(words)} words")
    await ctx.log(f"{len(words)} words, {len(counts)} distinct")
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: data.top]
    return {"words": len(words), "top": [{"word": w, "count": c} for w, c in top]}


async def main() -> None:
    owner = agentqueue.Owner(user_id="example-user", org_id="example-org")
    job = await app.enqueue("word-count", {"text": "the cat and the hat and the bat"},
                            owner=owner)
    print(f"queued job {job.id} on {job.queue!r}")
    result = await job.wait(timeout=60)
    print(f"result: {result}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
