"""Properties that must hold for every reading, not just the edges in the tables."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from mobile_factories import DESKTOP_CAPS, LAPTOP_CAPS, PHONE_CAPS, PI_CAPS

from fogmesh.devices.model import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
)
from fogmesh.fog.tasks import TaskPriority
from fogmesh.mobile import ResourcePolicy, TransportPreference, evaluate

P = ResourcePolicy()
CAPS = {
    DeviceType.SMARTPHONE: PHONE_CAPS,
    DeviceType.TABLET: DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=4096, has_battery=True),
    DeviceType.LAPTOP: LAPTOP_CAPS,
    DeviceType.DESKTOP: DESKTOP_CAPS,
    DeviceType.RASPBERRY_PI: PI_CAPS,
}

percent = st.floats(min_value=0, max_value=100, allow_nan=False)
celsius = st.floats(min_value=-10, max_value=110, allow_nan=False)
platform = (
    st.none()
    | st.builds(PlatformThermal, st.just("android"), st.integers(0, 6))
    | st.builds(PlatformThermal, st.just("ios"), st.integers(0, 3))
)


@st.composite
def profiles(draw: st.DrawFn, device_type: DeviceType | None = None) -> DeviceProfile:
    kind = device_type or draw(st.sampled_from(list(DeviceType)))
    return DeviceProfile(
        device_id="dev",
        device_type=kind,
        capabilities=CAPS[kind],
        battery_percent=draw(st.none() | percent),
        charging=draw(st.none() | st.booleans()),
        low_power_mode=draw(st.none() | st.booleans()),
        cpu_temp_c=draw(st.none() | celsius),
        platform_thermal=draw(platform),
        ram_available_mb=draw(st.none() | st.integers(0, 65536)),
        network_type=draw(st.none() | st.sampled_from(list(NetworkType))),
        metered=draw(st.none() | st.booleans()),
        latency_ms=draw(st.none() | st.floats(0, 5000, allow_nan=False)),
        mesh_neighbours=draw(st.none() | st.integers(0, 20)),
    )


@given(profiles(), percent, percent)
def test_cpu_limit_never_rises_as_battery_falls(base: DeviceProfile, a: float, b: float) -> None:
    high, low = max(a, b), min(a, b)
    at_high = evaluate(base.replace(battery_percent=high), P)
    at_low = evaluate(base.replace(battery_percent=low), P)
    assert at_low.cpu_limit_percent <= at_high.cpu_limit_percent
    assert at_low.power_mode.severity >= at_high.power_mode.severity
    assert at_low.max_concurrent_tasks <= at_high.max_concurrent_tasks


@given(profiles(), celsius, celsius)
def test_cpu_limit_never_rises_as_temperature_rises(
    base: DeviceProfile, a: float, b: float
) -> None:
    base = base.replace(platform_thermal=None)
    cool = evaluate(base.replace(cpu_temp_c=min(a, b)), P)
    hot = evaluate(base.replace(cpu_temp_c=max(a, b)), P)
    assert hot.cpu_limit_percent <= cool.cpu_limit_percent
    assert hot.power_mode.severity >= cool.power_mode.severity


@given(profiles(), st.integers(0, 4))
def test_cpu_limit_never_rises_as_platform_status_worsens(base: DeviceProfile, step: int) -> None:
    # android statuses 0..6 are monotone in severity; compare status s with s + 2
    low = evaluate(base.replace(platform_thermal=PlatformThermal("android", step)), P)
    high = evaluate(base.replace(platform_thermal=PlatformThermal("android", step + 2)), P)
    assert high.cpu_limit_percent <= low.cpu_limit_percent


@given(profiles())
def test_limits_stay_in_range(profile: DeviceProfile) -> None:
    opt = evaluate(profile, P)
    assert 0 < opt.cpu_limit_percent <= 100
    assert opt.memory_limit_mb is None or opt.memory_limit_mb >= 1
    assert 0 <= opt.max_concurrent_tasks <= P.max_tasks_performance
    assert 64 <= opt.chunking_config.effective_chunk_size() <= 2048
    json.dumps(opt.to_dict())


@given(profiles(device_type=DeviceType.SMARTPHONE))
def test_phone_chunks_stay_within_64_to_512(profile: DeviceProfile) -> None:
    assert 64 <= evaluate(profile, P).chunking_config.effective_chunk_size() <= 512


@given(profiles(), st.floats(0, 10, allow_nan=False))
def test_critical_battery_means_bitchat_only(base: DeviceProfile, pct: float) -> None:
    profile = base.replace(
        battery_percent=pct,
        charging=False,
        capabilities=CAPS[DeviceType.SMARTPHONE],
        device_type=DeviceType.SMARTPHONE,
    )
    assert evaluate(profile, P).transport_preference is TransportPreference.BITCHAT_ONLY


@given(
    profiles(),
    st.integers(0, 10_000_000),
    st.sampled_from(list(TaskPriority)) | st.integers(1, 10),
)
def test_fallback_never_equals_primary(profile: DeviceProfile, size: int, priority: int) -> None:
    decision = evaluate(profile, P).get_transport_routing_decision(size, priority)
    assert decision.fallback is not decision.primary
    if decision.fallback is None:
        # only when the other link does not exist right now
        no_internet = profile.network_type is NetworkType.NONE
        no_mesh = profile.mesh_neighbours == 0
        assert no_internet or no_mesh


@settings(max_examples=50)
@given(profiles())
def test_previous_from_another_device_is_ignored(profile: DeviceProfile) -> None:
    other = evaluate(profile.replace(device_id="other", battery_percent=1.0, cpu_temp_c=90.0), P)
    assert evaluate(profile, P, previous=other) == evaluate(profile, P)
