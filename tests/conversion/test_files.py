"""Uploads and outputs per owner on disk: one owner never reaches another's files, and files
past the retention are deleted."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from agentqueue.conversion.files import FileStore

ALICE, BOB, ALICE_ELSEWHERE = ("alice", "acme"), ("bob", "acme"), ("alice", "globex")


def upload(store: FileStore, owner: tuple[str, str | None], content: bytes) -> str:
    file_id, partial = store.new_upload(owner)
    partial.write_bytes(content)
    store.commit(owner, file_id, "data.csv")
    return file_id


def test_an_upload_is_found_by_its_owner_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path, timedelta(days=1))
    file_id = upload(store, ALICE, b"a\n1\n")
    found = store.upload(ALICE, file_id)
    assert found is not None and found.path.read_bytes() == b"a\n1\n" and found.bytes == 4
    assert found.name == "data.csv"
    assert store.upload(BOB, file_id) is None
    assert store.upload(ALICE_ELSEWHERE, file_id) is None  # same user id, other organization
    assert not store.delete_upload(BOB, file_id)
    assert store.delete_upload(ALICE, file_id) and store.upload(ALICE, file_id) is None


def test_ids_that_are_not_ours_are_not_paths(tmp_path: Path) -> None:
    store = FileStore(tmp_path, timedelta(days=1))
    assert store.upload(ALICE, "../../etc/passwd") is None
    assert store.upload(ALICE, "x" * 32) is None


def test_outputs_are_kept_apart_per_owner_and_job(tmp_path: Path) -> None:
    store = FileStore(tmp_path, timedelta(days=1))
    paths = {store.output_path(ALICE, "jobs", "1", "json"),
             store.output_path(BOB, "jobs", "1", "json"),
             store.output_path(ALICE, "jobs", "2", "json")}
    assert len(paths) == 3 and all(p.is_relative_to(store.base) for p in paths)


def test_files_past_the_retention_are_deleted_on_the_owners_next_upload(tmp_path: Path) -> None:
    store = FileStore(tmp_path, timedelta(hours=1))
    old = upload(store, ALICE, b"old")
    output = store.output_path(ALICE, "jobs", "7", "jsonl")
    output.parent.mkdir(parents=True)
    output.write_text("{}\n")
    two_hours_ago = time.time() - 7200
    for path in (store.upload(ALICE, old).path, output):  # type: ignore[union-attr]
        os.utime(path, (two_hours_ago, two_hours_ago))
    others = upload(store, BOB, b"bob's")
    fresh = upload(store, ALICE, b"new")
    assert store.upload(ALICE, old) is None and not output.exists()
    assert store.upload(ALICE, fresh) is not None and store.upload(BOB, others) is not None
