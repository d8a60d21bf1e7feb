"""Significant change (pure): battery ±10 points, temperature ±10 °C, available RAM ±512 MB."""

from __future__ import annotations

from typing import Any

import pytest

from fogmesh.devices import preset
from fogmesh.edge.monitor import ChangeThresholds, significant_changes

BASE = preset("laptop-on-battery")  # battery 38 %, 51 °C, 2926 MB available, not charging


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"battery_percent": 29.0}, ()),  # 38 − 29 = 9 points: drift
        ({"battery_percent": 28.0}, ("battery 38% → 28% (±10% or more)",)),  # 10 points
        ({"battery_percent": 48.0}, ("battery 38% → 48% (±10% or more)",)),  # up counts too
        ({"cpu_temp_c": 60.9}, ()),  # +9.9 °C
        ({"cpu_temp_c": 61.0}, ("temperature 51 °C → 61 °C (±10 °C or more)",)),
        ({"ram_available_mb": 2926 - 511}, ()),
        (
            {"ram_available_mb": 2926 - 512},
            ("available RAM 2926 MB → 2414 MB (±512 MB or more)",),
        ),
        ({"charging": True}, ("started charging",)),
        ({"battery_percent": None}, ("battery disappeared",)),
        (
            {"battery_percent": 10.0, "cpu_temp_c": 70.0},
            (
                "battery 38% → 10% (±10% or more)",
                "temperature 51 °C → 70 °C (±10 °C or more)",
            ),
        ),
    ],
)
def test_changes_against_thresholds(changes: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert significant_changes(BASE, BASE.replace(**changes)) == expected


def test_thresholds_are_configurable() -> None:
    # 38 → 33 is 5 points: significant only with a 5-point threshold
    after = BASE.replace(battery_percent=33.0)
    assert significant_changes(BASE, after) == ()
    assert significant_changes(BASE, after, ChangeThresholds(battery_points=5.0)) != ()
