"""The dependency rules of the layout (docs: DESIGN "Layout"), read from the source's imports:
the engine knows no HTTP, SQL or AI, the core no API or CLI, AI no queues, and nothing reaches
into the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentqueue

PACKAGE = Path(agentqueue.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Every `agentqueue…` module a file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("agentqueue.")}


def modules_under(layer: str) -> list[Path]:
    base = PACKAGE / layer
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


def reaches(name: str, layers: tuple[str, ...]) -> bool:
    return any(name == f"agentqueue.{layer}" or name.startswith(f"agentqueue.{layer}.")
               for layer in layers)


RULES = [
    ("engine", ("core", "records", "api", "ai", "handlers", "services", "cli", "maintenance")),
    ("core", ("api", "cli", "services", "handlers")),
    ("push", ("api", "cli", "services", "handlers", "records", "ai")),
    ("records", ("core", "api", "cli", "services", "handlers", "engine", "ai")),
    ("ai", ("engine", "core", "records", "api", "cli", "services", "handlers", "maintenance")),
    # Reading, chunking and ranking documents is plain computation: the index and the job use it.
    ("documents", ("engine", "core", "records", "api", "cli", "services", "handlers", "ai",
                   "maintenance")),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} -> {name}"
        for path in modules_under(layer)
        for name in imports_of(path)
        if reaches(name, forbidden)
    }
    assert not wrong


def test_only_the_cli_imports_the_cli() -> None:
    """The CLI is the outermost layer: settings (the database URL) come from `config`."""
    cli = PACKAGE / "cli"
    wrong = {
        f"{path.relative_to(PACKAGE)} -> {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if cli not in path.parents
        for name in imports_of(path)
        if reaches(name, ("cli", "keys_cli"))
    }
    assert not wrong
