"""examples/schedules.py run as a user would: `agentqueue worker examples.schedules:app` in one
process, the example script in another."""

from __future__ import annotations

from pathlib import Path

from tests.support.examples import REPO, run_script
from tests.support.processes import agentqueue


async def test_the_example_schedules_runs_and_removes(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    with agentqueue("worker examples.schedules:app -q jobs", env, tmp_path / "worker.log",
                    cwd=REPO) as worker:
        await worker.wait_log("Worker on queue 'jobs' started")
        done = await run_script("examples/schedules.py", env)
        assert done.returncode == 0, done.stderr
    assert "monday-ping next runs: ['Mon 09:00', 'Mon 09:00', 'Mon 09:00']" in done.stdout
    assert "quick-ping runs: ['health', 'health', 'health']" in done.stdout
    assert "quick-ping next run: None" in done.stdout
