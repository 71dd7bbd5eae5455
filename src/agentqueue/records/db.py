"""Async engines for the records: SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite is shared by the API and worker processes, so every connection runs in WAL mode with
foreign keys on and a busy timeout, and SQLAlchemy (not the sqlite3 driver) emits BEGIN: reads
take a plain deferred BEGIN, writes `BEGIN IMMEDIATE`, so a writer waits for the lock (up to the
busy timeout) up front instead of failing half-way when another process wrote first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "agentqueue_write"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def async_url(url: str | URL) -> URL:
    """Pick the async driver for plain URLs (`sqlite:///…`, `postgres://…`, `postgresql://…`)."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}")


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


@dataclass(frozen=True)
class PoolLimits:
    """How many connections a process holds, and how long a request waits for a free one.

    SQLAlchemy's default wait is 30 s; under overload a prompt "busy" (503) serves a client
    better than a half-minute stall.
    """

    size: int = 10
    overflow: int = 10
    timeout_s: float = 5.0


def make_engine(
    url: str | URL, *, schema: str | None = None, pool: PoolLimits | None = None
) -> AsyncEngine:
    """An async engine for `url`; `schema` (PostgreSQL only) becomes the search_path."""
    parsed = async_url(url)
    pool = pool or PoolLimits()
    pooling: dict[str, Any] = {"pool_size": pool.size, "max_overflow": pool.overflow,
               "pool_timeout": pool.timeout_s}
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ValueError("schema= is for PostgreSQL only")
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        if not database or database == ":memory:" or database.startswith("file:"):
            pooling = {}  # one static connection: SQLAlchemy refuses pool sizes for it
        engine = create_async_engine(parsed, connect_args=connect_args, **pooling)
        _sqlite_events(engine)
        return engine
    if schema is not None:
        connect_args["server_settings"] = {"search_path": check_schema(schema)}
    return create_async_engine(parsed, connect_args=connect_args, pool_pre_ping=True, **pooling)


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, but transactions begin as writers (`BEGIN IMMEDIATE` on SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_events(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 driver; `_on_begin` emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
