"""examples/durable_steps.py run as a user would: the job fails after its side effect on its
first attempt, and the retry replays the finished steps instead of publishing again."""

from __future__ import annotations

from pathlib import Path

from tests.support.examples import run_example


async def test_the_retried_job_publishes_its_post_once(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    done = await run_example("durable_steps", "jobs", {**env, "EXAMPLE_OUTBOX": str(outbox)},
                             tmp_path)
    assert done.returncode == 0, done.stderr
    assert "'stories': 3, 'attempt': 2}" in done.stdout  # the second attempt finished it
    assert "posts published: 1" in done.stdout
    posts = (outbox / "posts.log").read_text().splitlines()
    assert len(posts) == 1 and f"'post': '{posts[0].split()[0]}'" in done.stdout
