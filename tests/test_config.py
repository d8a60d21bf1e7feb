from __future__ import annotations

from pathlib import Path

import pytest

from fogmesh.config import default_data_dir, load_settings


def test_home_defaults_to_the_per_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_HOME", raising=False)
    assert load_settings().home == default_data_dir()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path))
    monkeypatch.setenv("FOGMESH_PROFILE", "phone-hot")
    settings = load_settings()
    assert settings.home == tmp_path
    assert settings.profile == "phone-hot"


def test_explicit_argument_beats_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FOGMESH_HOME", "/elsewhere")
    assert load_settings(home=tmp_path).home == tmp_path
