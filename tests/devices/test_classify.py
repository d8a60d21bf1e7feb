"""One case per row of the classification table in docs/devices.md."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fogmesh.devices import DeviceCapabilities, DeviceType, classify, parse_device_type
from fogmesh.errors import ConfigError

S, T, L, D, P = (
    DeviceType.SMARTPHONE,
    DeviceType.TABLET,
    DeviceType.LAPTOP,
    DeviceType.DESKTOP,
    DeviceType.RASPBERRY_PI,
)
PI4 = "Raspberry Pi 4 Model B Rev 1.4"


@dataclass(frozen=True)
class Row:
    battery: bool | None
    cores: int | None
    ram_mb: int | None
    expected: DeviceType
    rule: str
    board: str | None = None
    override: DeviceType | str | None = None


ROWS = {
    # override beats everything, even a Pi board
    "override wins over board": Row(False, 4, 3796, D, "override", board=PI4, override="desktop"),
    "override as hyphenated text": Row(True, 8, 2816, P, "override", override="Raspberry-Pi"),
    # device-tree model: a 4 GB Pi is a Pi, not a desktop (the original's mistake)
    "Pi 4 4 GB on mains": Row(False, 4, 3796, P, "board_model", board=PI4),
    "Pi 5 8 GB": Row(False, 4, 8059, P, "board_model", board="Raspberry Pi 5 Model B Rev 1.0"),
    "Pi with a UPS-HAT battery": Row(True, 4, 1848, P, "board_model", board=PI4),
    "non-Pi board: normal rules": Row(True, 4, 1900, S, "battery_ram_le_3gb", board="PinePhone"),
    # battery-powered, by RAM (GB = 1024 MB)
    "battery 2 GB 8 cores": Row(True, 8, 2048, S, "battery_ram_le_3gb"),
    "battery exactly 3 GB: smartphone (≤ 3)": Row(True, 8, 3072, S, "battery_ram_le_3gb"),
    "battery 3 GB + 1 MB: tablet": Row(True, 8, 3073, T, "battery_ram_le_6gb"),
    "battery exactly 6 GB: tablet (≤ 6)": Row(True, 8, 6144, T, "battery_ram_le_6gb"),
    "battery 6 GB + 1 MB: laptop (> 6)": Row(True, 8, 6145, L, "battery_ram_gt_6gb"),
    "battery 16 GB": Row(True, 12, 15655, L, "battery_ram_gt_6gb"),
    "battery RAM unknown: most fragile": Row(True, 8, None, S, "battery_ram_unknown"),
    "battery 2 cores 2 GB: phone beats seed Pi rule": Row(True, 2, 2048, S, "battery_ram_le_3gb"),
    # mains-powered
    "mains 2 cores 2 GB: seed Pi rule": Row(False, 2, 2048, P, "mains_ram_le_2gb"),
    "mains 4 cores 2 GB: small board": Row(False, 4, 2048, P, "mains_ram_le_2gb"),
    "mains cores unknown 1 GB": Row(False, None, 1024, P, "mains_ram_le_2gb"),
    "mains 2 cores 2 GB + 1 MB: desktop": Row(False, 2, 2049, D, "mains_ram_le_6gb"),
    "mains 4 cores 4 GB box: desktop": Row(False, 4, 4096, D, "mains_ram_le_6gb"),
    "mains exactly 6 GB": Row(False, 4, 6144, D, "mains_ram_le_6gb"),
    "mains 6 GB + 1 MB: seed desktop": Row(False, 4, 6145, D, "mains_ram_gt_6gb"),
    "mains RAM unknown": Row(False, 4, None, D, "mains_ram_unknown"),
    # battery unknown: seed Pi rule, else assumed battery-powered
    "unknown power 2 cores 2 GB: seed Pi rule": Row(None, 2, 2048, P, "unknown_power_seed_pi"),
    "unknown power 4 cores 2 GB": Row(None, 4, 2048, S, "unknown_power_ram_le_3gb"),
    "unknown power cores unknown 2 GB": Row(None, None, 2048, S, "unknown_power_ram_le_3gb"),
    "unknown power 4 GB": Row(None, 8, 4096, T, "unknown_power_ram_le_6gb"),
    "unknown power 16 GB": Row(None, 8, 16384, L, "unknown_power_ram_gt_6gb"),
    "unknown power RAM unknown": Row(None, None, None, S, "unknown_power_ram_unknown"),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_classification_table(row: Row) -> None:
    caps = DeviceCapabilities(
        cpu_cores_logical=row.cores,
        ram_total_mb=row.ram_mb,
        has_battery=row.battery,
        board_model=row.board,
    )
    result = classify(caps, override=row.override)
    assert (result.device_type, result.rule) == (row.expected, row.rule)
    assert result.reason


def test_every_rule_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "devices.md").read_text(encoding="utf-8")
    for row in ROWS.values():
        assert f"`{row.rule}`" in doc, row.rule


def test_reason_names_the_numbers() -> None:
    result = classify(DeviceCapabilities(ram_total_mb=2816, has_battery=True))
    assert "2816 MB" in result.reason and "3072 MB" in result.reason


def test_unknown_override_lists_the_types() -> None:
    with pytest.raises(ConfigError) as err:
        classify(DeviceCapabilities(), override="phablet")
    assert err.value.field == "device_type"
    assert "raspberry_pi" in err.value.reason


def test_parse_device_type_is_forgiving_about_case_and_dashes() -> None:
    assert parse_device_type(" LAPTOP ") is DeviceType.LAPTOP
    assert parse_device_type("raspberry-pi") is DeviceType.RASPBERRY_PI
    assert parse_device_type(DeviceType.TABLET) is DeviceType.TABLET
