"""`agentqueue dead-letters list | show | replay`, run as a user would, against real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentqueue.cli import app as cli
from agentqueue.config import Settings, get_settings
from tests.api.test_dead_letters import make_app
from tests.support.waiting import eventually
from tests.support.workers import app_worker

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, prefix: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    env = {"AGENTQUEUE_DATA_DIR": str(tmp_path / "data"), "REDIS_URL": redis_url,
           "QUEUE_PREFIX": prefix}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield Settings()
    get_settings.cache_clear()


async def test_list_show_and_replay(settings: Settings) -> None:
    app = make_app(settings)
    try:
        async with app_worker(app):
            job = await app.enqueue("doomed", {"n": 3})

            async def dead() -> bool:
                return bool(await app.dead_letters())

            await eventually(dead, what="a dead letter")
            ref = f"{job.queue}:{job.id}"

            listed = await asyncio.to_thread(runner.invoke, cli, ["dead-letters", "list"])
            assert listed.exit_code == 0, listed.output
            assert ref in listed.output and "provider refused task 3" in listed.output
            assert "3/3" in listed.output

            shown = await asyncio.to_thread(runner.invoke, cli, ["dead-letters", "show", ref])
            assert shown.exit_code == 0, shown.output
            assert "after 3 of 3 attempts" in shown.output
            assert "RuntimeError: provider refused task 3" in shown.output

            replayed = await asyncio.to_thread(runner.invoke, cli, [
                "dead-letters", "replay", ref, "--data", '{"ok": true, "n": 4}',
                "--app", "tests.cli.dead_letter_app:app"])
            assert replayed.exit_code == 0, replayed.output
            assert f"replayed {ref}" in replayed.output
            assert await job.wait(timeout=30) == {"done": 4}

            gone = await asyncio.to_thread(runner.invoke, cli, ["dead-letters", "replay", ref])
            assert gone.exit_code == 1
            assert f"not replayed {ref}: Job {job.id} not found" in gone.output
    finally:
        await app.close()


def test_replay_needs_names_or_all(settings: Settings) -> None:
    refused = runner.invoke(cli, ["dead-letters", "replay"])
    assert refused.exit_code == 2
    assert "name dead letters (QUEUE:JOB_ID) or give --all" in refused.output
