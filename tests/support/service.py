"""One real `agentqueue serve` for a module of end-to-end tests: its environment, API keys
made with the CLI, and the Redis keys it leaves behind removed afterwards."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.processes import CLI, free_port


def serve_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """A free port, a data directory and a queue prefix of its own, plus `settings`.

    With `REDIS_URL` set the service uses that server (CI runs against the machine's Redis);
    unset, it starts its embedded Valkey.
    """
    env = {"PORT": str(free_port()), "AGENTQUEUE_DATA_DIR": str(data_dir),
           "QUEUE_PREFIX": f"aqtest-{uuid.uuid4().hex[:10]}", **settings}
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


def create_key(env: dict[str, str], *args: str) -> str:
    """`agentqueue keys create <args>` against the service's database: the new API key."""
    done = subprocess.run([CLI, "keys", "create", *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


async def delete_service_keys(env: dict[str, str]) -> None:
    """Remove the service's keys from an external Redis (an embedded Valkey went with it)."""
    if "REDIS_URL" in env:
        conn = connect(env["REDIS_URL"])
        await delete_prefix(conn, env["QUEUE_PREFIX"])
        await conn.aclose()
