"""``model`` payloads: ONNX Runtime inference of a file the model resolver supplies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fogmesh.agent import RunLimits, RunnerConfig, TaskRunner
from fogmesh.fog.tasks import ModelPayload, PythonPayload, Task, TaskType

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

LIMITS = RunLimits(cpu_cores=1.0, memory_mb=512, timeout_s=30.0)
W = np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0]], dtype=np.float32)
B = np.array([0.25, -0.5], dtype=np.float32)


def build_model(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def model_task(name: str, model_id: str, value: object) -> Task:
    return Task(
        id=name, type=TaskType.INFERENCE, payload=ModelPayload(model_id=model_id, input=value)
    )


async def test_model_payload_runs_onnx_inference(tmp_path: Path) -> None:
    path = build_model(tmp_path / "tiny.onnx")
    resolver = {"tiny": path}.get
    x = [[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]]
    async with TaskRunner(RunnerConfig(workers=1, model_resolver=resolver)) as r:
        assert r.capabilities()["onnx"] is True and r.capabilities()["models"] is True
        out = await r.run(model_task("m1", "tiny", x), LIMITS)
        assert out.status == "completed", out.error
        assert np.allclose(out.result["outputs"]["y"], np.asarray(x, np.float32) @ W + B)
        named = await r.run(model_task("m2", "tiny", {"x": x}), LIMITS)
        assert named.result == out.result
        wrong = await r.run(model_task("m3", "tiny", [[1.0]]), LIMITS)
        assert wrong.status == "failed" and wrong.error is not None
        assert wrong.error["code"] == "invalid_request"
        missing = await r.run(model_task("m4", "unknown", x), LIMITS)
        assert missing.status == "failed" and missing.error is not None
        assert missing.error["code"] == "model_missing"


async def test_model_payload_without_a_resolver_or_file_is_model_missing(tmp_path: Path) -> None:
    for config in (
        RunnerConfig(workers=1),
        RunnerConfig(workers=1, model_resolver=lambda _id: tmp_path / "gone.onnx"),
    ):
        r = TaskRunner(config)
        try:
            out = await r.run(model_task("m", "tiny", [[1.0, 2.0, 3.0]]), LIMITS)
            assert out.status == "failed" and out.error is not None
            assert out.error["code"] == "model_missing"
            assert r._workers == {}  # decided before any worker was needed
        finally:
            await r.close()


async def test_a_failing_resolver_is_a_value_not_an_exception() -> None:
    def broken(model_id: str) -> Path | None:
        raise RuntimeError("registry offline")

    r = TaskRunner(RunnerConfig(workers=1, model_resolver=broken))
    try:
        out = await r.run(model_task("m", "tiny", [[1.0]]), LIMITS)
        assert out.status == "failed" and out.error is not None
        assert out.error["code"] == "model_missing" and "registry offline" in out.error["reason"]
    finally:
        await r.close()


@pytest.mark.parametrize(
    "function",
    [
        "fogmesh.agent.workloads.inference:run_model",  # where a path-taking entry used to be
        "fogmesh.agent.workloads:run_model",
        "fogmesh.agent._inference:run_cached_model",  # private: only model payloads reach it
    ],
)
async def test_no_python_payload_runs_a_model_file_or_tells_whether_one_exists(
    tmp_path: Path, function: str
) -> None:
    """A python payload naming a file must answer the same for an existing model, an existing
    non-model file and a missing file, and must never run any of them."""
    existing = build_model(tmp_path / "tiny.onnx")
    other = tmp_path / "secret.txt"
    other.write_text("not a model")
    x = [[1.0, 2.0, 3.0]]
    outcomes = []
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        for i, path in enumerate([existing, other, tmp_path / "missing.onnx"]):
            task = Task(
                id=f"p{i}",
                type=TaskType.INFERENCE,
                payload=PythonPayload(function=function, args={"path": str(path), "input": x}),
            )
            out = await r.run(task, LIMITS)
            assert out.status in ("refused", "failed"), out
            assert out.error is not None
            outcomes.append((out.status, out.error["code"], out.error["reason"]))
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
