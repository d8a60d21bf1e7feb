"""The coordinator's artefact store: ordered chunks, checked digests, nothing half-kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fogmesh.errors import IntegrityError, InvalidRequest, NotFound
from fogmesh.server.artefacts import ArtefactStore

BLOB = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BLOB).hexdigest()


def _upload(
    store: ArtefactStore, task: str, attempt: int, data: bytes, size: int = 300_000
) -> None:
    for offset in range(0, len(data), size):
        store.append(task, attempt, offset, len(data), data[offset : offset + size])


def test_chunks_in_order_are_kept_after_the_digest_checks(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "a")
    _upload(store, "T1", 1, BLOB)
    path = store.finish("T1", 1, SHA, len(BLOB))
    assert path.read_bytes() == BLOB and store.path("T1") == path
    assert not list((tmp_path / "a").glob("*.part"))


def test_a_resend_from_offset_zero_starts_over(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "a")
    store.append("T1", 1, 0, len(BLOB), BLOB[:1000])
    _upload(store, "T1", 1, BLOB)  # the agent reconnected and sent everything again
    assert store.finish("T1", 1, SHA, len(BLOB)).read_bytes() == BLOB


@pytest.mark.parametrize(
    ("offset", "total", "data", "fragment"),
    [
        (5, 10, b"x", "expected 0"),  # a gap
        (0, 65 << 20, b"x", "exceeds"),  # too big
        (0, 3, b"xxxx", "past the announced size"),
    ],
)
def test_bad_chunks_are_refused(
    tmp_path: Path, offset: int, total: int, data: bytes, fragment: str
) -> None:
    store = ArtefactStore(tmp_path / "a")
    with pytest.raises(InvalidRequest, match=fragment):
        store.append("T1", 1, offset, total, data)


def test_a_wrong_digest_or_size_keeps_nothing(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "a")
    _upload(store, "T1", 1, BLOB)
    with pytest.raises(IntegrityError, match="SHA-256"):
        store.finish("T1", 1, "0" * 64, len(BLOB))
    _upload(store, "T1", 2, BLOB[:-1])
    with pytest.raises(IntegrityError, match="bytes"):
        store.finish("T1", 2, SHA, len(BLOB))
    with pytest.raises(IntegrityError, match="no artefact was uploaded"):
        store.finish("T1", 3, SHA, len(BLOB))
    with pytest.raises(NotFound):
        store.path("T1")
    assert not list((tmp_path / "a").iterdir())


def test_task_ids_cannot_escape_the_directory(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "a")
    with pytest.raises(InvalidRequest):
        store.append("../../etc/passwd", 1, 0, 1, b"x")
    with pytest.raises(NotFound):
        store.path("../x")


def test_partial_uploads_are_swept_at_start(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "a")
    store.append("T1", 1, 0, 10, b"12345")
    ArtefactStore(tmp_path / "a")
    assert not list((tmp_path / "a").glob("*.part"))
