"""CPU caps through cgroups, when this process may create and write a child group.

Layout: ``<own cgroup>/fogmesh-<pid>-<token>/w<slot>``, one slot per warm worker. The worker
moves each task process it forks into its slot before handing it any work (a python task
process once, as it is kept for later tasks; a command before it execs); the worker itself
stays outside, so its own bookkeeping — a few hundred microseconds per task — is never charged
to a task's cap (it was, when the worker lived in its slot: a 0.1-core tiny task then spent
most of its allowance on its supervisor, and the slot stalled for the rest of each period). A
migration costs ~0.3–1 ms here (more on some v1 kernels, waiting for an RCU grace period).
The runner rewrites the slot's quota before it hands each task over.

The same groups contain the tasks: whatever a task starts — in its own session too — lands in
its slot, and ``kill_group`` empties a slot (after a command, after a kept task process is
thrown away, when a worker is replaced or the runner closes) and ``remove`` empties the groups
before removing them. v2 kills a group at once through ``cgroup.kill`` (Linux ≥ 5.14) or freezes
it first (``cgroup.freeze``, ≥ 5.2); v1 SIGKILLs every pid in ``cgroup.procs`` until it is
empty, which ends: a process with a SIGKILL pending cannot complete a fork.

Whether this works is decided at run time: root on a v1 host (``cpu.cfs_quota_us``), or a
delegated v2 subtree (``cpu.max``). Anything else returns ``None`` and the runner falls back to
duty-cycling. The runner then still asks for a group without CPU control (``cpu=False``) to
contain its tasks in — a v2 group needs no controller for ``cgroup.kill`` — and only where none
can be made does containment fall back to subreapers (``_reaper``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Final

__all__ = ["PERIOD_US", "CpuCgroup", "find_cpu_base", "group_pids", "kill_group"]

PERIOD_US: Final = 100_000
_MIN_QUOTA_US: Final = 1_000  # the kernel refuses smaller CFS quotas
_GROUP: Final = -1  # the quota cache's key for the parent group itself
_KILL_WITHIN_S: Final = 5.0  # a process in uninterruptible sleep is the only one that outlasts it


def _own_paths(proc_self: Path) -> tuple[str | None, str | None]:
    """This process's cgroup path in the v1 ``cpu`` hierarchy and in the v2 hierarchy."""
    v1 = v2 = None
    try:
        text = (proc_self / "cgroup").read_text()
    except OSError:
        return None, None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and parts[0] == "0":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v1, v2


def find_cpu_base(proc_self: Path = Path("/proc/self")) -> list[tuple[str, Path]]:
    """Candidate directories to create our group in, best first, as ``(version, dir)``."""
    v1_path, v2_path = _own_paths(proc_self)
    found: list[tuple[str, Path]] = []
    try:
        mountinfo = (proc_self / "mountinfo").read_text()
    except OSError:
        return found
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint, fstype, superopts = fields[3], fields[4], tail[0], tail[2]
        if fstype == "cgroup2" and v2_path is not None:
            found.append(("cgroup-v2", _join(mountpoint, root, v2_path)))
        elif fstype == "cgroup" and v1_path is not None and "cpu" in superopts.split(","):
            found.append(("cgroup-v1", _join(mountpoint, root, v1_path)))
    found.sort(key=lambda item: item[0] != "cgroup-v2")
    return found


def _join(mountpoint: str, root: str, own: str) -> Path:
    # In a container the mount's root can be our own group; the path below it is what remains.
    rel = own[len(root) :] if root != "/" and own.startswith(root) else own
    return Path(mountpoint) / rel.lstrip("/")


