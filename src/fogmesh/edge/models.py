"""The model registry: ONNX artefacts, content-addressed by SHA-256, one row per (id, variant).

Layout under the data directory (``edge/``):

* ``blobs/sha256/<hex>`` — the model bytes, named by their own SHA-256; written to a temporary
  file and renamed into place, so a blob is either whole or absent. Two variants (or two ids)
  with the same bytes share one blob; a blob is deleted when no row names it any more.
* ``edge.db`` — a small SQLite file of our own (not the coordinator's store): the registry rows
  here, the EdgeManager's deployments next to them. The coordinator's ``Store`` only offers
  key/value state, and listing, per-id variants and deployment history want real tables.

``add`` validates before storing: the file must parse and pass ``onnx.checker``; otherwise
``InvalidRequest`` and nothing is stored. ``verify``/``open_verified`` re-hash a blob and raise
``IntegrityError`` if its bytes no longer match the name they were stored under.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from fogmesh.edge.variants import Variant
from fogmesh.errors import IntegrityError, InvalidRequest, ModelNotFound
from fogmesh.fog.tasks import MODEL_ID_PATTERN

__all__ = [
    "MAX_MODEL_BYTES",
    "ModelInfo",
    "ModelRegistry",
    "TensorSpec",
    "check_model_id",
    "sha256_file",
]

MAX_MODEL_BYTES = 2 * 1024**3  # protobuf's own limit for a single ONNX file
_READ = 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (model_id, variant)
);
CREATE INDEX IF NOT EXISTS models_sha ON models (sha256);
"""


class _DropQuantizeAdvice(logging.Filter):
    """onnxruntime's quantiser logs pre-processing advice on the root logger at every call; it
    is about calibrated static quantisation, not the dynamic kind used here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


class TensorSpec(msgspec.Struct, frozen=True):
    name: str
    dtype: str  # numpy-style name: float32, int64 ...
    shape: tuple[int | str | None, ...]  # a symbolic dimension is its name; None if unnamed


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    model_id: str
    variant: Variant
    sha256: str
    size_bytes: int
    opset: int  # the default ("ai.onnx") domain's opset
    ir_version: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    added_at: float
    source: str = ""  # file name it was added from, or "built-in" / "quantized from fp32"

    def to_dict(self) -> dict[str, object]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


def check_model_id(model_id: str) -> str:
    """Model ids name files on devices, so they are restricted to a safe alphabet."""
    if not isinstance(model_id, str) or not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidRequest(
            f"model id {model_id!r} must be 1–128 characters of letters, digits, '.', '_', '-' "
            "and start with a letter or digit",
            field="model_id",
        )
    return model_id


def _variant(value: Variant | str) -> Variant:
    try:
        return Variant(value)
    except ValueError:
        known = ", ".join(v.value for v in Variant)
        raise InvalidRequest(
            f"unknown variant {value!r}; known: {known}", field="variant"
        ) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: Path) -> tuple[int, int, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Parse and check the model; its opset, IR version, inputs and outputs."""
    try:
        import onnx
        from onnx import helper
    except ImportError as exc:  # the `onnx` extra
        raise InvalidRequest("the model registry needs `pip install fogmesh[onnx]`") from exc
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises protobuf DecodeError, ValidationError, OSError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidRequest(f"{path.name} is not a valid ONNX model: {first[:200]}") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    initializers = {i.name for i in model.graph.initializer}

    def spec(value: object) -> TensorSpec:
        tensor = value.type.tensor_type  # type: ignore[attr-defined]
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        )
        try:
            dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except Exception:  # a non-tensor or unusual element type: keep its ONNX name
            dtype = f"onnx:{tensor.elem_type}"
        return TensorSpec(value.name, dtype, dims)  # type: ignore[attr-defined]

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(spec(v) for v in model.graph.output)
    return opset, int(model.ir_version), inputs, outputs


