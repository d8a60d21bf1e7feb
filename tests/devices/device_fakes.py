"""Fake machines for detection tests: a sysfs/procfs tree under tmp_path plus a fake psutil.

Imported by name (``from device_fakes import ...``): pytest puts this test directory on sys.path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fogmesh.devices.detect import BatteryReading, CpuTimes, PlatformInfo

GIB = 1024**3


@dataclass
class FakeHost:
    """Stands in for psutil; ``times`` are handed out one per call, the last one repeating."""

    logical: int | None = 4
    physical: int | None = 4
    freq_mhz: float | None = None
    times: list[CpuTimes] = field(default_factory=list)
    mem: tuple[int, int] | None = (8 * GIB, 5 * GIB)
    disk_usage: tuple[int, int] | None = (64 * GIB, 16 * GIB)
    temps: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    batt: BatteryReading | None = None
    info: PlatformInfo = field(
        default_factory=lambda: PlatformInfo("linux", "6.1.0", "aarch64", "testbox")
    )
    disk_calls: int = 0

    def cpu_count(self, *, logical: bool) -> int | None:
        return self.logical if logical else self.physical

    def cpu_freq_max_mhz(self) -> float | None:
        return self.freq_mhz

    def cpu_times(self) -> CpuTimes | None:
        if not self.times:
            return None
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]

    def memory(self) -> tuple[int, int] | None:
        return self.mem

    def disk(self, path: Path) -> tuple[int, int] | None:
        self.disk_calls += 1
        return self.disk_usage

    def temperatures(self) -> Mapping[str, Sequence[tuple[str, float]]]:
        return self.temps

    def battery(self) -> BatteryReading | None:
        return self.batt

    def platform(self) -> PlatformInfo:
        return self.info


class Tree:
    """Writes a fake machine's files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text + "\n")
        return path

    def mkdir(self, rel: str) -> Path:
        path = self.root / rel
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sys_classes(self) -> None:
        """A sysfs that exists but is empty of batteries, zones and GPUs."""
        for cls in ("power_supply", "thermal", "net", "drm"):
            self.mkdir(f"sys/class/{cls}")

    def battery(self, name: str = "battery", **files: str | int) -> None:
        self.write(f"sys/class/power_supply/{name}/type", "Battery")
        for key, value in files.items():
            self.write(f"sys/class/power_supply/{name}/{key}", str(value))

    def supply(self, name: str, kind: str, online: int | None) -> None:
        self.write(f"sys/class/power_supply/{name}/type", kind)
        if online is not None:
            self.write(f"sys/class/power_supply/{name}/online", str(online))

    def zone(self, index: int, kind: str, temp: str | int) -> None:
        self.write(f"sys/class/thermal/thermal_zone{index}/type", kind)
        self.write(f"sys/class/thermal/thermal_zone{index}/temp", str(temp))

    def iface(
        self,
        name: str,
        *,
        up: bool = True,
        physical: bool = True,
        wireless: bool = False,
        devtype: str | None = None,
        operstate: str | None = None,
    ) -> None:
        base = f"sys/class/net/{name}"
        self.write(f"{base}/operstate", operstate or ("up" if up else "down"))
        uevent = f"INTERFACE={name}\n" + (f"DEVTYPE={devtype}\n" if devtype else "")
        self.write(f"{base}/uevent", uevent)
        if physical:
            self.mkdir(f"{base}/device")
        if wireless:
            self.mkdir(f"{base}/wireless")

    def default_route(self, *ifaces: str) -> None:
        header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT"
        rows = [
            f"{i}\t00000000\t0101A8C0\t0003\t0\t0\t{n}\t00000000\t0\t0\t0"
            for n, i in enumerate(ifaces)
        ]
        self.write("proc/net/route", "\n".join([header, *rows]))
