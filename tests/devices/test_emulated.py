"""Presets, profile files (JSON/TOML) and the emulated sensor source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fogmesh.clock import ManualClock
from fogmesh.devices import (
    DeviceProfile,
    DeviceType,
    EmulatedSensors,
    NetworkType,
    PlatformThermal,
    RealSensors,
    SensorSource,
    classify,
    dump_profile,
    load_profile,
    preset,
    preset_names,
    sensor_source_from_env,
)
from fogmesh.errors import ConfigError

REQUIRED_PRESETS = {
    "phone-critical-battery",
    "phone-low-battery",
    "phone-hot",
    "phone-charging",
    "tablet-charging",
    "laptop-on-cellular",
    "laptop-on-battery",
    "raspberry-pi",
    "desktop-gpu",
    "desktop",
}


def test_required_presets_exist() -> None:
    assert set(preset_names()) >= REQUIRED_PRESETS


@pytest.mark.parametrize("name", preset_names())
def test_preset_classifies_as_its_own_type(name: str) -> None:
    profile = preset(name)
    assert classify(profile.capabilities).device_type is profile.device_type
    assert profile.device_id == name


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_preset_round_trips(tmp_path: Path, name: str, suffix: str) -> None:
    path = tmp_path / f"{name}{suffix}"
    original = preset(name)
    dump_profile(original, path)
    loaded = load_profile(path)
    assert loaded == original
    again = tmp_path / f"again{suffix}"
    dump_profile(loaded, again)
    assert load_profile(again) == original


PRESET_FACTS = {
    "phone-critical-battery": lambda p: p.battery_percent <= 10 and p.charging is False,
    "phone-low-battery": lambda p: 10 < p.battery_percent <= 20 and p.charging is False,
    "phone-hot": lambda p: p.cpu_temp_c >= 55 and p.platform_thermal.status >= 3,
    "phone-charging": lambda p: p.charging is True,
    "tablet-charging": lambda p: p.device_type is DeviceType.TABLET and p.charging is True,
    "laptop-on-cellular": lambda p: p.network_type is NetworkType.CELLULAR and p.metered,
    "laptop-on-battery": lambda p: p.charging is False and p.device_type is DeviceType.LAPTOP,
    "raspberry-pi": lambda p: p.capabilities.ram_total_mb > 2048 and p.capabilities.board_model,
    "desktop-gpu": lambda p: p.capabilities.has_gpu and p.capabilities.gpu_memory_mb,
    "desktop": lambda p: p.capabilities.has_gpu is False and p.capabilities.has_battery is False,
}


@pytest.mark.parametrize("name", PRESET_FACTS)
def test_preset_describes_what_its_name_says(name: str) -> None:
    assert PRESET_FACTS[name](preset(name))


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        preset("phone-on-fire")
    assert err.value.field == "profile"
    assert "phone-hot" in err.value.reason and "desktop-gpu" in err.value.reason


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_overrides_a_base_preset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "my-phone.toml",
        """
base = "phone-hot"
device_id = "my-phone"
battery_percent = 12.5
unset = ["platform_thermal", "capabilities.gpu_name"]