class ModelRegistry:
    """Registered models under ``data_dir/edge``. Thread-safe; every call is short and blocking
    (hashing and ``onnx.checker`` scale with the file), so async callers use a thread."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir).expanduser() / "edge"
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.root / "edge.db", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- adding ---------------------------------------------------------------------------
    def add(
        self,
        file: str | os.PathLike[str],
        model_id: str,
        variant: Variant | str = Variant.FP32,
        *,
        make_int8: bool = False,
        source: str | None = None,
    ) -> ModelInfo:
        """Validate and store ``file`` as ``model_id``/``variant`` (replacing that pair if it was
        registered). ``make_int8`` also stores an int8 variant quantised from this fp32 file.
        Returns the row for ``file`` itself."""
        check_model_id(model_id)
        kind = _variant(variant)
        if make_int8 and kind is not Variant.FP32:
            raise InvalidRequest("make_int8 quantises an fp32 model; add it as --variant fp32")
        path = Path(file)
        if not path.is_file():
            raise InvalidRequest(f"no such model file: {path}", field="file")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise InvalidRequest(f"{path.name} is {size} bytes; the limit is {MAX_MODEL_BYTES}")
        opset, ir_version, inputs, outputs = _describe(path)
        digest = self._store_blob(path)
        info = ModelInfo(
            model_id=model_id,
            variant=kind,
            sha256=digest,
            size_bytes=size,
            opset=opset,
            ir_version=ir_version,
            inputs=inputs,
            outputs=outputs,
            added_at=time.time(),
            source=source if source is not None else path.name,
        )
        self._put(info)
        if make_int8:
            self.quantize(model_id)
        return info

    def quantize(self, model_id: str) -> ModelInfo:
        """Store an int8 variant of ``model_id`` made from its fp32 one (dynamic quantisation:
        int8 weights, activations quantised at run time — no calibration data needed)."""
        fp32 = self.get(model_id, Variant.FP32)
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError as exc:
            raise InvalidRequest("quantising needs `pip install fogmesh[onnx]`") from exc
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            out = Path(tmp) / "int8.onnx"
            advice = _DropQuantizeAdvice()
            logging.getLogger().addFilter(advice)
            try:
                quantize_dynamic(
                    str(self.open_verified(fp32)), str(out), weight_type=QuantType.QInt8
                )
            except Exception as exc:  # onnxruntime raises plain exceptions of many kinds
                raise InvalidRequest(f"cannot quantise {model_id}: {exc}") from exc
            finally:
                logging.getLogger().removeFilter(advice)
            return self.add(out, model_id, Variant.INT8, source="quantized from fp32")

    def _store_blob(self, path: Path) -> str:
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.blobs)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while block := src.read(_READ):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            hexdigest = digest.hexdigest()
            final = self.blobs / hexdigest
            if final.exists() and sha256_file(final) == hexdigest:
                tmp.unlink()
            else:
                os.replace(tmp, final)
            return hexdigest
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def _put(self, info: ModelInfo) -> None:
        row = json.dumps(info.to_dict())
        with self._lock:
            old = self._db.execute(
                "SELECT sha256 FROM models WHERE model_id = ? AND variant = ?",
                (info.model_id, info.variant.value),
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO models (model_id, variant, sha256, info) "
                "VALUES (?, ?, ?, ?)",
                (info.model_id, info.variant.value, info.sha256, row),
            )
            if old is not None and old[0] != info.sha256:
                self._collect(old[0])

    # -- reading ----------------------------------------------------------------------------
    def get(self, model_id: str, variant: Variant | str | None = None) -> ModelInfo:
        """One variant (``None``: fp32 if registered, else int8); unknown → ``ModelNotFound``."""
        found = self.variants(model_id)
        if not found:
            raise ModelNotFound(f"unknown model {model_id!r}", model_id=model_id)
        if variant is None:
            return found.get(Variant.FP32) or found[Variant.INT8]
        kind = _variant(variant)
        if kind not in found:
            raise ModelNotFound(
                f"model {model_id!r} has no {kind.value} variant (has: "
                f"{', '.join(sorted(v.value for v in found))})",
                model_id=model_id,
            )
        return found[kind]

    def variants(self, model_id: str) -> dict[Variant, ModelInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT info FROM models WHERE model_id = ?", (model_id,)
            ).fetchall()
        infos = (msgspec.json.decode(r[0], type=ModelInfo) for r in rows)
        return {i.variant: i for i in infos}

    def list(self) -> list[ModelInfo]:
        with self._lock:
            rows = self._db.execute("SELECT info FROM models ORDER BY model_id, variant").fetchall()
        return [msgspec.json.decode(r[0], type=ModelInfo) for r in rows]

    def blob_path(self, info: ModelInfo) -> Path:
        return self.blobs / info.sha256

    def verify(self, info: ModelInfo) -> None:
        """Re-hash the blob: ``IntegrityError`` if it is missing or its bytes changed."""
        path = self.blob_path(info)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            raise IntegrityError(
                f"blob of {info.model_id}/{info.variant.value} is missing", model_id=info.model_id
            ) from None
        if actual != info.sha256:
            raise IntegrityError(
                f"blob of {info.model_id}/{info.variant.value} no longer matches its SHA-256",
                model_id=info.model_id,
            )

    def open_verified(self, info: ModelInfo) -> Path:
        """The blob's path, after checking its bytes still match its hash."""
        self.verify(info)
        return self.blob_path(info)

    def iter_blob(self, info: ModelInfo, block: int) -> Iterator[bytes]:
        with self.blob_path(info).open("rb") as f:
            while data := f.read(block):
                yield data

    # -- removing ---------------------------------------------------------------------------
    def remove(
        self, model_id: str, variant: Variant | str | None = None
    ) -> builtins.list[ModelInfo]:
        """Forget one variant (or all of ``model_id``); returns what was removed."""
        found = self.variants(model_id)
        if variant is not None:
            kind = _variant(variant)
            found = {kind: found[kind]} if kind in found else {}
        if not found:
            raise ModelNotFound(f"unknown model {model_id!r}", model_id=model_id)
        with self._lock:
            for info in found.values():
                self._db.execute(
                    "DELETE FROM models WHERE model_id = ? AND variant = ?",
                    (model_id, info.variant.value),
                )
                self._collect(info.sha256)
        return list(found.values())

    def _collect(self, sha256: str) -> None:
        """Delete a blob no row names any more (caller holds the lock)."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM models WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if count == 0:
            with contextlib.suppress(FileNotFoundError):
                (self.blobs / sha256).unlink()
