"""ONNX Runtime inference of a model from the device's verified model cache (what ``model``
payloads run).

Only the runner calls this, for a ``model`` payload, with the path its model resolver returned
for the payload's model id. It is deliberately not a built-in workload: a ``python`` payload
naming it could otherwise load any file a caller names (and tell existing files from missing
ones by the error). The module is private, so the runner's allow-list check refuses a ``python``
payload that names it. The bytes are read once and, for a content-addressed blob
(``<sha256>.onnx``, how the model cache stores models), checked against their hash in this
process, so a file swapped after the cache verified it is not run.

Imported by a warm worker on its first model task, so later forks start with onnxruntime
loaded. The session is made in the task process: a session's thread pools would not survive
the fork from the worker.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Final

import numpy as np

from fogmesh.agent.workloads._util import checksum
from fogmesh.errors import DeviceError, IntegrityError, InvalidRequest

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - the onnx extra is not installed
    ort = None

__all__ = ["run_cached_model"]

_BLOB_NAME: Final = re.compile(r"[0-9a-f]{64}")

_DTYPES: Final = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def run_cached_model(path: str, input: Any) -> dict[str, Any]:
    """Run the cached model at ``path`` on ``input`` (nested list for its one input, or
    name→list). Returns ``{"outputs": {name: nested list}, "checksum": ...}``."""
    if ort is None:
        raise DeviceError("onnxruntime is not installed on this device")
    blob = Path(path)
    try:
        data = blob.read_bytes()
    except OSError as exc:
        raise DeviceError(f"cached model cannot be read: {exc.strerror}") from None
    if _BLOB_NAME.fullmatch(blob.stem) and hashlib.sha256(data).hexdigest() != blob.stem:
        raise IntegrityError("cached model no longer matches its SHA-256")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise DeviceError(f"could not load model: {exc}") from exc
    specs = {i.name: i for i in session.get_inputs()}
    if isinstance(input, dict):
        named = input
    elif len(specs) == 1:
        named = {next(iter(specs)): input}
    else:
        raise InvalidRequest(f"model has inputs {sorted(specs)}; pass a dict of them")
    unknown = set(named) - set(specs)
    missing = set(specs) - set(named)
    if unknown or missing:
        raise InvalidRequest(f"inputs: unknown {sorted(unknown)}, missing {sorted(missing)}")
    feeds: dict[str, Any] = {}
    for name, value in named.items():
        dtype = _DTYPES.get(specs[name].type)
        if dtype is None:
            raise InvalidRequest(f"input {name!r} has unsupported type {specs[name].type}")
        try:
            feeds[name] = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"input {name!r}: {exc}") from exc
    try:
        values = session.run(None, feeds)
    except Exception as exc:  # ORT raises its own types for shape/type mismatches
        raise InvalidRequest(f"inference failed: {exc}") from exc
    names = [o.name for o in session.get_outputs()]
    outputs = {n: np.asarray(v).tolist() for n, v in zip(names, values, strict=True)}
    return {"outputs": outputs, "checksum": checksum(outputs)}
