"""What `agentqueue serve` loads before it first answers: libraries that only some requests or
jobs need load with the first of them, not on every start (each costs tens of milliseconds of
start-up; `bench/startup.py` measures the whole)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.processes import agentqueue, free_port

# Top-level module -> what loads it (none of which a plain start does). (The valkey client is
# loaded, by python-socketio's package, which imports its Redis/Valkey managers eagerly; and
# email_validator, by FastAPI's OpenAPI models whenever it is installed.)
ON_FIRST_USE = {
    "alembic": "a migration (the schema is already at head)",
    "jwt": "the first JWT presented",
    "jsonschema": "the first extraction",
    "httpx": "the first webhook delivery",
    "pysbd": "the first summary",
    "rich": "`agentqueue keys list` and the operator commands (jobs, queues, …)",
    "openai": "a job for the OpenAI provider",
    "anthropic": "a job for the Anthropic provider",
    "jinja2": "the first email (its templates)",
    "aiosmtplib": "the first email sent",
}
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", re.MULTILINE)


def imported_by(log: str) -> set[str]:
    """The modules an -X importtime log (PYTHONPROFILEIMPORTTIME) shows were imported."""
    return set(_IMPORTED.findall(log))


async def test_a_warm_serve_on_sqlite_loads_neither_postgresql_nor_first_use_libraries(
    tmp_path: Path,
) -> None:
    data = str(tmp_path / "data")
    # The first start creates the schema (with Alembic); the second finds it at head.
    with agentqueue("serve", {"PORT": str(free_port()), "AGENTQUEUE_DATA_DIR": data},
                    tmp_path / "first.log") as first:
        await first.wait_healthy()
    env = {"PORT": str(free_port()), "AGENTQUEUE_DATA_DIR": data, "PYTHONPROFILEIMPORTTIME": "1"}
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        modules = imported_by(serve.log())

    assert "agentqueue.api.app" in modules and "sqlalchemy.dialects.sqlite" in modules
    assert not [name for name in modules if name.startswith("sqlalchemy.dialects.postgresql")]
    loaded = {name: why for name, why in ON_FIRST_USE.items() if name in modules}
    assert loaded == {}
