"""Connections still tell the server which client library they are (CLIENT SETINFO), with the
version read once rather than from package metadata for every new connection."""

from __future__ import annotations

import pytest
import redis

from agentqueue.engine.connection import connect


async def test_a_connection_names_its_client_library_and_version(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        info = await client.client_info()
    finally:
        await client.aclose()
    if "lib-name" not in info:
        pytest.skip("this server has no CLIENT SETINFO (Redis < 7.2)")
    assert (info["lib-name"], info["lib-ver"]) == ("redis-py", redis.__version__)
