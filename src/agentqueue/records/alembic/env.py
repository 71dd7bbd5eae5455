"""Alembic environment for the records.

Run through `agentqueue.records.migrations` (no alembic.ini needed): it opens the async engine,
and hands a sync connection in `config.attributes["connection"]` (the run_sync pattern).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from agentqueue.records.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through agentqueue.records.migrations (upgrade/check/revision)"
        )
    run_migrations(connection)
