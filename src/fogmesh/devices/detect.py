"""Real detection of this machine: sysfs/procfs read under an injectable root, plus psutil.

Every reading may be absent and is then ``None``. A file that is missing, unreadable or holds
garbage yields ``None`` for that reading only; detection as a whole never fails for it.
Paths are relative to ``root`` so tests describe a whole machine as a directory tree; psutil
sits behind the ``Host`` protocol for the same reason.

Static capabilities are detected once per ``RealSensors``; ``read()`` does the live reads
(battery, thermal, network, CPU and memory load, free storage) every time, without sleeping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import platform
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from fogmesh.clock import Clock, WallClock
from fogmesh.devices.classify import Classification, classify, parse_device_type
from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType, NetworkType
from fogmesh.errors import DeviceError

__all__ = [
    "BatteryReading",
    "CpuTimes",
    "Host",
    "PlatformInfo",
    "PsutilHost",
    "RealSensors",
    "detect",
    "detect_capabilities",
]

DEVICE_TYPE_ENV = "FOGMESH_DEVICE_TYPE"

# A CPU busy-fraction over fewer than this many seconds (per core) is quantisation noise: the
# kernel counts in 10 ms ticks.
_MIN_CPU_WINDOW_S = 0.05
# Temperatures outside this range come from disabled or broken zones (0, -273, 255 ...).
_MIN_PLAUSIBLE_C = 0.0
_MAX_PLAUSIBLE_C = 150.0
_CPU_SENSOR = re.compile(
    r"cpu|x86_pkg|coretemp|k10temp|zenpower|soc[-_]?thermal|package id|tctl|tdie|tsens|mtktscpu"
)
_CELLULAR_NAME = re.compile(r"^(wwan|rmnet|ccmni|usb_rmnet|seth_lte|pdp|clat)")
# Interfaces that carry no traffic of their own (tunnels ride on a physical link we also see).
_IGNORED_NAME = re.compile(
    r"^(lo|ifb|veth|docker|br-|virbr|vnet|tun|tap|dummy|wg|tailscale|zt|bond|team|sit|ip6tnl|gre)"
)
_NETWORK_RANK = {NetworkType.ETHERNET: 0, NetworkType.WIFI: 1, NetworkType.CELLULAR: 2}
# PCI vendor ids of emulated display adapters: a VM's framebuffer is no compute GPU.
_VIRTUAL_GPU_VENDORS = {"0x1234", "0x1af4", "0x15ad", "0x1b36", "0x1414", "0x80ee"}
_VIRTUAL_GPU_DRIVERS = {
    "simpledrm",
    "bochs-drm",
    "bochs",
    "virtio_gpu",
    "virtio-pci",
    "vmwgfx",
    "qxl",
    "cirrus",
    "hyperv_drm",
    "vboxvideo",
    "efifb",
    "vkms",
}
_GPU_VENDORS = {
    "0x10de": "NVIDIA",
    "0x1002": "AMD",
    "0x8086": "Intel",
    "0x5143": "Qualcomm",
    "0x14e4": "Broadcom",
}
_GIB = 1024**3
_MIB = 1024**2


# ---------------------------------------------------------------------------------------------
# the psutil seam


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative CPU seconds summed over all cores."""

    busy: float
    total: float


@dataclass(frozen=True, slots=True)
class BatteryReading:
    percent: float | None
    charging: bool | None


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    system: str | None  # "linux", "darwin", "windows" ...
    release: str | None
    machine: str | None
    hostname: str | None


class Host(Protocol):
    """What psutil and the platform module report; every method returns ``None`` if unknown."""

    def cpu_count(self, *, logical: bool) -> int | None: ...

    def cpu_freq_max_mhz(self) -> float | None: ...

    def cpu_times(self) -> CpuTimes | None: ...

    def memory(self) -> tuple[int, int] | None:
        """(total, available) bytes."""
        ...

    def disk(self, path: Path) -> tuple[int, int] | None:
        """(total, free) bytes of the filesystem holding ``path``."""
        ...

    def temperatures(self) -> Mapping[str, Sequence[tuple[str, float]]]:
        """Sensor chip name → (label, °C) pairs."""
        ...

    def battery(self) -> BatteryReading | None: ...

    def platform(self) -> PlatformInfo: ...


