"""Paths under the operator's roots only: traversal, symlinks out and absolute paths elsewhere
are refused, on real directories and links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentqueue.conversion.paths import PathRefused, parse_roots, resolve


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "sub").mkdir(parents=True)
    other.mkdir()
    (root / "sub" / "in.csv").write_text("a\n1\n")
    (other / "secret.csv").write_text("s\n1\n")
    os.symlink(other / "secret.csv", root / "link-out.csv")
    os.symlink(other, root / "dir-out")
    os.symlink(root / "sub" / "in.csv", root / "link-in.csv")
    return {"root": root, "other": other}


def test_files_inside_the_root_resolve(tree: dict[str, Path]) -> None:
    roots = parse_roots(str(tree["root"]))
    inside = tree["root"] / "sub" / "in.csv"
    assert resolve("sub/in.csv", roots) == inside
    assert resolve(str(inside), roots) == inside
    assert resolve("link-in.csv", roots) == inside  # a link staying inside is fine


@pytest.mark.parametrize(("path", "message"), [
    ("../other/secret.csv", "'..'"),
    ("sub/../../other/secret.csv", "'..'"),
    ("link-out.csv", "outside"),
    ("dir-out/secret.csv", "outside"),
    ("/etc/passwd", "outside"),
    ("sub/missing.csv", "no such file"),
    ("sub", "no such file"),
    ("", "empty"),
    ("a\x00b", "NUL"),
])
def test_paths_out_of_the_roots_are_refused(tree: dict[str, Path], path: str,
                                            message: str) -> None:
    with pytest.raises(PathRefused, match=message):
        resolve(path, parse_roots(str(tree["root"])))


def test_an_absolute_path_outside_is_refused_even_when_it_exists(tree: dict[str, Path]) -> None:
    with pytest.raises(PathRefused, match="outside"):
        resolve(str(tree["other"] / "secret.csv"), parse_roots(str(tree["root"])))


def test_a_second_root_is_read_by_absolute_path(tree: dict[str, Path]) -> None:
    roots = parse_roots(f"{tree['root']}, {tree['other']}")
    assert resolve(str(tree["other"] / "secret.csv"), roots) == tree["other"] / "secret.csv"


def test_without_roots_no_path_is_read(tree: dict[str, Path]) -> None:
    with pytest.raises(PathRefused, match="DATA_CONVERSION_ROOTS"):
        resolve(str(tree["root"] / "sub" / "in.csv"), parse_roots(""))


def test_a_relative_root_is_a_setting_error() -> None:
    with pytest.raises(ValueError, match="not an absolute path"):
        parse_roots("data/in")
