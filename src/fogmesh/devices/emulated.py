"""Emulated devices: named presets, JSON/TOML profile files, and a sensor source over them.

A profile file holds ``DeviceProfile`` fields at the top level and ``DeviceCapabilities`` fields
in a ``capabilities`` table. Optional keys:

``base``   a preset name; the file's fields override it (``capabilities`` field by field).
``unset``  a list of field names to make absent (``None``) — TOML has no null.

```toml
base = "phone-hot"
battery_percent = 12.5
unset = ["platform_thermal"]

[capabilities]
ram_total_mb = 2048
```

Without ``device_type`` the merged capabilities are classified (``classify``); without
``device_id`` the base's id (or ``emulated-<file stem>``) is used. Every problem is a
``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fogmesh.clock import Clock, WallClock
from fogmesh.devices.classify import Classification, classify
from fogmesh.devices.model import (
    Accepts,
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    NetworkType,
    PlatformThermal,
)
from fogmesh.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "EmulatedSensors",
    "dump_profile",
    "load_profile",
    "preset",
    "preset_names",
    "profile_from_mapping",
    "resolve_profile",
]

_PROFILE_FIELDS = frozenset(f.name for f in dataclasses.fields(DeviceProfile))
_CAPABILITY_FIELDS = frozenset(f.name for f in dataclasses.fields(DeviceCapabilities))
_FILE_KEYS = frozenset({"base", "unset"})


@functools.cache
def _adapter() -> TypeAdapter[DeviceProfile]:
    # pydantic only when a profile file or mapping is validated: presets and a device agent's
    # start-up do without it (pydantic is several megabytes of imports and schema).
    from pydantic import TypeAdapter

    return TypeAdapter(DeviceProfile)


# (low, high) inclusive; None leaves that side open. NaN fails every comparison, so it is caught.
_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "timestamp": (0, None),
    "battery_percent": (0, 100),
    "cpu_temp_c": (-40, 150),
    "cpu_percent": (0, 100),
    "ram_used_mb": (0, None),
    "ram_available_mb": (0, None),
    "latency_ms": (0, None),
    "mesh_neighbours": (0, None),
    "capabilities.cpu_cores_logical": (1, None),
    "capabilities.cpu_cores_physical": (1, None),
    "capabilities.cpu_freq_mhz": (1, None),
    "capabilities.ram_total_mb": (1, None),
    "capabilities.storage_total_gb": (0, None),
    "capabilities.storage_free_gb": (0, None),
    "capabilities.gpu_memory_mb": (0, None),
}

_PHONE_ANDROID = DeviceCapabilities(
    cpu_cores_logical=8,
    cpu_cores_physical=8,
    cpu_freq_mhz=2400.0,
    cpu_model="Qualcomm Snapdragon 680",
    ram_total_mb=2816,  # a "3 GB" phone as its kernel reports it
    storage_total_gb=51.2,
    storage_free_gb=18.4,
    has_gpu=True,
    gpu_name="Adreno 610",
    has_battery=True,
    os="android",
    os_release="13",
    arch="aarch64",
    supported_transports=("betanet", "bitchat"),
)
_PHONE_IOS = DeviceCapabilities(
    cpu_cores_logical=6,
    cpu_cores_physical=6,
    cpu_freq_mhz=2490.0,
    cpu_model="Apple A12 Bionic",
    ram_total_mb=2868,  # iPhone XR: 3 GB
    storage_total_gb=64.0,
    storage_free_gb=21.0,
    has_gpu=True,
    gpu_name="Apple GPU (4-core)",
    has_battery=True,
    os="ios",
    os_release="17.4",
    arch="arm64",
    supported_transports=("betanet", "bitchat"),
)
_TABLET = DeviceCapabilities(
    cpu_cores_logical=8,
    cpu_cores_physical=8,
    cpu_freq_mhz=2000.0,
    cpu_model="MediaTek Helio G99",
    ram_total_mb=3712,  # a "4 GB" tablet
    storage_total_gb=64.0,
    storage_free_gb=40.5,
    has_gpu=True,
    gpu_name="Mali-G57 MC2",
    has_battery=True,
    os="android",
    os_release="14",
    arch="aarch64",
    supported_transports=("betanet", "bitchat"),
)
_LAPTOP_16 = DeviceCapabilities(
    cpu_cores_logical=12,
    cpu_cores_physical=10,
    cpu_freq_mhz=4600.0,
    cpu_model="Intel(R) Core(TM) i5-1335U",
    ram_total_mb=15655,
    storage_total_gb=476.9,
    storage_free_gb=212.3,
    has_gpu=True,
    gpu_name="Intel (i915)",
    has_battery=True,
    os="linux",
    os_release="6.8.0",
    arch="x86_64",
    supported_transports=("betanet", "bitchat"),
)
_LAPTOP_8 = dataclasses.replace(
    _LAPTOP_16,
    cpu_cores_logical=8,
    cpu_cores_physical=4,
    cpu_model="Intel(R) Core(TM) i5-8250U",
    cpu_freq_mhz=3400.0,
    ram_total_mb=7826,
    storage_total_gb=238.5,
    storage_free_gb=61.0,
)
_PI = DeviceCapabilities(
    cpu_cores_logical=4,
    cpu_cores_physical=4,
    cpu_freq_mhz=1800.0,
    cpu_model="BCM2835",
    ram_total_mb=3796,  # 4 GB Pi 4: above the 2 GB rule, recognised by its board model
    storage_total_gb=29.7,
    storage_free_gb=22.1,
    has_gpu=True,
    gpu_name="Broadcom VideoCore VI (vc4-drm)",
    has_battery=False,
    os="linux",
    os_release="6.6.31+rpt-rpi-v8",
    arch="aarch64",
    board_model="Raspberry Pi 4 Model B Rev 1.4",
    supported_transports=("betanet", "bitchat"),
)
_DESKTOP = DeviceCapabilities(
    cpu_cores_logical=16,
    cpu_cores_physical=8,
    cpu_freq_mhz=4400.0,
    cpu_model="AMD Ryzen 7 5700X 8-Core Processor",
    ram_total_mb=31998,
    storage_total_gb=931.5,
    storage_free_gb=540.2,
    has_gpu=False,
    has_battery=False,
    os="linux",
    os_release="6.8.0",
    arch="x86_64",
    supported_transports=("betanet",),
)
_DESKTOP_GPU = dataclasses.replace(
    _DESKTOP,
    has_gpu=True,
    gpu_name="NVIDIA GeForce RTX 3060",
    gpu_memory_mb=12288,
)


def _phone(name: str, **live: Any) -> DeviceProfile:
    defaults: dict[str, Any] = {
        "charging": False,
        "low_power_mode": False,
        "cpu_temp_c": 34.0,
        "platform_thermal": PlatformThermal("android", 0),
        "cpu_percent": 14.0,
        "ram_used_mb": 1650,
        "ram_available_mb": 1166,
        "network_type": NetworkType.WIFI,
        "metered": False,
        "latency_ms": 38.0,
        "mesh_neighbours": 2,
        "foreground": False,
    }
    return DeviceProfile(
        device_id=name,
        device_type=DeviceType.SMARTPHONE,
        capabilities=_PHONE_ANDROID,
        **(defaults | live),
    )


def _build_presets() -> dict[str, DeviceProfile]:
    presets = [
        _phone(
            "phone-critical-battery",
            battery_percent=7.0,
            network_type=NetworkType.CELLULAR,
            metered=True,
            latency_ms=85.0,
        ),
        _phone("phone-low-battery", battery_percent=18.0),
        _phone(
            "phone-hot",
            battery_percent=64.0,
            cpu_temp_c=58.5,
            platform_thermal=PlatformThermal("android", 3),
            cpu_percent=71.0,
        ),
        _phone("phone-charging", battery_percent=45.0, charging=True, cpu_temp_c=36.5),
        DeviceProfile(
            device_id="phone-low-power-mode",
            device_type=DeviceType.SMARTPHONE,
            capabilities=_PHONE_IOS,
            battery_percent=35.0,
            charging=False,
            low_power_mode=True,
            cpu_temp_c=31.0,
            platform_thermal=PlatformThermal("ios", 0),
            cpu_percent=9.0,
            ram_used_mb=1700,
            ram_available_mb=1168,
            network_type=NetworkType.WIFI,
            metered=False,
            latency_ms=30.0,
            mesh_neighbours=1,
            foreground=False,
        ),
        DeviceProfile(
            device_id="tablet-charging",
            device_type=DeviceType.TABLET,
            capabilities=_TABLET,
            battery_percent=62.0,
            charging=True,
            low_power_mode=False,
            cpu_temp_c=35.0,
            platform_thermal=PlatformThermal("android", 0),
            cpu_percent=8.0,
            ram_used_mb=2300,
            ram_available_mb=1412,
            network_type=NetworkType.WIFI,
            metered=False,
            latency_ms=25.0,
            mesh_neighbours=3,
            foreground=False,
        ),
        DeviceProfile(
            device_id="laptop-on-cellular",
            device_type=DeviceType.LAPTOP,
            capabilities=_LAPTOP_16,
            battery_percent=55.0,
            charging=False,
            low_power_mode=False,
            cpu_temp_c=48.0,
            cpu_percent=22.0,
            ram_used_mb=7100,
            ram_available_mb=8555,
            network_type=NetworkType.CELLULAR,  # tethered through a phone
            metered=True,
            latency_ms=70.0,
            mesh_neighbours=1,
            foreground=True,
        ),
        DeviceProfile(
            device_id="laptop-on-battery",
            device_type=DeviceType.LAPTOP,
            capabilities=_LAPTOP_8,
            battery_percent=38.0,
            charging=False,
            low_power_mode=False,
            cpu_temp_c=51.0,
            cpu_percent=30.0,
            ram_used_mb=4900,
            ram_available_mb=2926,
            network_type=NetworkType.WIFI,
            metered=False,
            latency_ms=18.0,
            mesh_neighbours=0,
            foreground=True,
        ),
        DeviceProfile(
            device_id="raspberry-pi",
            device_type=DeviceType.RASPBERRY_PI,
            capabilities=_PI,
            cpu_temp_c=52.6,
            cpu_percent=12.0,
            ram_used_mb=610,
            ram_available_mb=3186,
            network_type=NetworkType.ETHERNET,
            metered=False,
            latency_ms=4.0,
            mesh_neighbours=2,
            foreground=False,
        ),
        DeviceProfile(
            device_id="desktop-gpu",
            device_type=DeviceType.DESKTOP,
            capabilities=_DESKTOP_GPU,
            cpu_temp_c=41.0,
            cpu_percent=6.0,
            ram_used_mb=9800,
            ram_available_mb=22198,
            network_type=NetworkType.ETHERNET,
            metered=False,
            latency_ms=3.0,
            mesh_neighbours=0,
            foreground=False,
        ),
        DeviceProfile(
            device_id="desktop",
            device_type=DeviceType.DESKTOP,
            capabilities=_DESKTOP,
            cpu_temp_c=39.0,
            cpu_percent=11.0,
            ram_used_mb=8200,
            ram_available_mb=23798,
            network_type=NetworkType.ETHERNET,
            metered=False,
            latency_ms=3.0,
            mesh_neighbours=0,
            foreground=True,
        ),
    ]
    return {p.device_id: p for p in presets}


PRESETS: Mapping[str, DeviceProfile] = MappingProxyType(_build_presets())


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(PRESETS))


def preset(name: str, *, field: str = "profile") -> DeviceProfile:
    """The named preset; an unknown name is a ``ConfigError`` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(preset_names())
        raise ConfigError(f"unknown preset {name!r} (known: {known})", field=field) from None


