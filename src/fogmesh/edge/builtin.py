"""Built-in demo models, generated with ``onnx.helper`` on first use (nothing is downloaded).

``tutor_agent_v1`` is the model the seed's "Basic Usage" example deploys: a small two-layer
classifier (16 features → 64 hidden → 8 class probabilities) with fixed, seeded weights, so the
example runs as written on a fresh data directory and its output is the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_MODELS", "write_builtin_model"]

BUILTIN_MODELS: tuple[str, ...] = ("tutor_agent_v1",)

_FEATURES = 16
_HIDDEN = 64
_CLASSES = 8
_SEED = 20240501
# Opset 17 and IR 8 load in every onnxruntime this project supports (≥ 1.17).
_OPSET = 17
_IR_VERSION = 8


def write_builtin_model(model_id: str, path: Path) -> None:
    """Write the named built-in model as an fp32 ONNX file at ``path``."""
    if model_id not in BUILTIN_MODELS:
        raise KeyError(model_id)
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save_model

    rng = np.random.default_rng(_SEED)
    w1 = rng.normal(0.0, 0.25, (_FEATURES, _HIDDEN)).astype(np.float32)
    b1 = np.zeros(_HIDDEN, dtype=np.float32)
    w2 = rng.normal(0.0, 0.25, (_HIDDEN, _CLASSES)).astype(np.float32)
    b2 = np.zeros(_CLASSES, dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["features", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["l0"]),
        helper.make_node("Add", ["l0", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        model_id,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", _FEATURES])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", _CLASSES])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="fogmesh"
    )
    model.ir_version = _IR_VERSION
    save_model(model, str(path))