class CpuCgroup:
    """Our parent group and its per-worker slots, in one hierarchy (v1 or v2)."""

    def __init__(self, version: str, group: Path, *, cpu: bool = True) -> None:
        self.version = version
        self.group = group
        self.cpu = cpu  # False: a group that only contains the tasks; no caps are written
        self._slots: dict[int, Path] = {}
        # What each slot's cap was last set to: a worker runs task after task at the same limit,
        # and a write to a cgroup file is a syscall and a kernel reconfiguration each time.
        self._quota: dict[int, int | None] = {}

    @classmethod
    def create(
        cls,
        candidates: list[tuple[str, Path]] | None = None,
        *,
        prefer: str | None = None,
        slots: int = 1,
        cpu: bool = True,
    ) -> CpuCgroup | None:
        """The first candidate where a group can be made and capped, or ``None``.

        The group is weighted as ``slots`` ordinary processes: left at the default weight, all
        the runner's tasks together would get the CPU share of a single process whenever the
        device is busy, however many workers it runs. ``cpu=False``: a group that processes can
        be moved into, for containment only (no controller needed, no cap written).
        """
        for version, base in find_cpu_base() if candidates is None else candidates:
            if prefer is not None and version != prefer:
                continue
            _sweep_stale(base)
            group = base / f"fogmesh-{os.getpid()}-{secrets.token_hex(3)}"
            try:
                group.mkdir()
            except OSError:
                continue
            made = cls(version, group, cpu=cpu)
            try:
                if not cpu:
                    # Moving a process needs write access to the group's cgroup.procs and to
                    # that of the common ancestor of where it is and where it goes (v2's
                    # delegation rule): the worker moves its task processes from ``base``.
                    for procs in (group / "cgroup.procs", base / "cgroup.procs"):
                        if not os.access(procs, os.W_OK):
                            raise PermissionError(f"{procs} is not writable")
                    return made
                if version == "cgroup-v2":
                    _enable_v2_cpu(base, group)
                made.set_cores(0, 1.0)  # proves the quota files are writable
                made.set_cores(0, None)
                made.set_total(None)
                made.set_weight(slots)
            except OSError:
                made.remove()
                continue
            return made
        return None

    def slot(self, index: int) -> Path:
        path = self._slots.get(index)
        if path is None:
            path = self.group / f"w{index}"
            path.mkdir(exist_ok=True)
            if self.version == "cgroup-v1" and self.cpu:
                (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            self._slots[index] = path
        return path

    def attach(self, index: int, pid: int) -> None:
        """Move process ``pid`` into slot ``index``."""
        self.procs_file(index).write_text(str(pid))

    def procs_file(self, index: int) -> Path:
        """The file that moves a process into slot ``index`` (made on first use)."""
        return self.slot(index) / "cgroup.procs"

    def set_cores(self, index: int, cores: float | None) -> None:
        """Cap slot ``index`` at ``cores`` CPUs (None = uncapped)."""
        self._set_quota(index, cores)

    def set_total(self, cores: float | None) -> None:
        """Cap all slots together at ``cores`` CPUs (None = uncapped): the device's budget for
        fog work, which the tasks running at once share whatever each one's own cap."""
        self._set_quota(_GROUP, cores)

    def _set_quota(self, index: int, cores: float | None) -> None:
        quota = None if cores is None else max(_MIN_QUOTA_US, round(cores * PERIOD_US))
        if index in self._quota and self._quota[index] == quota:
            return
        path = self.group if index == _GROUP else self.slot(index)
        self._quota.pop(index, None)  # unknown until the write below succeeds
        if self.version == "cgroup-v2":
            (path / "cpu.max").write_text(f"{'max' if quota is None else quota} {PERIOD_US}")
        else:
            (path / "cpu.cfs_quota_us").write_text(str(-1 if quota is None else quota))
        self._quota[index] = quota

    def set_weight(self, processes: int) -> None:
        """Give the whole group the CPU weight of ``processes`` default-weight processes."""
        with contextlib.suppress(OSError):  # a weight is a nicety; the caps are what matter
            if self.version == "cgroup-v2":
                (self.group / "cpu.weight").write_text(str(min(10_000, 100 * processes)))
            else:
                (self.group / "cpu.shares").write_text(str(1024 * processes))

    def kill(self, index: int, keep: int | None = None) -> bool:
        """Kill every process in slot ``index`` but ``keep``; False if some outlived the wait."""
        path = self._slots.get(index)
        return True if path is None else kill_group(path, keep)

    def remove(self) -> None:
        """Kill whatever is left in the slots, then remove them and the group (the slots are
        the group's children: ``_rmtree_groups`` empties and removes each)."""
        self._slots.clear()
        self._quota.clear()
        _rmtree_groups(self.group)


def _enable_v2_cpu(base: Path, group: Path) -> None:
    controllers = _read(group / "cgroup.controllers")
    if "cpu" not in controllers.split():
        # Only possible where ``base`` has no processes of its own (v2's no-internal-process
        # rule) — the case under a delegated systemd unit or a container's root.
        (base / "cgroup.subtree_control").write_text("+cpu")
    (group / "cgroup.subtree_control").write_text("+cpu")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write_control(path: Path, value: str) -> None:
    """Write an existing control file; never create one (a kernel without it has none)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def group_pids(path: Path) -> list[int]:
    """The processes in cgroup ``path`` (zombies are not listed); empty once it is gone."""
    try:
        with open(path / "cgroup.procs", "rb") as fh:
            return [int(pid) for pid in fh.read().split()]
    except (OSError, ValueError):
        return []


def kill_group(path: Path, keep: int | None = None, within: float = _KILL_WITHIN_S) -> bool:
    """SIGKILL every process in cgroup ``path`` except ``keep``; True once none is left.

    ``keep`` is a kept python task process, which must survive its task's leftovers; without
    one, v2 kills the whole group at once (``cgroup.kill``) or freezes it, so nothing forks
    between the reading of ``cgroup.procs`` and the signals.
    """
    if not path.is_dir():
        return True
    frozen = False
    if keep is None:
        try:
            _write_control(path / "cgroup.kill", "1")
        except OSError:
            with contextlib.suppress(OSError):
                _write_control(path / "cgroup.freeze", "1")
                frozen = True
    try:
        give_up = time.monotonic() + within
        pause = 0.0005
        while True:
            strays = [pid for pid in group_pids(path) if pid != keep]
            if not strays:
                return True
            if time.monotonic() >= give_up:
                return False
            for pid in strays:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # a frozen process dies of it too
            time.sleep(pause)  # they leave the group as they exit
            pause = min(pause * 2, 0.05)
    finally:
        if frozen:
            with contextlib.suppress(OSError):
                _write_control(path / "cgroup.freeze", "0")


def _rmtree_groups(group: Path) -> None:
    # Cgroup directories are removed with rmdir (their control files are not real files); a
    # group with a process in it cannot be removed, so they are emptied first.
    with contextlib.suppress(OSError):
        for child in group.iterdir():
            if child.is_dir():
                kill_group(child)
                with contextlib.suppress(OSError):
                    child.rmdir()
    kill_group(group)
    with contextlib.suppress(OSError):
        group.rmdir()


def _sweep_stale(base: Path) -> None:
    """Remove groups left by runners that died without closing, and the processes in them."""
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            name = entry.name
            if not name.startswith("fogmesh-") or not entry.is_dir():
                continue
            try:
                pid = int(name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _alive(pid):
                _rmtree_groups(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
