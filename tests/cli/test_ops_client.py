"""Choosing the mode, and reading any progress a job reports as current/total/message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentqueue.cli.ops_client import OpsError, choose_mode, progress_of, split_ref
from agentqueue.config import get_settings


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[None]:
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_SENTINELS", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_url_is_remote_redis_is_direct_and_neither_is_this_machines_service(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_mode("http://aq:3000", None) == ("remote", "http://aq:3000")
    assert choose_mode(None, None) == ("remote", "http://127.0.0.1:3000")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    assert choose_mode(None, "my.jobs:app") == ("direct", None)
    assert choose_mode("http://aq:3000", "my.jobs:app")[0] == "remote"


def test_progress_reads_the_same_whatever_the_job_reported() -> None:
    assert progress_of({"current": 1, "total": 4, "message": "one"}) == {
        "current": 1.0, "total": 4.0, "percentage": 25.0, "message": "one"}
    assert progress_of(40) == {"current": 40.0, "total": 100.0, "percentage": 40.0,
                               "message": None}
    streamed = progress_of({"percent": 50, "text": "Hel", "streaming": True})
    assert streamed["percentage"] == 50.0
    assert progress_of(None)["percentage"] == 0.0
    assert progress_of({"current": 0, "total": 0})["percentage"] == 0.0


def test_a_job_is_named_queue_colon_id() -> None:
    assert split_ref("ai-jobs:1") == ("ai-jobs", "1")
    assert split_ref("jobs:repeat:k:1") == ("jobs", "repeat:k:1")
    for wrong in ("1", ":1", "ai-jobs:"):
        with pytest.raises(OpsError, match="QUEUE:ID"):
            split_ref(wrong)
