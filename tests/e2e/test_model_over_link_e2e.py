"""A ``model`` task on an agent that lacks the model: the agent fetches it from the
coordinator's registry over the Noise link (chunked, SHA-256 checked), installs it in its own
cache and runs it in ONNX Runtime; the next task finds it cached. An unknown model is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_helpers import Fog, wait_until

pytest.importorskip("onnxruntime", reason="needs the onnx extra")

from fogmesh.edge.builtin import write_builtin_model
from fogmesh.edge.models import ModelRegistry

pytestmark = pytest.mark.slow


def _submit_model(fog: Fog, model_id: str, rows: list[list[float]]) -> str:
    body = {
        "type": "inference",
        "cpu_cores": 0.5,
        "memory_mb": 256,
        "estimated_duration": 10,
        "max_attempts": 1,
        "payload": {"type": "model", "model_id": model_id, "input": rows},
    }
    r = fog.api("POST", "/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["task_id"]
    return task_id


def _finished(fog: Fog, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        task = fog.task(task_id)
        return task if task["state"] in ("completed", "failed", "cancelled") else None

    return wait_until(done, 60, f"task {task_id}")


def test_an_agent_fetches_a_model_it_lacks_and_runs_it(fog: Fog, tmp_path: Path) -> None:
    import onnxruntime as ort

    source = tmp_path / "tutor.onnx"
    write_builtin_model("tutor_agent_v1", source)
    fog.coord_dir.mkdir(parents=True, exist_ok=True)
    registry = ModelRegistry(fog.coord_dir)  # what `fogmesh model add --data-dir` does
    registry.add(source, "tutor_x")
    registry.close()
    fog.start_coordinator()
    fog.start_agent("desk")
    wait_until(lambda: [d for d in fog.devices() if d["connected"]] or None, 60, "the agent")

    rows = np.linspace(-1, 1, 2 * 16, dtype=np.float32).reshape(2, 16)
    expected = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(
        None, {"features": rows}
    )[0]
    for _ in range(2):  # the first fetches the model, the second finds it in the cache
        task = _finished(fog, _submit_model(fog, "tutor_x", rows.tolist()))
        assert task["state"] == "completed", task
        (out,) = task["result"]["outputs"].values()
        assert np.allclose(np.array(out, dtype=np.float32), expected, atol=1e-5)
    cached = list((tmp_path / "desk" / "agent" / "models" / "blobs").iterdir())
    assert len(cached) == 1  # fetched once
    metrics = fog.api("GET", "/metrics").text
    assert "fogmesh_model_transfers_total 1" in metrics

    unknown = _finished(fog, _submit_model(fog, "no_such_model", rows.tolist()))
    assert unknown["state"] == "failed"
    assert "no model 'no_such_model'" in str(unknown["history"])
