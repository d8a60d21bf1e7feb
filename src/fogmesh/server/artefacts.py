"""Results too large to travel inline, kept as files in the coordinator's data directory.

An agent whose task produced more than the inline limit (1 MiB of JSON) sends it ahead in
``artefact_chunk`` messages, then its ``result`` names the artefact by SHA-256 and size. Chunks
go to ``artefacts/<task>.<attempt>.part`` in order (a chunk at offset 0 starts over, so a resend
after a reconnect is fine; any other gap is refused); the result's digest and size are checked
against the file before it is renamed to ``artefacts/<task>.json`` and the task completes with a
reference to it (``GET /v1/tasks/{id}/artefact``). A partial file whose check fails is removed at
once; one that never gets its result (the agent died mid-upload) is removed at the next start.
A disk that fails (full, read-only) is a ``StoreError``: the upload was fine, and the agent is
asked to send it again.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final

from fogmesh.errors import IntegrityError, InvalidRequest, NotFound, StoreError

__all__ = ["MAX_ARTEFACT_BYTES", "ArtefactStore"]

MAX_ARTEFACT_BYTES: Final = 64 << 20
_TASK_ID: Final = re.compile(r"^[0-9A-Za-z]{1,64}$")


class ArtefactStore:
    def __init__(self, root: Path, *, max_bytes: int = MAX_ARTEFACT_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob("*.part"):  # uploads cut off by the last shutdown
            stale.unlink(missing_ok=True)

    def _part(self, task_id: str, attempt: int) -> Path:
        if not _TASK_ID.match(task_id) or not isinstance(attempt, int) or attempt < 0:
            raise InvalidRequest(f"bad artefact key {task_id!r}/{attempt!r}")
        return self.root / f"{task_id}.{attempt}.part"

    def path(self, task_id: str) -> Path:
        """The stored artefact of a task; ``NotFound`` when it has none."""
        if not _TASK_ID.match(task_id):
            raise NotFound(f"task {task_id!r} has no artefact")
        final = self.root / f"{task_id}.json"
        if not final.is_file():
            raise NotFound(f"task {task_id} has no artefact")
        return final

    def append(self, task_id: str, attempt: int, offset: int, total: int, data: bytes) -> None:
        """Write one chunk. Offset 0 starts the upload over; any other offset must be where
        the file ends."""
        part = self._part(task_id, attempt)
        if not 0 < total <= self.max_bytes:
            raise InvalidRequest(f"artefact of {total} bytes exceeds {self.max_bytes}")
        have = part.stat().st_size if offset and part.exists() else 0
        if offset != have:
            raise InvalidRequest(f"artefact chunk at {offset}, expected {have}")
        if offset + len(data) > total:
            raise InvalidRequest("artefact chunk runs past the announced size")
        try:
            with part.open("r+b" if offset else "wb") as f:
                f.seek(offset)
                f.write(data)
                f.truncate()
        except OSError as exc:
            raise StoreError(f"artefact chunk not written: {exc.strerror or exc}") from exc

    def finish(self, task_id: str, attempt: int, sha256: str, size: int) -> Path:
        """Check the uploaded file against the result's digest and size and keep it."""
        part = self._part(task_id, attempt)
        if not part.exists():
            raise IntegrityError(f"no artefact was uploaded for {task_id} attempt {attempt}")
        try:
            if part.stat().st_size != size:
                raise IntegrityError(
                    f"artefact of {task_id} has {part.stat().st_size} bytes, result says {size}"
                )
            digest = hashlib.sha256()
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != sha256:
                raise IntegrityError(f"artefact of {task_id} does not match its SHA-256")
            with part.open("rb+") as f:
                os.fsync(f.fileno())
            final = self.root / f"{task_id}.json"
            os.replace(part, final)
            return final
        except IntegrityError:
            part.unlink(missing_ok=True)
            raise
        except OSError as exc:
            raise StoreError(f"artefact not kept: {exc.strerror or exc}") from exc

    def discard(self, task_id: str, attempt: int) -> None:
        self._part(task_id, attempt).unlink(missing_ok=True)
