"""MobileResourceManager: sensor reads, per-device hysteresis, history, counters, status."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from mobile_factories import PHONE_CAPS, desktop, phone

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile
from fogmesh.errors import ConfigError, DeviceError, InvalidRequest
from fogmesh.mobile import MobileResourceManager, PowerMode, ResourcePolicy, Transport


class ScriptedSensors:
    """A sensor source that returns the given readings in order and counts the reads."""

    def __init__(self, *readings: DeviceProfile | Exception) -> None:
        self.readings = list(readings)
        self.reads = 0

    def capabilities(self) -> DeviceCapabilities:
        return PHONE_CAPS

    def read(self) -> DeviceProfile:
        self.reads += 1
        item = self.readings.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


async def test_reads_the_sensor_source_when_no_profile_is_given() -> None:
    sensors = ScriptedSensors(phone(battery_percent=8.0))
    manager = MobileResourceManager(sensors=sensors)
    opt = await manager.optimize_for_device()
    assert opt.power_mode is PowerMode.CRITICAL
    assert sensors.reads == 1
    status = manager.get_status()
    assert (status["sensor_reads"], status["evaluations"]) == (1, 1)
    assert status["mode_counts"]["critical"] == 1


async def test_an_explicit_profile_skips_the_sensors() -> None:
    sensors = ScriptedSensors()
    manager = MobileResourceManager(sensors=sensors)
    await manager.optimize_for_device(desktop())
    assert sensors.reads == 0
    assert manager.get_status()["evaluations"] == 1


async def test_hysteresis_carries_across_calls_and_mode_changes_are_counted() -> None:
    readings = [phone(battery_percent=r) for r in (20.0, 21.0, 22.0, 22.1, 21.0)]
    manager = MobileResourceManager(sensors=ScriptedSensors(*readings))
    modes = [(await manager.optimize_for_device()).power_mode.value for _ in readings]
    # 20 enters low; 21 and 22 are held (≤ 20 + 2); 22.1 leaves; 21 stays conservative (> 20)
    assert modes == ["power_save", "power_save", "power_save", "balanced", "balanced"]
    status = manager.get_status()
    assert status["mode_changes"] == 1
    # transport: bitchat_preferred while low, balanced once conservative
    assert status["transport_changes"] == 1


async def test_hysteresis_is_per_device() -> None:
    manager = MobileResourceManager()
    await manager.optimize_for_device(phone(device_id="a", battery_percent=20.0))
    other = await manager.optimize_for_device(phone(device_id="b", battery_percent=21.0))
    assert other.power_mode is PowerMode.BALANCED  # b never was in the low band
    held = await manager.optimize_for_device(phone(device_id="a", battery_percent=21.0))
    assert held.power_mode is PowerMode.POWER_SAVE
    assert manager.get_status()["tracked_devices"] == 2


async def test_history_is_bounded_oldest_first() -> None:
    manager = MobileResourceManager(history_size=3)
    for pct in (90.0, 70.0, 50.0, 30.0, 10.0):
        await manager.optimize_for_device(phone(battery_percent=pct))
    assert [o.power_mode.value for o in manager.history] == ["performance", "balanced", "critical"]
    status = manager.get_status()
    assert (status["history_size"], status["history_limit"], status["evaluations"]) == (3, 3, 5)


async def test_routing_decision_needs_an_optimisation_first() -> None:
    manager = MobileResourceManager()
    with pytest.raises(InvalidRequest):
        manager.get_transport_routing_decision(100, 3)
    await manager.optimize_for_device(phone(battery_percent=5.0))
    decision = manager.get_transport_routing_decision(100, 3)
    assert (decision.primary, decision.fallback) == (Transport.BITCHAT, Transport.BETANET)
    with pytest.raises(InvalidRequest):
        manager.get_transport_routing_decision(100, 3, device_id="unknown")
    by_id = manager.get_transport_routing_decision(100_000, 3, device_id="phone-1")
    assert by_id.primary is Transport.BITCHAT
    status = manager.get_status()
    assert status["routing_decisions"] == 2
    assert status["routing_counts"] == {"bitchat": 2, "betanet": 0}


async def test_sensor_errors_are_counted_and_raised() -> None:
    manager = MobileResourceManager(sensors=ScriptedSensors(DeviceError("no /sys")))
    with pytest.raises(DeviceError):
        await manager.optimize_for_device()
    status = manager.get_status()
    assert (status["sensor_errors"], status["evaluations"]) == (1, 0)


async def test_create_device_profile_from_env_uses_the_source() -> None:
    sensors = ScriptedSensors(phone(battery_percent=42.0))
    manager = MobileResourceManager(sensors=sensors)
    profile = await manager.create_device_profile_from_env()
    assert profile.battery_percent == 42.0
    assert manager.get_status()["sensor_reads"] == 1


async def test_create_device_profile_from_a_named_preset() -> None:
    manager = MobileResourceManager(sensors=ScriptedSensors())
    profile = await manager.create_device_profile_from_env("phone-critical-battery")
    opt = await manager.optimize_for_device(profile)
    assert opt.power_mode is PowerMode.CRITICAL


async def test_status_is_json_able() -> None:
    manager = MobileResourceManager(policy=ResourcePolicy(battery_critical=5))
    assert json.loads(json.dumps(manager.get_status()))["last"] is None
    await manager.optimize_for_device(phone(battery_percent=7.0))
    status = json.loads(json.dumps(manager.get_status()))
    assert status["policy"]["battery_critical"] == 5.0
    assert status["last"]["power_mode"] == "power_save"  # 7 % > critical 5 % → low band


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"history_size": 0}, "history_size"), ({"policy": {"battery_critical": 5}}, "policy")],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MobileResourceManager(**kwargs)
    assert caught.value.field == field


SEED_MOBILE = """
from fogmesh import MobileResourceManager
resource_manager = MobileResourceManager()
optimization = await resource_manager.optimize_for_device()
print(f"Power mode: {optimization.power_mode.value}")
print(f"Transport preference: {optimization.transport_preference.value}")
print(f"Chunk size: {optimization.chunking_config.effective_chunk_size()}")
print(f"CPU limit: {optimization.cpu_limit_percent}%")
"""

SEED_POLICY = """
from fogmesh import ResourcePolicy, MobileResourceManager
custom_policy = ResourcePolicy(battery_critical=5, thermal_hot=50.0, memory_low_gb=1.5)
resource_manager = MobileResourceManager(policy=custom_policy)
"""


async def run_seed(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    compiled = compile(code, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if result is not None:
        await result
    return namespace


async def test_seed_example_with_an_emulated_phone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOGMESH_PROFILE", "phone-critical-battery")
    await run_seed(SEED_MOBILE)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Power mode: critical",
        "Transport preference: bitchat_only",
        "Chunk size: 64",
        "CPU limit: 20.0%",
    ]


async def test_seed_example_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    await run_seed(SEED_MOBILE)
    out = capsys.readouterr().out
    assert "Power mode: " in out and "CPU limit: " in out


async def test_seed_custom_policy_example() -> None:
    namespace = await run_seed(SEED_POLICY)
    assert namespace["resource_manager"].policy.battery_critical == 5.0
