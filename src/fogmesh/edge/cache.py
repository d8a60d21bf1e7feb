"""The device-side model cache: where verified models land, and the runner's model resolver.

Layout under the cache directory::

    blobs/<sha256>.onnx      model bytes, named by their hash
    manifests/<model_id>.json  which blob (and variant) the id currently resolves to
    incoming/                temporary files of transfers in progress (same filesystem, so
                             installing is an atomic rename)

``resolve(model_id)`` is ``RunnerConfig.model_resolver``: the path of a verified ``.onnx`` file,
or ``None`` when the model is not here (or its bytes no longer match their hash — then a warning
is logged and the model is treated as absent, so the work is refused rather than run on a
corrupt model). A file is re-hashed only when its size, mtime or inode changed since it was last
verified in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import msgspec

from fogmesh.edge.models import check_model_id, sha256_file
from fogmesh.edge.variants import Variant
from fogmesh.errors import IntegrityError

__all__ = ["CachedModel", "ModelCache", "default_cache_dir"]

log = logging.getLogger(__name__)


def default_cache_dir(data_dir: str | os.PathLike[str]) -> Path:
    """Where an agent keeps its models: ``<its data dir>/models``."""
    return Path(data_dir).expanduser() / "models"


class CachedModel(msgspec.Struct, frozen=True, kw_only=True):
    model_id: str
    variant: Variant
    sha256: str
    size_bytes: int
    installed_at: float


class ModelCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory).expanduser()
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"
        self.incoming = self.root / "incoming"
        # Directories are made on first install, not here: a manager adopts every device it
        # knows at start, and most never receive a model.
        self._made = False
        self._verified: dict[Path, tuple[int, int, int]] = {}

    def _ensure_dirs(self) -> None:
        if not self._made:
            for d in (self.blobs, self.manifests, self.incoming):
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made = True

    def __call__(self, model_id: str) -> Path | None:
        return self.resolve(model_id)

    def new_incoming(self) -> Path:
        """A fresh empty temporary file for a transfer in progress."""
        self._ensure_dirs()
        fd, name = tempfile.mkstemp(prefix="transfer-", suffix=".part", dir=self.incoming)
        os.close(fd)
        return Path(name)

    def install(
        self, part: Path, *, model_id: str, variant: Variant, sha256: str, now: float
    ) -> Path:
        """Move an already verified file into the cache and point ``model_id`` at it."""
        check_model_id(model_id)
        self._ensure_dirs()
        blob = self.blobs / f"{sha256}.onnx"
        os.replace(part, blob)
        entry = CachedModel(
            model_id=model_id,
            variant=variant,
            sha256=sha256,
            size_bytes=blob.stat().st_size,
            installed_at=now,
        )
        manifest = self.manifests / f"{model_id}.json"
        tmp = manifest.with_suffix(".json.tmp")
        tmp.write_bytes(msgspec.json.encode(entry))
        os.replace(tmp, manifest)
        self._collect()
        return blob

    def entry(self, model_id: str) -> CachedModel | None:
        check_model_id(model_id)
        try:
            raw = (self.manifests / f"{model_id}.json").read_bytes()
            return msgspec.json.decode(raw, type=CachedModel)
        except FileNotFoundError:
            return None
        except msgspec.DecodeError:
            log.warning(
                "model cache manifest for %s is unreadable; treating it as absent", model_id
            )
            return None

    def verify(self, model_id: str) -> Path:
        """The model's verified path; ``IntegrityError`` if absent, truncated or altered."""
        entry = self.entry(model_id)
        if entry is None:
            raise IntegrityError(f"model {model_id!r} is not in the cache", model_id=model_id)
        path = self.blobs / f"{entry.sha256}.onnx"
        try:
            st = path.stat()
        except FileNotFoundError:
            raise IntegrityError(
                f"model {model_id!r}: file is missing", model_id=model_id
            ) from None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if self._verified.get(path) == stamp:
            return path
        if st.st_size != entry.size_bytes or sha256_file(path) != entry.sha256:
            self._verified.pop(path, None)
            raise IntegrityError(
                f"model {model_id!r}: file no longer matches its SHA-256", model_id=model_id
            )
        self._verified[path] = stamp
        return path

    def resolve(self, model_id: str) -> Path | None:
        try:
            return self.verify(model_id)
        except IntegrityError as exc:
            if self.entry(model_id) is not None:
                log.warning("%s", exc.reason)
            return None

    def list(self) -> list[CachedModel]:
        out = []
        for manifest in sorted(self.manifests.glob("*.json")):
            entry = self.entry(manifest.stem)
            if entry is not None:
                out.append(entry)
        return out

    def remove(self, model_id: str) -> bool:
        """Forget ``model_id``; its blob goes once no other id uses it."""
        check_model_id(model_id)
        try:
            (self.manifests / f"{model_id}.json").unlink()
        except FileNotFoundError:
            return False
        self._collect()
        return True

    def _collect(self) -> None:
        used = {f"{e.sha256}.onnx" for e in self.list()}
        for blob in self.blobs.glob("*.onnx"):
            if blob.name not in used:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
                self._verified.pop(blob, None)
