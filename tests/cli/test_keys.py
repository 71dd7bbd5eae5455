"""`agentqueue keys create | list | revoke`, run as a user would, against a SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from typer.testing import CliRunner

from agentqueue.api.auth import Authenticator, Principal
from agentqueue.cli.keys import keys_app
from agentqueue.config import get_settings
from agentqueue.records.store import Records

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AGENTQUEUE_DATA_DIR", str(directory))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


def authenticate(data_dir: Path, key: str) -> Principal:
    """What the API makes of `Authorization: Bearer <key>`, over the CLI's database."""

    async def main() -> Principal:
        records = await Records.connect(f"sqlite+aiosqlite:///{data_dir}/agentqueue.db")
        try:
            request = Request(
                {
                    "type": "http",
                    "method": "GET",
                    "path": "/",
                    "headers": [(b"authorization", f"Bearer {key}".encode())],
                    "client": ("10.1.2.3", 123),
                }
            )
            return await Authenticator(records, None).authenticate(request)
        finally:
            await records.close()

    return asyncio.run(main())


def create(*args: str) -> str:
    result = runner.invoke(keys_app, ["create", *args])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("aq_") and "\n" not in key  # stdout is the key alone
    assert "won't be shown again" in result.stderr
    return key


def test_create_prints_a_key_that_authenticates(data_dir: Path) -> None:
    key = create("--user", "alice", "--org", "acme")
    assert (data_dir / "agentqueue.db").exists()

    principal = authenticate(data_dir, key)
    assert (principal.user_id, principal.org_id, principal.role) == ("alice", "acme", "user")
    assert principal.via == "api_key"

    admin = authenticate(data_dir, create("--user", "root", "--org", "ops", "--admin"))
    assert admin.is_admin


def test_create_needs_user_and_org() -> None:
    result = runner.invoke(keys_app, ["create", "--user", "alice"])
    assert result.exit_code != 0
    assert "--org" in result.output


def test_list_shows_the_prefix_never_the_key(data_dir: Path) -> None:
    empty = runner.invoke(keys_app, ["list"])
    assert empty.exit_code == 0
    assert "No API keys" in empty.stdout

    key = create("--user", "alice", "--org", "acme")
    create("--user", "root", "--org", "ops", "--admin")
    listing = runner.invoke(keys_app, ["list"])
    assert listing.exit_code == 0, listing.output
    assert key not in listing.stdout
    principal = authenticate(data_dir, key)
    rows = [line for line in listing.stdout.splitlines() if "alice" in line]
    assert len(rows) == 1
    row = rows[0]
    assert "acme" in row and " no " in row
    assert f" {principal.key_id} " in row
    assert key[:6] in row  # the prefix, which identifies the key
    root_row = next(line for line in listing.stdout.splitlines() if "root" in line)
    assert " yes " in root_row


def test_revoke_by_id_stops_the_key(data_dir: Path) -> None:
    key = create("--user", "alice", "--org", "acme")
    key_id = authenticate(data_dir, key).key_id

    result = runner.invoke(keys_app, ["revoke", str(key_id)])
    assert result.exit_code == 0, result.output
    with pytest.raises(Exception) as caught:
        authenticate(data_dir, key)
    assert getattr(caught.value, "status_code", None) == 401

    again = runner.invoke(keys_app, ["revoke", str(key_id)])
    assert again.exit_code == 1
    assert "No active key" in again.stderr
    assert runner.invoke(keys_app, ["revoke", "999"]).exit_code == 1


def test_revoke_by_prefix(data_dir: Path) -> None:
    key = create("--user", "alice", "--org", "acme")
    listing = runner.invoke(keys_app, ["list"]).stdout
    prefix = next(word for word in listing.split() if word.startswith("aq_"))
    assert key.startswith(prefix.rstrip("…"))

    assert runner.invoke(keys_app, ["revoke", prefix]).exit_code == 0
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the 401 is checked above
        authenticate(data_dir, key)
