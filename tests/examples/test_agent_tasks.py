"""examples/agent_tasks.py (seed 002's calls, sync) run as a user would, against
`agentqueue worker examples.agent_tasks:app` in another process."""

from __future__ import annotations

from pathlib import Path

from tests.support.examples import run_example


async def test_agent_tasks_example(env: dict[str, str], tmp_path: Path) -> None:
    done = await run_example("agent_tasks", "reports", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "result: {'task_id': 'task-1', 'report': 'done: Weekly report'}",
        "- Waiting: 0", "- Active: 0", "- Completed: 1", "- Failed: 0", "- Delayed: 0",
        "- Paused: 0",
        "while paused: paused",
        "removed: True cancelled",
        "getJob: completed None",
        "cleaned: 0",
    ]
