"""examples/documents.py run as a user would: two documents indexed by a worker, the question
answered by the one about returns, and nothing found by another organization."""

from __future__ import annotations

from pathlib import Path

from tests.support.examples import run_example


async def test_the_search_finds_the_returns_policy(env: dict[str, str], tmp_path: Path) -> None:
    done = await run_example("documents", "jobs", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "indexed returns: 1 chunk(s)" in done.stdout
    assert "indexed shipping: 1 chunk(s)" in done.stdout
    assert "best match: returns (" in done.stdout
    assert "another organization finds: 0" in done.stdout
