"""Fixtures: a private data directory, and tiny ONNX models built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_models import ModelFactory, build_model


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own FOGMESH_HOME and no emulation from the outside environment."""
    data = tmp_path / "home"
    monkeypatch.setenv("FOGMESH_HOME", str(data))
    for name in ("FOGMESH_PROFILE", "FOGMESH_DEVICE_TYPE", "FOGMESH_COORDINATOR"):
        monkeypatch.delenv(name, raising=False)
    return data


@pytest.fixture
def make_model(tmp_path: Path) -> ModelFactory:
    counter = iter(range(1_000_000))

    def factory(**kwargs: int) -> Path:
        return build_model(tmp_path / f"model-{next(counter)}.onnx", **kwargs)

    return factory
