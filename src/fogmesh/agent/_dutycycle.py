"""CPU caps without cgroups: stop and continue the task's process group (cpulimit's idea).

A token bucket in CPU-seconds: the bucket fills at ``cores`` per wall second and is drained by
the CPU time the task really used (read from ``/proc/<pid>/stat``, all threads plus reaped
children). When it goes negative the group is SIGSTOPped until the debt is paid back. Reading
the task's used time instead of assuming a fixed on/off ratio keeps the cap right for
multi-threaded tasks and for tasks that sleep. The bucket holds at most one period of credit, so
a task that idled cannot burst far over its cap afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Final

__all__ = ["TICK_S", "DutyCycle", "process_cpu_seconds"]

TICK_S: Final = 0.01  # how often the supervisor looks; /proc's CPU clock ticks at 10 ms
_BURST_S: Final = 0.1
_HZ: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User+system time of ``pid`` (all its threads and reaped children); None once gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
    fields = data[data.rfind(b")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / _HZ


class DutyCycle:
    """Keeps process group ``pgid`` (led by ``pid``) at ``cores`` CPUs on average."""

    def __init__(self, pid: int, cores: float, now: float) -> None:
        self.pid = pid
        self.cores = cores
        self.running = True
        self._tokens = 0.0
        self._last_now = now
        self._last_cpu = process_cpu_seconds(pid) or 0.0

    def step(self, now: float) -> None:
        cpu = process_cpu_seconds(self.pid)
        if cpu is None:
            return
        self._tokens += self.cores * (now - self._last_now) - (cpu - self._last_cpu)
        self._tokens = min(self._tokens, self.cores * _BURST_S)
        self._last_now, self._last_cpu = now, cpu
        if self.running and self._tokens < 0:
            self._signal(signal.SIGSTOP)
            self.running = False
        elif not self.running and self._tokens >= 0:
            self._signal(signal.SIGCONT)
            self.running = True

    def release(self) -> None:
        """Let the group run again (before killing it, or when the cap is lifted)."""
        if not self.running:
            self._signal(signal.SIGCONT)
            self.running = True

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