class PsutilHost:
    """The real host. psutil raises on platforms or sandboxes that hide a reading: that is
    ``None``, not an error."""

    __slots__ = ()

    def cpu_count(self, *, logical: bool) -> int | None:
        try:
            n = psutil.cpu_count(logical=logical)
        except (OSError, RuntimeError, ValueError):
            return None
        return int(n) if n else None

    def cpu_freq_max_mhz(self) -> float | None:
        try:
            freq = psutil.cpu_freq()
        except (OSError, RuntimeError, NotImplementedError, AttributeError):
            return None
        if freq is None:
            return None
        best = float(freq.max) or float(freq.current)
        return best if best > 0 else None

    def cpu_times(self) -> CpuTimes | None:
        try:
            t = psutil.cpu_times()
        except (OSError, RuntimeError):
            return None
        fields = t._asdict()
        # guest time is already counted in user time on Linux.
        total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
        idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
        return CpuTimes(busy=total - idle, total=total)

    def memory(self) -> tuple[int, int] | None:
        try:
            vm = psutil.virtual_memory()
        except (OSError, RuntimeError, ValueError):
            return None
        return int(vm.total), int(vm.available)

    def disk(self, path: Path) -> tuple[int, int] | None:
        try:
            du = psutil.disk_usage(str(path))
        except (OSError, RuntimeError):
            return None
        return int(du.total), int(du.free)

    def temperatures(self) -> Mapping[str, Sequence[tuple[str, float]]]:
        reader = getattr(psutil, "sensors_temperatures", None)
        if reader is None:
            return {}
        try:
            raw = reader()
        except (OSError, RuntimeError, ValueError):
            return {}
        return {
            name: [(entry.label or "", float(entry.current)) for entry in entries]
            for name, entries in raw.items()
        }

    def battery(self) -> BatteryReading | None:
        reader = getattr(psutil, "sensors_battery", None)
        if reader is None:
            return None
        try:
            b = reader()
        except (OSError, RuntimeError, ValueError):
            return None
        if b is None:
            return None
        return BatteryReading(percent=float(b.percent), charging=b.power_plugged)

    def platform(self) -> PlatformInfo:
        return PlatformInfo(
            system=platform.system().lower() or None,
            release=platform.release() or None,
            machine=platform.machine() or None,
            hostname=socket.gethostname() or None,
        )


# ---------------------------------------------------------------------------------------------
# file helpers: every failure is "absent"


def _read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    return text or None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _list_dir(path: Path) -> list[Path] | None:
    try:
        return sorted(path.iterdir())
    except OSError:
        return None


def _uevent(path: Path) -> dict[str, str]:
    text = _read_text(path / "uevent")
    if text is None:
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


# ---------------------------------------------------------------------------------------------
# power


@dataclass(frozen=True, slots=True)
class _Power:
    has_battery: bool | None
    percent: float | None
    charging: bool | None


def _battery_level(supply: Path) -> tuple[float | None, float | None]:
    """(percent, full capacity in the battery's own units) of one battery."""
    percent: float | None = None
    full: float | None = None
    for now_name, full_name in (("energy_now", "energy_full"), ("charge_now", "charge_full")):
        now, full_raw = _read_int(supply / now_name), _read_int(supply / full_name)
        if full_raw:
            full = float(full_raw)
            if now is not None:
                percent = 100.0 * now / full_raw
            break
    capacity = _read_int(supply / "capacity")
    if capacity is not None:
        percent = float(capacity)  # the gauge's own figure beats our division
    return percent, full


