"""Which Redis the service uses, from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentqueue.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no stray .env


def test_nothing_set_means_the_embedded_server() -> None:
    assert Settings().external_redis_url is None


def test_redis_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("REDIS_HOST", "ignored")
    assert Settings().external_redis_url == "redis://cache:6380/2"


def test_the_seeds_host_port_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "localhost")
    monkeypatch.setenv("REDIS_PORT", "6390")
    monkeypatch.setenv("REDIS_PASSWORD", "p@ss/word")
    settings = Settings()
    assert settings.external_redis_url == "redis://:p%40ss%2Fword@localhost:6390/0"
    assert "p@ss" not in repr(settings)  # secrets stay out of logs


def test_empty_password_is_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "localhost")
    monkeypatch.setenv("REDIS_PASSWORD", "")
    assert Settings().external_redis_url == "redis://localhost:6379/0"


def test_the_records_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("AGENTQUEUE_DATA_DIR", str(tmp_path))
    assert Settings().records_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/agentqueue.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/app")
    assert Settings().records_url == "postgresql://u@db/app"