[capabilities]
cpu_cores_logical = 4
""",
    )
    profile = load_profile(path)
    base = preset("phone-hot")
    assert profile.device_id == "my-phone"
    assert profile.battery_percent == 12.5
    assert profile.platform_thermal is None
    assert profile.capabilities.cpu_cores_logical == 4
    assert profile.capabilities.gpu_name is None
    # untouched fields come from the base, field by field inside capabilities too
    assert profile.cpu_temp_c == base.cpu_temp_c
    assert profile.capabilities.ram_total_mb == base.capabilities.ram_total_mb
    assert profile.device_type is DeviceType.SMARTPHONE


def test_json_file_without_base_or_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "box.json",
        json.dumps(
            {
                "capabilities": {
                    "ram_total_mb": 4096,
                    "has_battery": False,
                    "cpu_cores_logical": 4,
                },
                "network_type": "ethernet",
                "platform_thermal": {"platform": "ios", "status": 2},
            }
        ),
    )
    profile = load_profile(path)
    assert profile.device_id == "emulated-box"
    assert profile.device_type is DeviceType.DESKTOP  # 4 GB mains box, per the table
    assert profile.platform_thermal == PlatformThermal("ios", 2)
    assert profile.battery_percent is None  # absent stays absent


def test_changed_capabilities_are_reclassified_unless_the_type_is_given(tmp_path: Path) -> None:
    big = write(
        tmp_path, "big.toml", 'base = "phone-charging"\n[capabilities]\nram_total_mb = 16384'
    )
    assert load_profile(big).device_type is DeviceType.LAPTOP
    pinned = write(
        tmp_path,
        "pinned.toml",
        'base = "phone-charging"\ndevice_type = "smartphone"\n[capabilities]\nram_total_mb = 16384',
    )
    assert load_profile(pinned).device_type is DeviceType.SMARTPHONE


BAD_FILES = {
    "battery above 100": ("battery_percent = 120", "battery_percent", "0–100"),
    "battery below 0": ("battery_percent = -1", "battery_percent", "0–100"),
    "battery as text": ('battery_percent = "50"', "battery_percent", "number"),
    "charging as text": ('charging = "yes"', "charging", "boolean"),
    "unknown top-level field": ("batery_percent = 50", "batery_percent", "battery_percent"),
    "unknown capability": ("[capabilities]\nram_gb = 4", "capabilities.ram_gb", "unknown field"),
    "RAM as a fraction": ("[capabilities]\nram_total_mb = 2.5", "capabilities.ram_total_mb", "int"),
    "zero cores": (
        "[capabilities]\ncpu_cores_logical = 0",
        "capabilities.cpu_cores_logical",
        "≥ 1",
    ),
    "bad device type": ('device_type = "phablet"', "device_type", "smartphone"),
    "bad network": ('network_type = "5g"', "network_type", "wifi"),
    "android status 9": (
        '[platform_thermal]\nplatform = "android"\nstatus = 9',
        "platform_thermal",
        "0–6",
    ),
    "unknown base": ('base = "phone-on-fire"', "base", "phone-hot"),
    "temperature too hot": ("cpu_temp_c = 400.0", "cpu_temp_c", "-40–150"),
    "nan": ("cpu_percent = nan", "cpu_percent", "0–100"),
    "battery on a battery-less device": (
        'base = "desktop"\nbattery_percent = 50',
        "battery_percent",
        "has_battery",
    ),
    "a date": ("timestamp = 2024-01-01", "timestamp", "unsupported"),
    "unset something unknown": ('unset = ["vibes"]', "unset", "vibes"),
    "capabilities not a table": ('capabilities = "big"', "capabilities", "table"),
}


@pytest.mark.parametrize(("body", "field", "words"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_profile_file_names_the_field(
    tmp_path: Path, body: str, field: str, words: str
) -> None:
    path = write(tmp_path, "bad.toml", 'device_id = "x"\n' + body)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert err.value.field == field
    assert err.value.reason.startswith(field)
    assert words in err.value.reason


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("broken.json", "{not json", "not valid JSON"),
        ("broken.toml", "a = = 1", "not valid TOML"),
        ("list.json", "[1, 2]", "object of profile fields"),
        ("profile.yaml", "a: 1", ".json or .toml"),
    ],
)
def test_unreadable_profile_files(tmp_path: Path, name: str, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_profile(write(tmp_path, name, text))
    assert err.value.field == "profile"
    assert words in err.value.reason


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "nope.toml")


def test_dump_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        dump_profile(preset("desktop"), tmp_path / "p.yaml")
    assert err.value.field == "path"


def test_toml_dump_escapes_strings(tmp_path: Path) -> None:
    odd = preset("desktop").replace(device_id='quote " back\\slash\nnewline ü')
    dump_profile(odd, tmp_path / "odd.toml")
    assert load_profile(tmp_path / "odd.toml") == odd


# ---------------------------------------------------------------------------------------------
# the sensor source


def test_emulated_sensors_stamp_readings_with_the_clock() -> None:
    clock = ManualClock(start=1_000.0)
    sensors = EmulatedSensors(preset("phone-hot"), clock=clock)
    assert isinstance(sensors, SensorSource)
    assert sensors.read().timestamp == 1_000.0
    clock.advance(5)
    reading = sensors.read()
    assert reading.timestamp == 1_005.0
    assert reading.replace(timestamp=None) == preset("phone-hot")
    assert sensors.capabilities() == preset("phone-hot").capabilities


def test_emulated_sensors_can_be_updated() -> None:
    sensors = EmulatedSensors(preset("phone-charging"), clock=ManualClock())
    sensors.update(battery_percent=44.0)
    assert sensors.read().battery_percent == 44.0
    assert sensors.classification().rule == "profile"


def test_source_from_argument_environment_or_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOGMESH_PROFILE", raising=False)
    assert isinstance(sensor_source_from_env(), RealSensors)
    monkeypatch.setenv("FOGMESH_PROFILE", "raspberry-pi")
    from_env = sensor_source_from_env()
    assert isinstance(from_env, EmulatedSensors)
    assert from_env.read().device_type is DeviceType.RASPBERRY_PI
    # the argument beats the environment
    path = tmp_path / "tab.toml"
    dump_profile(preset("tablet-charging"), path)
    from_file = sensor_source_from_env(str(path))
    assert isinstance(from_file, EmulatedSensors)
    assert from_file.read().device_id == "tablet-charging"
    assert str(path) in from_file.label


def test_bad_environment_profile_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_PROFILE", "no-such-thing")
    with pytest.raises(ConfigError) as err:
        sensor_source_from_env()
    assert err.value.field == "FOGMESH_PROFILE"
    assert "phone-hot" in err.value.reason


def test_profiles_are_device_profiles() -> None:
    for name in preset_names():
        assert isinstance(preset(name), DeviceProfile)
