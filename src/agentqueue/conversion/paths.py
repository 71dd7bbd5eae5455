"""Paths a user names, confined to the operator's roots (DATA_CONVERSION_ROOTS).

A path is taken relative to the first root unless absolute; either way, with every symlink
followed, it must name a regular file inside one of the roots. `..`, a symlink pointing out
of the roots and an absolute path elsewhere are all refused, with the same kind of message:
the answer says nothing about what exists outside the roots.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathRefused(ValueError):
    """A path the service may not read, or no file there."""


def parse_roots(text: str) -> list[Path]:
    """The roots of a comma-separated setting, each an absolute directory, symlinks resolved."""
    roots = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        path = Path(part).expanduser()
        if not path.is_absolute():
            raise ValueError(f"DATA_CONVERSION_ROOTS: {part!r} is not an absolute path")
        roots.append(Path(os.path.realpath(path)))
    return roots


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve(user_path: str, roots: list[Path]) -> Path:
    """The real path of the file `user_path` names, inside one of `roots`; `PathRefused`
    otherwise."""
    if not roots:
        raise PathRefused("reading files by path is off: the operator sets "
                          "DATA_CONVERSION_ROOTS to the directories it may read")
    if not user_path or "\x00" in user_path:
        raise PathRefused("is empty or holds a NUL character")
    given = Path(user_path)
    if ".." in given.parts:
        raise PathRefused("must not contain '..'")
    candidate = given if given.is_absolute() else roots[0] / given
    real = Path(os.path.realpath(candidate))
    if not any(_inside(real, root) for root in roots):
        raise PathRefused("is outside the directories this service may read "
                          "(DATA_CONVERSION_ROOTS)")
    if not real.is_file():
        raise PathRefused("no such file")
    return real