# ---------------------------------------------------------------------------------------------
# loading


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        import difflib  # only to word an error

        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(allowed))}"
        raise ConfigError(f"unknown field ({hint})", field=f"{where}{unknown[0]}")


def _first_unsupported(value: Any, path: str) -> tuple[str, Any] | None:
    """The first value JSON can't hold (TOML dates and times), with its dotted path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _first_unsupported(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(value, list):
        for item in value:
            found = _first_unsupported(item, path)
            if found:
                return found
        return None
    if value is None or isinstance(value, str | int | float):
        return None
    return path, value


def _check_bounds(profile: DeviceProfile) -> None:
    for name, (low, high) in _BOUNDS.items():
        owner: Any = profile
        attr = name
        if name.startswith("capabilities."):
            owner, attr = profile.capabilities, name.partition(".")[2]
        value = getattr(owner, attr)
        if value is None:
            continue
        ok = math.isfinite(value) and (low is None or value >= low)
        ok = ok and (high is None or value <= high)
        if not ok:
            lo = "" if low is None else f"{low:g}"
            hi = "" if high is None else f"{high:g}"
            rule = f"must be {lo}–{hi}" if lo and hi else f"must be ≥ {lo}"
            raise ConfigError(f"{rule}, not {value!r}", field=name)
    caps = profile.capabilities
    if caps.has_battery is False:
        for name in ("battery_percent", "charging"):
            if getattr(profile, name) is not None:
                raise ConfigError("is set but capabilities.has_battery is false", field=name)


def _validate(data: dict[str, Any]) -> DeviceProfile:
    unsupported = _first_unsupported(data, "")
    if unsupported is not None:
        where, value = unsupported
        raise ConfigError(f"unsupported value {value!r} (a {type(value).__name__})", field=where)
    from pydantic import ValidationError

    text = json.dumps(data)
    adapter = _adapter()
    try:
        profile = adapter.validate_json(text, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "profile"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(message, field=field) from exc
    _check_bounds(profile)
    if profile.accepts is not None:
        # The types above are pydantic's; the rules (non-empty prefixes, how many) are the
        # same ones the agent link applies, so a profile is never stored that reads back bad.
        try:
            Accepts.from_dict(profile.accepts.to_dict())
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc).removeprefix("accepts."), field="accepts") from exc
    return profile


def profile_from_mapping(data: Mapping[str, Any], *, source: str = "profile") -> DeviceProfile:
    """Validate a profile given as a mapping (the parsed file), merging onto ``base``."""
    try:
        return _from_mapping(data, source)
    except ConfigError as exc:
        if source == "profile":
            raise
        raise ConfigError(f"{exc.reason} (in {source})", field=exc.field) from exc


def _from_mapping(data: Mapping[str, Any], source: str) -> DeviceProfile:
    _check_keys(data, _PROFILE_FIELDS | _FILE_KEYS, "")
    caps_data = data.get("capabilities", {})
    if not isinstance(caps_data, Mapping):
        raise ConfigError("must be a table of capability fields", field="capabilities")
    _check_keys(caps_data, _CAPABILITY_FIELDS, "capabilities.")

    unset = data.get("unset", [])
    if not isinstance(unset, list) or not all(isinstance(u, str) for u in unset):
        raise ConfigError("must be a list of field names", field="unset")
    for name in unset:
        bare = name.removeprefix("capabilities.")
        allowed = _CAPABILITY_FIELDS if name.startswith("capabilities.") else _PROFILE_FIELDS
        if bare not in allowed or bare in ("device_id", "device_type", "capabilities"):
            raise ConfigError(f"cannot unset {name!r}", field="unset")

    merged: dict[str, Any] = {}
    merged_caps: dict[str, Any] = {}
    if "base" in data:
        base_name = data["base"]
        if not isinstance(base_name, str):
            raise ConfigError("must be a preset name", field="base")
        base = preset(base_name, field="base").to_dict()
        merged_caps = base.pop("capabilities")
        merged = base
    merged.update({k: v for k, v in data.items() if k not in _FILE_KEYS and k != "capabilities"})
    merged_caps.update(caps_data)
    for name in unset:
        if name.startswith("capabilities."):
            merged_caps[name.partition(".")[2]] = None
        else:
            merged[name] = None
    merged["capabilities"] = merged_caps
    merged.setdefault("device_id", f"emulated-{Path(source).stem}")

    explicit_type = "device_type" in data
    if not explicit_type:
        # Classify what the file describes, so a base phone given 16 GB becomes a laptop.
        merged["device_type"] = DeviceType.SMARTPHONE.value
    profile = _validate(merged)
    if not explicit_type:
        profile = profile.replace(device_type=classify(profile.capabilities).device_type)
    return profile


def load_profile(path: str | Path) -> DeviceProfile:
    """Load a ``.json`` or ``.toml`` profile file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"{path}: profile files end in .json or .toml", field="profile")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", field="profile") from exc
    try:
        data: Any = tomllib.loads(raw.decode()) if suffix == ".toml" else json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid {suffix[1:].upper()}: {exc}", field="profile"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold an object of profile fields", field="profile")
    return profile_from_mapping(data, source=str(path))


