"""Tiny ONNX models built with onnx.helper, for the edge tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

ModelFactory = Callable[..., Path]


def build_model(path: Path, *, features: int = 8, outputs: int = 4, seed: int = 0) -> Path:
    """y = x·W + b with a seeded W: ``features × outputs`` float32 weights (4 bytes each)."""
    from onnx import TensorProto, helper, numpy_helper, save_model

    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0, (features, outputs)).astype(np.float32)
    b = np.arange(outputs, dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", outputs])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, str(path))
    return path
