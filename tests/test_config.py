from __future__ import annotations

from pathlib import Path

import pytest

from fogmesh.config import default_data_dir, load_settings, setting
from fogmesh.errors import ConfigError


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


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_PROFILE", raising=False)
    monkeypatch.setenv("fogmesh_profile", "phone-hot")
    assert load_settings().profile == "phone-hot"


def test_an_empty_value_is_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_PROFILE", "")
    monkeypatch.setenv("FOGMESH_HOME", "")
    settings = load_settings()
    assert settings.profile == ""
    assert settings.home == Path()


def test_home_is_not_expanded_and_unknown_names_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FOGMESH_HOME", "~/fog")
    monkeypatch.setenv("FOGMESH_NOT_A_SETTING", "x")
    settings = load_settings(not_a_setting=1)
    assert settings.home == Path("~/fog")
    assert settings.data_dir == settings.home
    assert (settings.coordinator, settings.log_level) == (None, "INFO")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"home": 5}, "FOGMESH_HOME"),
        ({"home": b"/bytes"}, "FOGMESH_HOME"),
        ({"profile": 5}, "FOGMESH_PROFILE"),
        ({"log_level": True}, "FOGMESH_LOG_LEVEL"),
        ({"coordinator": b"\xff"}, "FOGMESH_COORDINATOR"),
    ],
)
def test_a_bad_value_names_its_variable(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert info.value.field == field


def test_text_fields_take_utf8_bytes(tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path), profile=b"phone-hot")
    assert settings.home == tmp_path
    assert settings.profile == "phone-hot"


def test_settings_are_frozen_and_compare_by_value(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    assert settings == load_settings(home=tmp_path)
    with pytest.raises(AttributeError):
        settings.home = tmp_path / "other"  # type: ignore[misc]


def test_one_setting_without_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_HOME", raising=False)
    monkeypatch.setenv("FOGMESH_PROFILE", "phone-hot")
    assert setting("profile") == "phone-hot"
    assert setting("home") == default_data_dir()
    with pytest.raises(KeyError):
        setting("nonsense")
