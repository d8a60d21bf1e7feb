"""What a device is (capabilities, static) and how it is right now (profile, live).

Every reading may be absent and is then ``None`` — never a made-up default. A battery at 0 % is
``battery_percent=0.0``; "no battery" is ``capabilities.has_battery is False``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal

__all__ = [
    "MAX_ACCEPTED_MODULES",
    "Accepts",
    "DeviceCapabilities",
    "DeviceProfile",
    "DeviceType",
    "NetworkType",
    "PlatformThermal",
    "ThermalLevel",
]


class DeviceType(StrEnum):
    SMARTPHONE = "smartphone"
    TABLET = "tablet"
    LAPTOP = "laptop"
    DESKTOP = "desktop"
    RASPBERRY_PI = "raspberry_pi"


class NetworkType(StrEnum):
    WIFI = "wifi"
    ETHERNET = "ethernet"
    CELLULAR = "cellular"
    NONE = "none"


class ThermalLevel(IntEnum):
    """A platform's own thermal verdict, normalised to one ladder.

    Android ``PowerManager.THERMAL_STATUS_*`` 0–6 and iOS ``ProcessInfo.ThermalState`` 0–3 map
    onto it (see ``PlatformThermal.level``).
    """

    NOMINAL = 0  # android NONE(0) / ios nominal(0)
    LIGHT = 1  # android LIGHT(1) / ios fair(1)
    MODERATE = 2  # android MODERATE(2)
    SEVERE = 3  # android SEVERE(3) / ios serious(2)
    CRITICAL = 4  # android CRITICAL(4), EMERGENCY(5), SHUTDOWN(6) / ios critical(3)


_ANDROID_LEVELS = (
    ThermalLevel.NOMINAL,
    ThermalLevel.LIGHT,
    ThermalLevel.MODERATE,
    ThermalLevel.SEVERE,
    ThermalLevel.CRITICAL,
    ThermalLevel.CRITICAL,
    ThermalLevel.CRITICAL,
)
_IOS_LEVELS = (
    ThermalLevel.NOMINAL,
    ThermalLevel.LIGHT,
    ThermalLevel.SEVERE,
    ThermalLevel.CRITICAL,
)


@dataclass(frozen=True, slots=True)
class PlatformThermal:
    """The raw thermal status a mobile OS reports."""

    platform: Literal["android", "ios"]
    status: int

    def __post_init__(self) -> None:
        top = 6 if self.platform == "android" else 3
        if self.platform not in ("android", "ios"):
            raise ValueError(f"platform must be 'android' or 'ios', not {self.platform!r}")
        if not 0 <= self.status <= top:
            raise ValueError(f"{self.platform} thermal status must be 0–{top}, not {self.status}")

    @property
    def level(self) -> ThermalLevel:
        table = _ANDROID_LEVELS if self.platform == "android" else _IOS_LEVELS
        return table[self.status]


@dataclass(frozen=True, slots=True)
class DeviceCapabilities:
    """What the hardware is; changes rarely (re-detected at start and on request)."""

    cpu_cores_logical: int | None = None
    cpu_cores_physical: int | None = None
    cpu_freq_mhz: float | None = None
    cpu_model: str | None = None
    ram_total_mb: int | None = None
    storage_total_gb: float | None = None
    storage_free_gb: float | None = None
    has_gpu: bool | None = None
    gpu_name: str | None = None
    gpu_memory_mb: int | None = None
    has_battery: bool | None = None
    os: str | None = None
    os_release: str | None = None
    arch: str | None = None
    board_model: str | None = None  # e.g. /proc/device-tree/model ("Raspberry Pi 4 Model B ...")
    supported_transports: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # Every field is a scalar or a tuple of str: a shallow copy is exact, and far cheaper
        # than dataclasses.asdict's deep copy (this runs for every heartbeat).
        d = {name: getattr(self, name) for name in _field_names(DeviceCapabilities)}
        d["supported_transports"] = list(self.supported_transports)
        return d


MAX_ACCEPTED_MODULES = 256  # prefixes an agent may advertise (a profile is not a module index)


@dataclass(frozen=True, slots=True)
class Accepts:
    """Which task payloads the agent on this device runs: its owner's choice, not its hardware.

    Agents advertise it in every profile they send (wire: the profile's ``accepts`` key); the
    scheduler places a task only where its payload is accepted (``PayloadFilter``). ``None`` in
    a profile means the agent did not say (an older agent): the scheduler then assumes it takes
    anything and relies on the agent's refusal.
    """

    python_modules: tuple[str, ...] = ()  # allowed module prefixes: "pkg" allows "pkg.sub" too
    commands: bool = False  # runs ``command`` payloads (argv)
    models: bool = False  # runs ``model`` payloads (an ONNX runtime and a model cache)

    def allows_module(self, module: str) -> bool:
        for prefix in self.python_modules:  # (a loop: the scheduler asks this per candidate)
            if module == prefix or module.startswith(prefix + "."):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "python_modules": list(self.python_modules),
            "commands": self.commands,
            "models": self.models,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Accepts:
        """From ``to_dict``'s form; unknown keys are ignored (a newer agent may say more).
        ``TypeError``/``ValueError`` for a malformed value."""
        if not isinstance(data, dict):
            raise TypeError("accepts must be a map")
        modules = data.get("python_modules", ())
        if not isinstance(modules, (list, tuple)):
            raise TypeError("accepts.python_modules must be a list of module names")
        commands, models = data.get("commands", False), data.get("models", False)
        if not isinstance(commands, bool) or not isinstance(models, bool):
            raise TypeError("accepts.commands and accepts.models must be booleans")
        # Agents send the same value with every heartbeat: checked once, then shared.
        try:
            return _accepts(tuple(modules), commands, models)
        except TypeError:  # an unhashable item
            raise TypeError("accepts.python_modules must be a list of module names") from None


@functools.lru_cache(maxsize=1024)
def _accepts(modules: tuple[str, ...], commands: bool, models: bool) -> Accepts:
    if not all(isinstance(m, str) and m for m in modules):
        raise TypeError("accepts.python_modules must be a list of module names")
    if len(modules) > MAX_ACCEPTED_MODULES:
        raise ValueError(f"accepts.python_modules lists more than {MAX_ACCEPTED_MODULES}")
    return Accepts(modules, commands, models)


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One device at one moment: its identity, class, capabilities and live readings."""

    device_id: str
    device_type: DeviceType
    capabilities: DeviceCapabilities = field(default_factory=DeviceCapabilities)
    timestamp: float | None = None  # epoch seconds of the reading

    # power
    battery_percent: float | None = None
    charging: bool | None = None  # plugged in (AC/USB) while a battery is present
    low_power_mode: bool | None = None  # iOS Low Power Mode / Android battery saver

    # thermal
    cpu_temp_c: float | None = None
    platform_thermal: PlatformThermal | None = None

    # load
    cpu_percent: float | None = None
    ram_used_mb: int | None = None
    ram_available_mb: int | None = None

    # network
    network_type: NetworkType | None = None
    metered: bool | None = None
    latency_ms: float | None = None
    mesh_neighbours: int | None = None  # peers reachable over the low-power mesh

    # user
    foreground: bool | None = None  # True while the owner is actively using the device

    # agent: which payloads it runs (None: not said)
    accepts: Accepts | None = None

    @property
    def on_mains(self) -> bool:
        """Powered from the wall: no battery, or a battery that is charging."""
        return self.capabilities.has_battery is False or self.charging is True

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {name: getattr(self, name) for name in _field_names(DeviceProfile)}
        d["device_type"] = self.device_type.value
        d["capabilities"] = self.capabilities.to_dict()
        d["network_type"] = self.network_type.value if self.network_type else None
        d["platform_thermal"] = (
            {"platform": self.platform_thermal.platform, "status": self.platform_thermal.status}
            if self.platform_thermal
            else None
        )
        d["accepts"] = self.accepts.to_dict() if self.accepts is not None else None
        return d

    def replace(self, **changes: Any) -> DeviceProfile:
        return dataclasses.replace(self, **changes)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))
