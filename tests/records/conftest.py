"""The record fixtures (SQLite and PostgreSQL databases, a pinned clock) for every record test."""

from tests.records.test_records import clock, database, records  # noqa: F401