def _read_power(root: Path) -> _Power:
    supplies = _list_dir(root / "sys/class/power_supply")
    if supplies is None:
        return _Power(None, None, None)
    batteries: list[Path] = []
    external_online: list[bool] = []
    for supply in supplies:
        kind = _read_text(supply / "type")
        if kind == "Battery":
            # scope=Device marks a peripheral's battery (mouse, headset), not ours.
            if _read_text(supply / "scope") == "Device" or _read_int(supply / "present") == 0:
                continue
            batteries.append(supply)
        elif kind is not None and kind != "UPS":
            online = _read_int(supply / "online")
            if online is not None:
                external_online.append(online > 0)
    if not batteries:
        return _Power(False, None, None)

    levels = [_battery_level(b) for b in batteries]
    known = [(p, full) for p, full in levels if p is not None]
    percent: float | None = None
    if known and all(full for _, full in known):
        # Weight by capacity: a full small battery plus an empty big one is not 50 %.
        percent = sum(p * (full or 0.0) for p, full in known) / sum(f or 0.0 for _, f in known)
    elif known:
        percent = sum(p for p, _ in known) / len(known)
    if percent is not None:
        # Some fuel gauges overshoot (101 %) or report -1 while calibrating.
        percent = None if percent < 0 else min(round(percent, 1), 100.0)

    statuses = {_read_text(b / "status") for b in batteries}
    charging: bool | None
    if "Charging" in statuses:
        charging = True
    elif external_online:
        charging = any(external_online)
    elif statuses & {"Full", "Not charging"}:
        charging = True
    elif "Discharging" in statuses:
        charging = False
    else:
        charging = None
    return _Power(True, percent, charging)


def _read_low_power_mode(root: Path) -> bool | None:
    profile = _read_text(root / "sys/firmware/acpi/platform_profile")
    return None if profile is None else profile == "low-power"


# ---------------------------------------------------------------------------------------------
# thermal


def _plausible(celsius: float) -> bool:
    return _MIN_PLAUSIBLE_C < celsius < _MAX_PLAUSIBLE_C


def _read_cpu_temperature(root: Path, host: Host) -> float | None:
    """The hottest CPU-ish sensor; if none is CPU-ish, the hottest sensor of any kind."""
    cpu: list[float] = []
    other: list[float] = []
    for zone in _list_dir(root / "sys/class/thermal") or ():
        if not zone.name.startswith("thermal_zone"):
            continue
        if _read_text(zone / "mode") == "disabled":
            continue
        raw = _read_int(zone / "temp")
        if raw is None:
            continue
        # millidegrees by the ABI; a few vendor zones report whole degrees.
        celsius = raw / 1000.0 if abs(raw) >= 1000 else float(raw)
        if not _plausible(celsius):
            continue
        kind = (_read_text(zone / "type") or "").lower()
        (cpu if _CPU_SENSOR.search(kind) else other).append(celsius)
    for chip, entries in host.temperatures().items():
        for label, celsius in entries:
            if not _plausible(celsius):
                continue
            name = f"{chip} {label}".lower()
            (cpu if _CPU_SENSOR.search(name) else other).append(celsius)
    pool = cpu or other
    return max(pool) if pool else None


# ---------------------------------------------------------------------------------------------
# network


def _interface_kind(iface: Path) -> NetworkType | None:
    """wifi / cellular / ethernet for a real link, ``None`` for loopback and virtual ones."""
    name = iface.name
    uevent = _uevent(iface)
    devtype = uevent.get("DEVTYPE", "").lower()
    if devtype == "wwan" or _CELLULAR_NAME.match(name):
        return NetworkType.CELLULAR
    if _IGNORED_NAME.match(name):
        return None
    if devtype == "wlan" or (iface / "wireless").exists() or (iface / "phy80211").exists():
        return NetworkType.WIFI
    if devtype in ("bridge", "bond", "vlan", "tun", "veth"):
        return None
    # Physical links have a backing device; bridges, veths and tunnels live under virtual/.
    if (iface / "device").exists():
        return NetworkType.ETHERNET
    return None