def resolve_profile(spec: str, *, field: str = "profile") -> tuple[DeviceProfile, str]:
    """A preset name or a profile file → (profile, label such as ``preset phone-hot``)."""
    if spec in PRESETS:
        return PRESETS[spec], f"preset {spec}"
    path = Path(spec).expanduser()
    if path.suffix.lower() in (".json", ".toml") or path.exists():
        return load_profile(path), f"file {path}"
    known = ", ".join(preset_names())
    raise ConfigError(
        f"{spec!r} is neither a preset (known: {known}) nor a .json/.toml file", field=field
    )


# ---------------------------------------------------------------------------------------------
# dumping


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes (\" \\ \n \uXXXX ...) are all valid in TOML basic strings.
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _to_toml(data: Mapping[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif value is not None:  # absent readings are simply left out
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"


def dump_profile(profile: DeviceProfile, path: str | Path) -> None:
    """Write ``profile`` as a complete (base-less) ``.json`` or ``.toml`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    data = profile.to_dict()
    if suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    elif suffix == ".toml":
        text = _to_toml(data)
    else:
        raise ConfigError(f"{path}: profile files end in .json or .toml", field="path")
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# sensor source


class EmulatedSensors:
    """A sensor source that reports a fixed (but updatable) profile, stamped with the clock."""

    def __init__(
        self, profile: DeviceProfile, *, clock: Clock | None = None, label: str | None = None
    ) -> None:
        self._profile = profile
        self._clock: Clock = clock if clock is not None else WallClock()
        self.label = label or f"emulated {profile.device_id}"

    @classmethod
    def from_spec(cls, spec: str, *, clock: Clock | None = None) -> EmulatedSensors:
        """From a preset name or a profile file path."""
        profile, label = resolve_profile(spec)
        return cls(profile, clock=clock, label=label)

    @property
    def profile(self) -> DeviceProfile:
        return self._profile

    def capabilities(self) -> DeviceCapabilities:
        return self._profile.capabilities

    def classification(self) -> Classification:
        kind = self._profile.device_type
        return Classification(kind, "profile", f"set to {kind.value} by {self.label}")

    def read(self) -> DeviceProfile:
        return self._profile.replace(timestamp=self._clock.time())

    def update(self, **changes: Any) -> DeviceProfile:
        """Change live readings (e.g. drain the battery) for the following reads."""
        self._profile = self._profile.replace(**changes)
        return self._profile
