"""Finding the user's App from `module:attribute` or `file.py:attribute`, as the CLI does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import agentqueue
from agentqueue.app_loader import AppNotFound, load_app
from tests.support.processes import CLI

REPO = Path(__file__).resolve().parents[1]


def test_a_module_or_a_file_names_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    by_module = load_app("examples.custom_job:app")
    assert isinstance(by_module, agentqueue.App)
    assert list(by_module.definitions) == ["word-count"]
    by_file = load_app(str(REPO / "examples" / "custom_job.py") + ":app")
    assert list(by_file.definitions) == ["word-count"]


@pytest.mark.parametrize(("ref", "says"), [
    ("no_such_module_here:app", "no module named 'no_such_module_here'"),
    ("examples.custom_job:nothing", "has no agentqueue.App named 'nothing'"),
    ("examples.custom_job:WordCountInput", "has no agentqueue.App named 'WordCountInput'"),
    ("missing/file.py:app", "no such file"),
    (":app", "give module:attribute"),
])
def test_a_wrong_reference_says_what_is_wrong(
    ref: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(AppNotFound, match=says):
        load_app(ref)


def test_the_worker_command_refuses_a_wrong_reference_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [CLI, "worker", "examples.custom_job:nothing"], cwd=REPO, capture_output=True,
        text=True, timeout=60,
        env={**os.environ, "AGENTQUEUE_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://x",
             "COLUMNS": "300"},  # the error box unwrapped
    )
    assert done.returncode == 2
    assert "has no agentqueue.App named 'nothing'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
