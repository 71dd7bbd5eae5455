"""One real `agentqueue serve` (with tests/cli/ops_app.py's types) for the operator commands'
tests, and a way to run `agentqueue <command>` against it in either mode, as a user would:
remote (its URL and an API key) or direct (the same Redis and records database)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import CLI, AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    process: AgentqueueProcess
    env: dict[str, str]
    admin_key: str
    user_key: str
    tmp: Path


@pytest.fixture(scope="session")
async def ops_service(redis_url: str, tmp_path_factory: pytest.TempPathFactory
                      ) -> AsyncIterator[Service]:
    tmp = tmp_path_factory.mktemp("ops")
    env = serve_env(tmp / "data", REDIS_URL=redis_url, AI_PROVIDER="builtin")
    admin = create_key(env, "--user", "root", "--org", "ops", "--admin")
    user = create_key(env, "--user", "alice", "--org", "acme")
    with agentqueue("serve --app tests.cli.ops_app:app --no-builtin", env, tmp / "serve.log",
                    cwd=REPO) as process:
        await process.wait_healthy()
        yield Service(process, env, admin, user, tmp)
    await delete_service_keys(env)


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


def mode_env(service: Service, mode: str, key: str | None = None) -> dict[str, str]:
    """The environment of a user of `mode`: remote knows the URL and a key (the admin's unless
    told), direct the Redis, the records and the prefix."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_HOST", "DATABASE_URL", "AGENTQUEUE_URL",
                        "AGENTQUEUE_KEY", "AGENTQUEUE_APP", "PORT")}
    if mode == "remote":
        env.update(AGENTQUEUE_URL=service.process.base_url,
                   AGENTQUEUE_KEY=key or service.admin_key,
                   AGENTQUEUE_DATA_DIR=str(service.tmp / "elsewhere"))
    else:
        env.update({name: service.env[name]
                    for name in ("REDIS_URL", "QUEUE_PREFIX", "AGENTQUEUE_DATA_DIR")})
        env["AGENTQUEUE_APP"] = "tests.cli.ops_app:app"
    return env


Run = Callable[..., Done]


@pytest.fixture(params=["direct", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cli(ops_service: Service, mode: str) -> Run:
    """`cli("jobs", "list", "--json")`: the command's exit code and output."""

    def run(*args: str, key: str | None = None, stdin: str | None = None) -> Done:
        done = subprocess.run([CLI, *args], env=mode_env(ops_service, mode, key), cwd=REPO,
                              capture_output=True, text=True, timeout=120, input=stdin)
        return Done(done.returncode, done.stdout, done.stderr)

    return run


async def start(service: Service, mode: str, *args: str) -> asyncio.subprocess.Process:
    """`agentqueue <args>` running, its stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        CLI, *args, env=mode_env(service, mode), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


def one_line_error(done: Done) -> str:
    """A failed command's message: one line on stderr, exit code 1, no traceback."""
    assert done.code == 1, (done.code, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    # `wait` shows the job's progress first; the error is then its last line.
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    return errors[0]
