"""Chunk size: base per device class ÷ 2 per pressure level, clamped to [64, class ceiling].

Bases: phone 512, tablet 512, Pi 1024, laptop 2048, desktop 2048; ceilings 512 for phones and
tablets, 2048 otherwise. Pressure levels: battery band after charging (0–3, low power mode ≥ 2),
thermal band (0–3), memory band (0–2).
"""

from __future__ import annotations

import pytest
from mobile_factories import PI_CAPS, desktop, laptop, phone

from fogmesh.devices.model import DeviceProfile, DeviceType, PlatformThermal
from fogmesh.mobile import ChunkingConfig, ResourcePolicy, evaluate

P = ResourcePolicy()


@pytest.mark.parametrize(
    ("profile", "size"),
    [
        # top of the seed range: cool desktop on mains, plenty of RAM → 2048 ÷ 2⁰
        (desktop(), 2048),
        # bottom: phone, critical battery (3) + critical heat (3) → 512 ÷ 2⁶ = 8 → clamped 64
        (phone(battery_percent=5.0, cpu_temp_c=70.0), 64),
        (phone(), 512),
        (phone(device_type=DeviceType.TABLET), 512),
        (phone(battery_percent=30.0), 256),  # 512 ÷ 2¹
        (phone(battery_percent=15.0, charging=True), 256),  # low, charging → conservative: ÷ 2¹
        (phone(low_power_mode=True), 128),  # low power mode counts as low battery: ÷ 2²
        (phone(battery_percent=15.0), 128),  # 512 ÷ 2²
        (phone(battery_percent=8.0), 64),  # 512 ÷ 2³
        (laptop(battery_percent=30.0), 1024),  # 2048 ÷ 2¹
        (laptop(battery_percent=15.0), 512),
        (laptop(battery_percent=8.0), 256),
        (desktop(cpu_temp_c=46.0), 1024),  # warm ÷ 2¹
        (desktop(cpu_temp_c=56.0), 512),  # hot ÷ 2²
        (desktop(platform_thermal=PlatformThermal("android", 4)), 256),  # critical ÷ 2³
        (desktop(ram_available_mb=1000), 1024),  # memory low ÷ 2¹
        (desktop(ram_available_mb=100), 512),  # memory critical ÷ 2²
        (desktop(cpu_temp_c=56.0, ram_available_mb=100), 128),  # ÷ 2⁴
        (
            desktop(device_type=DeviceType.RASPBERRY_PI, capabilities=PI_CAPS),
            1024,
        ),
    ],
)
def test_chunk_sizes(profile: DeviceProfile, size: int) -> None:
    assert evaluate(profile, P).chunking_config.effective_chunk_size() == size


def test_phones_say_why_they_are_capped() -> None:
    assert "chunk_mobile_cap" in evaluate(phone(), P).reason_codes
    assert "chunk_mobile_cap" not in evaluate(desktop(), P).reason_codes


def test_divisor_of_one_keeps_the_base() -> None:
    flat = ResourcePolicy(chunk_pressure_divisor=1.0)
    assert (
        evaluate(
            phone(battery_percent=5.0, cpu_temp_c=70.0), flat
        ).chunking_config.effective_chunk_size()
        == 512
    )


def test_chunking_config_clamps() -> None:
    assert ChunkingConfig(base_chunk_size=8192).effective_chunk_size() == 2048
    assert ChunkingConfig(base_chunk_size=100, thermal_pressure=3).effective_chunk_size() == 64
    config = ChunkingConfig(base_chunk_size=1024, memory_pressure=1)
    assert config.to_dict()["effective_chunk_size"] == 512
