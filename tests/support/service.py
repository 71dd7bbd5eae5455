"""One real `agentqueue serve` for a module of end-to-end tests: its environment, API keys
made with the CLI, and the Redis keys it leaves behind removed afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt

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


# The HS256 secret of services that tests start with JWT auth on (`process_env`).
JWT_SECRET = "test-secret-with-enough-length-for-hs256"


def bearer(user: str, role: str = "user", org: str | None = "acme") -> dict[str, str]:
    """An Authorization header with a JWT signed with `JWT_SECRET`, valid for 10 minutes."""
    claims: dict[str, object] = {"sub": user, "role": role, "exp": int(time.time()) + 600}
    if org is not None:
        claims["org"] = org
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


def as_caller(base_url: str, user: str, org: str, role: str = "user") -> httpx.AsyncClient:
    """An HTTP client of the service at `base_url` calling as `user` of `org` (a JWT)."""
    return httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer(user, role, org))


@contextlib.asynccontextmanager
async def process_env(redis_url: str, data_dir: Path,
                      **settings: str) -> AsyncIterator[dict[str, str]]:
    """The environment of `agentqueue` processes sharing `redis_url` under a prefix of their
    own, with JWT auth on and the builtin provider, plus `settings`; their keys go after."""
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(free_port()),
           "AGENTQUEUE_DATA_DIR": str(data_dir), "JWT_SECRET": JWT_SECRET,
           "AI_PROVIDER": "builtin", **settings}
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()
