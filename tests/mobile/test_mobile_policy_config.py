"""ResourcePolicy validation: bad values raise ConfigError naming the field and the rule."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fogmesh.errors import ConfigError
from fogmesh.mobile import ChunkingConfig, ResourcePolicy


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        # orderings: the field the caller changed is the one blamed
        ({"battery_critical": 25}, "battery_critical", "battery_critical < battery_low"),
        ({"battery_low": 5}, "battery_low", "must be > battery_critical (10)"),
        ({"battery_conservative": 15}, "battery_conservative", "must be > battery_low (20)"),
        ({"battery_critical": 20}, "battery_critical", "must be < battery_low (20)"),
        ({"thermal_warm": 60.0}, "thermal_warm", "thermal_warm < thermal_hot < thermal_critical"),
        ({"thermal_hot": 70.0}, "thermal_hot", "must be < thermal_critical (65)"),
        ({"memory_critical_gb": 2.0}, "memory_critical_gb", "memory_critical_gb < memory_low_gb"),
        (
            {"cpu_limit_critical_battery": 50},
            "cpu_limit_critical_battery",
            "cpu_limit_critical_battery ≤ cpu_limit_low_battery",
        ),
        ({"cpu_limit_hot": 10}, "cpu_limit_hot", "cpu_limit_critical_thermal ≤ cpu_limit_hot"),
        ({"max_tasks_critical": 2}, "max_tasks_critical", "max_tasks_critical ≤"),
        ({"chunk_max_mobile_bytes": 4096}, "chunk_max_mobile_bytes", "≤ chunk_max_bytes"),
        ({"chunk_base_desktop": 4096}, "chunk_base_desktop", "≤ chunk_max_bytes"),
        ({"chunk_base_smartphone": 1024}, "chunk_base_smartphone", "≤ chunk_max_mobile_bytes"),
        ({"platform_hot_level": 1}, "platform_hot_level", "platform_warm_level <"),
        ({"latency_hysteresis_ms": 400.0}, "latency_hysteresis_ms", "< high_latency_ms"),
        # ranges
        ({"battery_critical": -1}, "battery_critical", "[0, 100]"),
        ({"battery_conservative": 101}, "battery_conservative", "[0, 100]"),
        ({"cpu_limit_hot": 150}, "cpu_limit_hot", "(0, 100]"),
        ({"cpu_limit_warm": 0}, "cpu_limit_warm", "(0, 100]"),
        ({"battery_hysteresis_pct": 11}, "battery_hysteresis_pct", "[0, 10]"),
        ({"urgent_priority": 11}, "urgent_priority", "[1, 10]"),
        ({"chunk_pressure_divisor": 0.5}, "chunk_pressure_divisor", "[1, 16]"),
        ({"memory_low_fraction": 0}, "memory_low_fraction", "(0, 1]"),
        # types
        ({"battery_critical": "10"}, "battery_critical", "must be a number"),
        ({"battery_critical": True}, "battery_critical", "must be a number"),
        ({"battery_critical": None}, "battery_critical", "must be a number"),
        ({"thermal_hot": math.nan}, "thermal_hot", "finite"),
        ({"max_tasks_balanced": 2.5}, "max_tasks_balanced", "integer"),
        ({"memory_limit_critical_mb": 256.0}, "memory_limit_critical_mb", "integer"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ResourcePolicy(**changes)
    assert caught.value.field == field
    assert caught.value.reason.startswith(f"{field}: ")
    assert says in caught.value.reason


def test_seed_keywords_work() -> None:
    policy = ResourcePolicy(battery_critical=5, thermal_hot=50.0, memory_low_gb=1.5)
    assert (policy.battery_critical, policy.thermal_hot, policy.memory_low_gb) == (5.0, 50.0, 1.5)
    assert isinstance(policy.battery_critical, float)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        ResourcePolicy.from_dict({"battery_crit": 5})
    assert caught.value.field == "battery_crit"


def test_to_dict_round_trips() -> None:
    policy = ResourcePolicy(battery_critical=5, thermal_hot=50.0)
    assert ResourcePolicy.from_dict(policy.to_dict()) == policy
    assert "_tables" not in policy.to_dict()


def test_policy_is_immutable() -> None:
    policy = ResourcePolicy()
    with pytest.raises(AttributeError):
        policy.battery_critical = 1  # type: ignore[misc]


@given(st.floats(0, 100), st.floats(0, 100), st.floats(0, 100))
def test_battery_ordering_is_enforced(critical: float, low: float, conservative: float) -> None:
    ordered = critical < low < conservative
    try:
        ResourcePolicy(
            battery_critical=critical, battery_low=low, battery_conservative=conservative
        )
    except ConfigError as exc:
        assert not ordered
        assert exc.field in {"battery_critical", "battery_low", "battery_conservative"}
    else:
        assert ordered


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_chunk_size": 4096}, "min_chunk_size"),
        ({"base_chunk_size": 0}, "base_chunk_size"),
        ({"battery_pressure": 4}, "battery_pressure"),
        ({"memory_pressure": -1}, "memory_pressure"),
        ({"pressure_divisor": 0.5}, "pressure_divisor"),
    ],
)
def test_bad_chunking_config(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ChunkingConfig(**kwargs)
    assert caught.value.field == field
