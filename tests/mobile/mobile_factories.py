"""Profiles built directly (no presets): each test states the readings it depends on."""

from __future__ import annotations

from typing import Any

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType, NetworkType
from fogmesh.mobile import ResourceOptimization

PHONE_CAPS = DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=3072, has_battery=True)
LAPTOP_CAPS = DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=16384, has_battery=True)
DESKTOP_CAPS = DeviceCapabilities(cpu_cores_logical=16, ram_total_mb=32768, has_battery=False)
PI_CAPS = DeviceCapabilities(cpu_cores_logical=4, ram_total_mb=2048, has_battery=False)


def phone(**changes: Any) -> DeviceProfile:
    """A cool phone at 80 % on unmetered wifi with a mesh neighbour and 2 GB free: no pressure."""
    base = DeviceProfile(
        device_id="phone-1",
        device_type=DeviceType.SMARTPHONE,
        capabilities=PHONE_CAPS,
        battery_percent=80.0,
        charging=False,
        low_power_mode=False,
        cpu_temp_c=35.0,
        ram_available_mb=2048,
        network_type=NetworkType.WIFI,
        metered=False,
        latency_ms=40.0,
        mesh_neighbours=2,
    )
    return base.replace(**changes)


def laptop(**changes: Any) -> DeviceProfile:
    return phone(
        device_id="laptop-1",
        device_type=DeviceType.LAPTOP,
        capabilities=LAPTOP_CAPS,
        ram_available_mb=8192,
    ).replace(**changes)


def desktop(**changes: Any) -> DeviceProfile:
    return phone(
        device_id="desktop-1",
        device_type=DeviceType.DESKTOP,
        capabilities=DESKTOP_CAPS,
        battery_percent=None,
        charging=None,
        ram_available_mb=16384,
        network_type=NetworkType.ETHERNET,
    ).replace(**changes)


def power_codes(opt: ResourceOptimization) -> tuple[str, ...]:
    """Reason codes of power/limit rules (transport and chunk-cap reasons are tested apart)."""
    return tuple(
        c for c in opt.reason_codes if not c.startswith("transport_") and c != "chunk_mobile_cap"
    )
