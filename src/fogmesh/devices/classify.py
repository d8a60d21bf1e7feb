"""Which class of device is this? The seed's rules, with every case it leaves open resolved.

Pure: capabilities in, a ``Classification`` (type, rule code, human reason) out. The full
resolution table lives in docs/devices.md; tests/devices/test_classify.py has one case per row.

"GB" in the rules is GiB: ``ram_total_mb`` holds MiB, so 3 GB is 3072 MB. Kernels report a little
less than the marketed size (a "4 GB" phone shows ~3.7 GB), which keeps marketed sizes on the
side of the boundary a buyer would expect.
"""

from __future__ import annotations

from dataclasses import dataclass

from fogmesh.devices.model import DeviceCapabilities, DeviceType
from fogmesh.errors import ConfigError

__all__ = [
    "Classification",
    "classify",
    "parse_device_type",
]

SMARTPHONE_MAX_RAM_MB = 3 * 1024
TABLET_MAX_RAM_MB = 6 * 1024
PI_MAX_RAM_MB = 2 * 1024
PI_MAX_CORES = 2


@dataclass(frozen=True, slots=True)
class Classification:
    device_type: DeviceType
    rule: str  # machine-readable row of the resolution table, e.g. "battery_ram_le_3gb"
    reason: str  # human text, e.g. "battery-powered, RAM 2816 MB ≤ 3072 MB"


def parse_device_type(value: DeviceType | str, *, field: str = "device_type") -> DeviceType:
    """A ``DeviceType`` from its value, accepting any case and ``-`` for ``_``."""
    if isinstance(value, DeviceType):
        return value
    key = value.strip().lower().replace("-", "_")
    try:
        return DeviceType(key)
    except ValueError:
        known = ", ".join(t.value for t in DeviceType)
        raise ConfigError(f"unknown device type {value!r} (known: {known})", field=field) from None


def _is_raspberry_pi(board_model: str | None) -> bool:
    return board_model is not None and "raspberry pi" in board_model.lower()


def _ram(ram_mb: int | None) -> str:
    return "RAM unknown" if ram_mb is None else f"RAM {ram_mb} MB"


def _by_ram_on_battery(ram: int | None, prefix: str, why: str) -> Classification:
    if ram is None:
        # The fragile guess protects a battery: calling a laptop a phone costs some idle
        # capacity, calling a phone a laptop drains it.
        return Classification(
            DeviceType.SMARTPHONE,
            f"{prefix}_ram_unknown",
            f"{why}, RAM unknown: most fragile class",
        )
    if ram <= SMARTPHONE_MAX_RAM_MB:
        return Classification(
            DeviceType.SMARTPHONE,
            f"{prefix}_ram_le_3gb",
            f"{why}, RAM {ram} MB ≤ {SMARTPHONE_MAX_RAM_MB} MB",
        )
    if ram <= TABLET_MAX_RAM_MB:
        return Classification(
            DeviceType.TABLET,
            f"{prefix}_ram_le_6gb",
            f"{why}, {SMARTPHONE_MAX_RAM_MB} MB < RAM {ram} MB ≤ {TABLET_MAX_RAM_MB} MB",
        )
    return Classification(
        DeviceType.LAPTOP, f"{prefix}_ram_gt_6gb", f"{why}, RAM {ram} MB > {TABLET_MAX_RAM_MB} MB"
    )


def _seed_pi_rule(caps: DeviceCapabilities) -> bool:
    cores, ram = caps.cpu_cores_logical, caps.ram_total_mb
    return cores is not None and ram is not None and cores <= PI_MAX_CORES and ram <= PI_MAX_RAM_MB


def classify(
    caps: DeviceCapabilities, *, override: DeviceType | str | None = None
) -> Classification:
    """Classify ``caps``; an explicit ``override`` always wins.

    Battery-powered means *has* a battery (a laptop on its charger is still a laptop).
    """
    if override is not None:
        kind = parse_device_type(override)
        return Classification(kind, "override", f"set explicitly to {kind.value}")
    if _is_raspberry_pi(caps.board_model):
        return Classification(
            DeviceType.RASPBERRY_PI,
            "board_model",
            f"device-tree model {caps.board_model!r} is a Raspberry Pi",
        )
    ram = caps.ram_total_mb
    cores_text = (
        "cores unknown" if caps.cpu_cores_logical is None else (f"{caps.cpu_cores_logical} cores")
    )
    if caps.has_battery is True:
        # Boards rarely carry batteries and small old phones do, so a battery beats the seed's
        # "≤ 2 cores and ≤ 2 GB is a Pi" rule.
        return _by_ram_on_battery(ram, "battery", "battery-powered")
    if caps.has_battery is False:
        if ram is None:
            return Classification(
                DeviceType.DESKTOP,
                "mains_ram_unknown",
                "mains-powered, RAM unknown: nothing to drain, so desktop",
            )
        if ram <= PI_MAX_RAM_MB:
            # The seed's Pi rule also asks ≤ 2 cores; a mains box this small is a single-board
            # computer whatever its core count (a 4-core 1 GB board is no desktop).
            return Classification(
                DeviceType.RASPBERRY_PI,
                "mains_ram_le_2gb",
                f"mains-powered, RAM {ram} MB ≤ {PI_MAX_RAM_MB} MB ({cores_text}): small board",
            )
        if ram <= TABLET_MAX_RAM_MB:
            return Classification(
                DeviceType.DESKTOP,
                "mains_ram_le_6gb",
                f"mains-powered, RAM {ram} MB ≤ {TABLET_MAX_RAM_MB} MB but no battery: desktop",
            )
        return Classification(
            DeviceType.DESKTOP,
            "mains_ram_gt_6gb",
            f"mains-powered, RAM {ram} MB > {TABLET_MAX_RAM_MB} MB",
        )
    # Battery unknown (sysfs hidden, as under Android's SELinux, or a platform psutil can't read).
    if _seed_pi_rule(caps):
        return Classification(
            DeviceType.RASPBERRY_PI,
            "unknown_power_seed_pi",
            f"battery unknown, {cores_text} ≤ {PI_MAX_CORES} and {_ram(ram)} ≤ {PI_MAX_RAM_MB} MB",
        )
    return _by_ram_on_battery(ram, "unknown_power", "battery unknown, assumed battery-powered")