def _is_up(iface: Path) -> bool:
    state = _read_text(iface / "operstate")
    if state == "up":
        return True
    # Some modem and tunnel drivers never report operstate; carrier still tells.
    return state == "unknown" and _read_int(iface / "carrier") == 1


def _default_route_interfaces(root: Path) -> set[str]:
    names: set[str] = set()
    v4 = _read_text(root / "proc/net/route")
    for line in (v4 or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 2 and cols[1] == "00000000":
            names.add(cols[0])
    v6 = _read_text(root / "proc/net/ipv6_route")
    for line in (v6 or "").splitlines():
        cols = line.split()
        if len(cols) >= 10 and cols[0] == "0" * 32 and cols[1] == "00" and cols[-1] != "lo":
            names.add(cols[-1])
    return names


def _interfaces(root: Path) -> list[tuple[str, NetworkType, bool]] | None:
    entries = _list_dir(root / "sys/class/net")
    if entries is None:
        return None
    out = []
    for iface in entries:
        kind = _interface_kind(iface)
        if kind is not None:
            out.append((iface.name, kind, _is_up(iface)))
    return out


def _read_network(root: Path) -> NetworkType | None:
    """The link traffic leaves by: the default route's if known, else the best link that is up.

    ``NONE`` when the interface list is readable and no real link is up.
    """
    links = _interfaces(root)
    if links is None:
        return None
    up = [(name, kind) for name, kind, is_up in links if is_up]
    if not up:
        return NetworkType.NONE
    defaults = _default_route_interfaces(root)
    routed = [(name, kind) for name, kind in up if name in defaults]
    # Operating systems prefer wired over wifi over cellular when several links are up.
    best = min(routed or up, key=lambda link: _NETWORK_RANK[link[1]])
    return best[1]


# ---------------------------------------------------------------------------------------------
# static hardware


def _board_model(root: Path, cpuinfo: Mapping[str, str]) -> str | None:
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = _read_text(root / rel)
        if text is not None and text.isprintable():
            return text
    # Raspberry Pi kernels also name the board in /proc/cpuinfo's "Model" line (x86 has a
    # lower-case "model", a number).
    return cpuinfo.get("Model")


def _cpuinfo(root: Path) -> dict[str, str]:
    text = _read_text(root / "proc/cpuinfo")
    info: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if sep and value and key not in info:
            info[key] = value
    return info


def _cpu_model(cpuinfo: Mapping[str, str]) -> str | None:
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        value = cpuinfo.get(key)
        # x86 numbers its cores in "processor"; ARM32 has a "Processor" model line.
        if value and not value.isdigit():
            return value
    return None


def _cpu_freq_mhz(root: Path, host: Host) -> float | None:
    khz = _read_int(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz is not None and khz > 0:
        return khz / 1000.0
    return host.cpu_freq_max_mhz()


def _gpu(root: Path) -> tuple[bool | None, str | None, int | None]:
    """(present, name, memory MB). False only when the places a GPU would show are readable."""
    nvidia = sorted(p.name for p in _glob(root / "dev", "nvidia[0-9]*"))
    if nvidia:
        name = None
        for info in _glob(root / "proc/driver/nvidia/gpus", "*/information"):
            for line in (_read_text(info) or "").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model" and value.strip():
                    name = f"NVIDIA {value.strip()}".replace("NVIDIA NVIDIA", "NVIDIA")
                    break
            if name:
                break
        return True, name or "NVIDIA", None
    cards = _list_dir(root / "sys/class/drm")
    for card in cards or ():
        if not re.fullmatch(r"card\d+", card.name):
            continue
        device = card / "device"
        vendor = (_read_text(device / "vendor") or "").lower()
        driver = _uevent(device).get("DRIVER", "")
        if vendor in _VIRTUAL_GPU_VENDORS or driver in _VIRTUAL_GPU_DRIVERS:
            continue
        if not vendor and not driver:
            continue
        label = _GPU_VENDORS.get(vendor) or driver or vendor
        if driver and label != driver:
            label = f"{label} ({driver})"
        vram = _read_int(device / "mem_info_vram_total")
        return True, label, (vram // _MIB if vram else None)
    if cards is None and not (root / "sys/class").is_dir():
        return None, None, None
    return False, None, None


def _glob(base: Path, pattern: str) -> Iterator[Path]:
    try:
        yield from sorted(base.glob(pattern))
    except OSError:
        return


def _os_name(root: Path, info: PlatformInfo) -> str | None:
    # Termux and adb shells report "linux"; the system partition says Android.
    if (root / "system/build.prop").is_file():
        return "android"
    return info.system


def _transports(root: Path, links: list[tuple[str, NetworkType, bool]] | None) -> tuple[str, ...]:
    found = []
    if links:
        found.append("betanet")  # internet transport: needs any real network link
    if any(p.name.startswith("hci") for p in _list_dir(root / "sys/class/bluetooth") or ()):
        found.append("bitchat")  # the BLE mesh
    return tuple(sorted(found))


def detect_capabilities(*, root: Path = Path("/"), host: Host | None = None) -> DeviceCapabilities:
    """Static capabilities of the machine under ``root`` (always freshly detected)."""
    host = host if host is not None else PsutilHost()
    info = host.platform()
    cpuinfo = _cpuinfo(root)
    memory = host.memory()
    disk = host.disk(root)
    has_gpu, gpu_name, gpu_mem = _gpu(root)
    power = _read_power(root)
    has_battery = power.has_battery
    if has_battery is None and host.battery() is not None:
        has_battery = True
    return DeviceCapabilities(
        cpu_cores_logical=host.cpu_count(logical=True),
        cpu_cores_physical=host.cpu_count(logical=False),
        cpu_freq_mhz=_cpu_freq_mhz(root, host),
        cpu_model=_cpu_model(cpuinfo),
        ram_total_mb=memory[0] // _MIB if memory else None,
        storage_total_gb=round(disk[0] / _GIB, 2) if disk else None,
        storage_free_gb=round(disk[1] / _GIB, 2) if disk else None,
        has_gpu=has_gpu,
        gpu_name=gpu_name,
        gpu_memory_mb=gpu_mem,
        has_battery=has_battery,
        os=_os_name(root, info),
        os_release=info.release,
        arch=info.machine,
        board_model=_board_model(root, cpuinfo),
        supported_transports=_transports(root, _interfaces(root)),
    )


# ---------------------------------------------------------------------------------------------
# live readings


class _CpuMeter:
    """Busy % between successive readings, per instance.

    psutil.cpu_percent(interval=None) keeps one process-wide baseline, so every other caller in
    the process would shorten our window; the same arithmetic over our own baseline avoids that.
    A window too short to mean anything returns the previous measurement instead.
    """

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._base = host.cpu_times()
        self._cores = host.cpu_count(logical=True) or 1
        self._last: float | None = None

    def percent(self) -> float | None:
        with self._lock:
            now = self._host.cpu_times()
            base = self._base
            if now is None or base is None:
                self._base = now
                return self._last
            total = now.total - base.total
            if total / self._cores < _MIN_CPU_WINDOW_S:
                return self._last
            busy = (now.busy - base.busy) / total * 100.0
            self._base = now
            self._last = round(min(max(busy, 0.0), 100.0), 1)
            return self._last


def _machine_device_id(root: Path, info: PlatformInfo) -> str:
    machine_id = _read_text(root / "etc/machine-id")
    hostname = info.hostname or _read_text(root / "etc/hostname")
    slug = re.sub(r"[^a-z0-9-]+", "-", hostname.lower()).strip("-") if hostname else ""
    if machine_id:
        # machine-id is meant to stay private; like systemd's app-specific ids, publish a keyed
        # hash of it instead.
        digest = hmac.new(machine_id.encode(), b"fogmesh-device-id", hashlib.sha256).hexdigest()
        return f"{slug}-{digest[:8]}" if slug else f"dev-{digest[:12]}"
    if slug:
        return slug
    raise DeviceError("cannot derive a device id: no /etc/machine-id and no hostname")


class RealSensors:
    """The sensor source for the machine under ``root`` (``/`` is this machine)."""

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        device_id: str | None = None,
        override_type: DeviceType | str | None = None,
        host: Host | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = root
        self.label = "this machine" if root == Path("/") else f"machine at {root}"
        self._host: Host = host if host is not None else PsutilHost()
        self._clock: Clock = clock if clock is not None else WallClock()
        self._device_id = device_id
        self._override = override_type
        self._caps: DeviceCapabilities | None = None
        self._cpu = _CpuMeter(self._host)

    def capabilities(self) -> DeviceCapabilities:
        if self._caps is None:
            self._caps = detect_capabilities(root=self.root, host=self._host)
        return self._caps

    def refresh(self) -> DeviceCapabilities:
        """Forget the cached capabilities and detect them again."""
        self._caps = None
        return self.capabilities()

    def device_id(self) -> str:
        if self._device_id is None:
            self._device_id = _machine_device_id(self.root, self._host.platform())
        return self._device_id

    def classification(self, override: DeviceType | str | None = None) -> Classification:
        chosen = override if override is not None else self._override
        if chosen is None and os.environ.get(DEVICE_TYPE_ENV):
            chosen = parse_device_type(os.environ[DEVICE_TYPE_ENV], field=DEVICE_TYPE_ENV)
        return classify(self.capabilities(), override=chosen)

    def read(self) -> DeviceProfile:
        return self._read(None, None)

    def _read(self, device_id: str | None, override: DeviceType | str | None) -> DeviceProfile:
        caps = self.capabilities()
        disk = self._host.disk(self.root)
        if disk is not None:
            caps = dataclasses.replace(caps, storage_free_gb=round(disk[1] / _GIB, 2))
        power = _read_power(self.root)
        if power.has_battery is None:
            fallback = self._host.battery()
            if fallback is not None:
                power = _Power(True, fallback.percent, fallback.charging)
        memory = self._host.memory()
        network = _read_network(self.root)
        live: dict[str, Any] = {
            "battery_percent": power.percent,
            "charging": power.charging,
            "low_power_mode": _read_low_power_mode(self.root),
            "cpu_temp_c": _read_cpu_temperature(self.root, self._host),
            "cpu_percent": self._cpu.percent(),
            "ram_used_mb": (memory[0] - memory[1]) // _MIB if memory else None,
            "ram_available_mb": memory[1] // _MIB if memory else None,
            "network_type": network,
            # Only cellular is known to be metered; a wifi hotspot may be too, unknowably here.
            "metered": True if network is NetworkType.CELLULAR else None,
        }
        return DeviceProfile(
            device_id=device_id or self.device_id(),
            device_type=self.classification(override).device_type,
            capabilities=caps,
            timestamp=self._clock.time(),
            **live,
        )


_shared_lock = threading.Lock()
_shared: RealSensors | None = None


def _this_machine() -> RealSensors:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RealSensors()
        return _shared


def detect(
    device_id: str | None = None,
    *,
    root: Path = Path("/"),
    override_type: DeviceType | str | None = None,
    host: Host | None = None,
) -> DeviceProfile:
    """A live profile of this machine (or of the tree at ``root``).

    For this machine the static capabilities are detected once per process and the live readings
    every call; ``override_type`` (else ``FOGMESH_DEVICE_TYPE``) replaces classification.
    """
    if root == Path("/") and host is None:
        return _this_machine()._read(device_id, override_type)
    return RealSensors(root=root, host=host)._read(device_id, override_type)
