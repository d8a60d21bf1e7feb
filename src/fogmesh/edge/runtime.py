"""Proof that a model runs: load it in ONNX Runtime and run it once on zeros.

A model that passes ``onnx.checker`` can still fail to load (an operator the installed runtime
lacks, a type it cannot execute); a deployment is ``ready`` only once the device has run it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fogmesh.errors import DeviceError

__all__ = ["prove_runs"]

_ORT_TYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def prove_runs(path: Path) -> str:
    """Load and run the model once (symbolic dimensions as 1); a note for the record.
    ``DeviceError`` if ONNX Runtime cannot load or run it."""
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError as exc:  # the `onnx` extra
        raise DeviceError("deployments need `pip install fogmesh[onnx]`") from exc
    start = time.perf_counter()
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings go to stderr otherwise
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise DeviceError(f"ONNX Runtime cannot load the model: {_first_line(exc)}") from exc
    feeds: dict[str, Any] = {}
    for arg in session.get_inputs():
        dtype = _ORT_TYPES.get(arg.type)
        if dtype is None:
            return f"loaded in ONNX Runtime; not run (input {arg.name} is {arg.type})"
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (arg.shape or [])]
        feeds[arg.name] = np.zeros(shape, dtype=dtype)
    try:
        session.run(None, feeds)
    except Exception as exc:
        raise DeviceError(f"ONNX Runtime cannot run the model: {_first_line(exc)}") from exc
    elapsed_ms = (time.perf_counter() - start) * 1000
    return f"loaded and ran in ONNX Runtime ({elapsed_ms:.1f} ms)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
