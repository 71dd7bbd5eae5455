"""Durable steps: a job whose retry replays what its earlier attempt finished.

`await ctx.step("name", fn, *args)` runs `fn(*args)` once per job: when the job runs again (a
retry after an error or a timeout, the re-run after its worker died), a finished step's result
comes from the job's step log instead. Here the post is published once although the job fails
after publishing, on its first attempt, and is retried.

    agentqueue worker examples.durable_steps:app      # from the repository's root
    python examples/durable_steps.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from pydantic import BaseModel, Field

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's
OUTBOX = Path(os.environ.get("EXAMPLE_OUTBOX", "outbox"))


class DigestInput(BaseModel):
    topic: str = Field(min_length=1, max_length=100)
    fail_first_notification: bool = False  # to show a retry


async def gather(topic: str) -> list[str]:
    return [f"{topic}: story {n}" for n in (1, 2, 3)]


def _post(post_id: str, line: str) -> None:
    OUTBOX.mkdir(parents=True, exist_ok=True)
    with (OUTBOX / "posts.log").open("a") as posts:
        posts.write(f"{post_id} {line}\n")


async def publish(topic: str, lines: list[str]) -> str:
    """A side effect: a post in the outbox (say, a message sent). It must happen once."""
    post_id = uuid.uuid4().hex[:8]
    await asyncio.to_thread(_post, post_id, f"{topic} ({len(lines)} stories)")
    return post_id


@app.job("publish-digest", queue="jobs", attempts=3, timeout=60)
async def publish_digest(ctx: agentqueue.Context, data: DigestInput) -> dict[str, object]:
    lines = await ctx.step("gather", gather, data.topic)
    post_id = await ctx.step("publish", publish, data.topic, lines)
    if data.fail_first_notification and ctx.attempt == 1:
        raise RuntimeError("the notification service is unavailable")  # retried
    return {"post": post_id, "stories": len(lines), "attempt": ctx.attempt}


async def main() -> None:
    owner = agentqueue.Owner(user_id="example-user", org_id="example-org")
    job = await app.enqueue("publish-digest", {"topic": "rust", "fail_first_notification": True},
                            owner=owner)
    result = await job.wait(timeout=60)
    print(f"result: {result}")
    print(f"posts published: {len((OUTBOX / 'posts.log').read_text().splitlines())}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
