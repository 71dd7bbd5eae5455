"""Uploaded files and conversion outputs, stored per owner under the data directory:

    <data dir>/data-conversion/<owner key>/uploads/<file id>        the bytes
    <data dir>/data-conversion/<owner key>/uploads/<file id>.json   name, size, time
    <data dir>/data-conversion/<owner key>/outputs/<job key>.<ext>  a job's output

The owner key is a digest of (organization, user): ids never become path parts, and one
owner's files are only reached through that owner's key (another owner asking for the same file
id looks in its own directory and finds nothing). Files older than the retention are deleted
whenever their owner uploads or converts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
Owner = tuple[str, str | None]  # (user id, organization id); ("", None): nobody in particular


@dataclass(frozen=True)
class StoredFile:
    id: str
    name: str
    bytes: int
    created_at: str
    path: Path


def owner_key(owner: Owner) -> str:
    user, org = owner
    return hashlib.sha256(f"{org or ''}\x00{user}".encode()).hexdigest()[:32]


class FileStore:
    def __init__(self, data_dir: Path, retention: timedelta) -> None:
        self.base = data_dir.expanduser().resolve() / "data-conversion"
        self.retention = retention

    def _dir(self, owner: Owner, kind: str) -> Path:
        return self.base / owner_key(owner) / kind

    # -- uploads ------------------------------------------------------------------------------

    def new_upload(self, owner: Owner) -> tuple[str, Path]:
        """A fresh file id and the temporary path to write its bytes to (then `commit`)."""
        self.prune(owner)
        folder = self._dir(owner, "uploads")
        folder.mkdir(parents=True, exist_ok=True)
        file_id = uuid.uuid4().hex
        return file_id, folder / f"{file_id}.part"

    def commit(self, owner: Owner, file_id: str, name: str) -> StoredFile:
        folder = self._dir(owner, "uploads")
        path = folder / file_id
        os.replace(folder / f"{file_id}.part", path)
        size = path.stat().st_size
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        (folder / f"{file_id}.json").write_text(
            json.dumps({"name": name, "bytes": size, "createdAt": created}))
        return StoredFile(file_id, name, size, created, path)

    def upload(self, owner: Owner, file_id: str) -> StoredFile | None:
        """The owner's uploaded file with that id, or None (no such id, someone else's, gone)."""
        if not FILE_ID.match(file_id):
            return None
        folder = self._dir(owner, "uploads")
        try:
            meta = json.loads((folder / f"{file_id}.json").read_text())
        except (OSError, ValueError):
            return None
        path = folder / file_id
        if not path.is_file():
            return None
        return StoredFile(file_id, meta["name"], meta["bytes"], meta["createdAt"], path)

    def delete_upload(self, owner: Owner, file_id: str) -> bool:
        found = self.upload(owner, file_id)
        if found is None:
            return False
        found.path.unlink(missing_ok=True)
        found.path.with_name(f"{file_id}.json").unlink(missing_ok=True)
        return True

    # -- outputs ------------------------------------------------------------------------------

    def output_path(self, owner: Owner, queue: str, job_id: str, extension: str) -> Path:
        job_key = hashlib.sha256(f"{queue}:{job_id}".encode()).hexdigest()[:32]
        return self._dir(owner, "outputs") / f"{job_key}.{extension}"

    # -- retention ----------------------------------------------------------------------------

    def prune(self, owner: Owner) -> int:
        """Delete the owner's files older than the retention; how many went."""
        cutoff = time.time() - self.retention.total_seconds()
        removed = 0
        for kind in ("uploads", "outputs"):
            folder = self._dir(owner, kind)
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed
