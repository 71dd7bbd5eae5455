"""The chaos scripts start and document their options. (A real run takes a minute or more
even with `--duration 5`, since it starts four agentqueue processes: run them by hand.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos"


@pytest.mark.parametrize(("script", "options"), [
    ("kill_workers.py", ["--duration", "--rate", "--kill-every", "--drain-timeout"]),
    ("restart_redis.py", ["--duration", "--rate", "--restarts", "--appendfsync", "--stop"]),
])
def test_help_lists_the_options(script: str, options: list[str]) -> None:
    done = subprocess.run([sys.executable, str(CHAOS / script), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout
    assert "lost" in done.stdout  # says what it measures
