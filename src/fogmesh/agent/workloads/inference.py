"""ONNX Runtime inference on a model file (what ``model`` payloads run).

Imported by a warm worker on its first model task, so later forks start with onnxruntime
loaded. The session is made in the task process: a session's thread pools would not survive
the fork from the worker.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from fogmesh.agent.workloads._util import checksum
from fogmesh.errors import DeviceError, InvalidRequest

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - the onnx extra is not installed
    ort = None

__all__ = ["run_model"]

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


def run_model(path: str, input: Any) -> dict[str, Any]:
    """Run the model at ``path`` on ``input`` (nested list for its one input, or name→list).

    Returns ``{"outputs": {name: nested list}, "checksum": ...}``.
    """
    if ort is None:
        raise DeviceError("onnxruntime is not installed on this device")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
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
