"""Find a user's `agentqueue.App` from "module:attribute" or "path/to/file.py:attribute"."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from agentqueue.app import App


class AppNotFound(Exception):
    """The reference names no importable App; the message says what is wrong."""


def load_app(ref: str) -> App:
    """Import the App `ref` names ("myproject.jobs:app"; the attribute defaults to `app`).

    The current directory is importable, as with `python -m`: a project's own modules load
    without installing them.
    """
    target, _, attribute = ref.partition(":")
    attribute = attribute or "app"
    if not target:
        raise AppNotFound(f"{ref!r}: give module:attribute, e.g. myproject.jobs:app")
    if target.endswith(".py"):
        module = _import_file(Path(target))
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise AppNotFound(f"{ref!r}: no module named {exc.name!r}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, App):
        raise AppNotFound(f"{ref!r}: {target} has no agentqueue.App named {attribute!r}")
    return found


def _import_file(path: Path) -> object:
    if not path.is_file():
        raise AppNotFound(f"{path}: no such file")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppNotFound(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module
