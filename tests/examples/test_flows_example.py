"""examples/flows.py run as a user would, against `agentqueue worker examples.flows:app`."""

from __future__ import annotations

from pathlib import Path

from tests.support.examples import run_example


async def test_the_flow_example(env: dict[str, str], tmp_path: Path) -> None:
    done = await run_example("flows", "jobs", env, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("report: {'title': 'Q3', 'regions': {'north': 200.5, 'south': 99.5}, "
            "'grand_total': 300.0, 'missing': 1}") in out
    assert "dead letter jobs:4: no sales figures for west (2 attempts)" in out
    assert "west replayed: {'region': 'west', 'total': 10.0}" in out
