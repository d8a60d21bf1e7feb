"""Containment without cgroups: a subreaper keeps a task's orphans in its own process tree.

A task may start a child in a session of its own (``setsid -f``, ``Popen(start_new_session=
True)``): killing the task's process group misses it, and once its parent exits the kernel
re-parents it to init — out of reach. ``PR_SET_CHILD_SUBREAPER`` makes the kernel re-parent such
orphans to the nearest subreaper ancestor instead. The warm worker and each kept python task
process are subreapers, so every process a task started is, at the task's end, a child of one of
them (or of one of those children), and ``reap_children`` kills and reaps them until none is
left. This is the fallback where no cgroup is writable (a non-root agent, Termux); with a cgroup
the slot is emptied as well (``_cgroup.kill_group``), which also catches a process that left the
tree some other way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Collection
from typing import Any, Final

__all__ = [
    "children",
    "has_children",
    "kill_descendants",
    "load_libc",
    "reap_children",
    "set_subreaper",
]

_PR_SET_CHILD_SUBREAPER: Final = 36
# A SIGKILLed process cannot complete a fork, so a few rounds empty any tree; the bound is for a
# process stuck in uninterruptible sleep, which no signal moves.
_GIVE_UP_S: Final = 2.0


@functools.cache
def load_libc() -> Any:
    """libc for prctl (None off Linux), loaded on first use."""
    # Loaded by the processes that become subreapers (workers, task processes), not by the
    # agent, which imports this module only to end a worker's tree: ctypes is 0.4 MB of an
    # idle agent.
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def set_subreaper() -> bool:
    """Make this process the subreaper of its descendants; False where the kernel cannot."""
    libc = load_libc()
    if libc is None:
        return False
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # comm may hold spaces and parentheses
    try:
        return fields[0].decode(), int(fields[1])
    except (IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (zombies included)."""
    listed = _listed_children(pid)
    return _scanned_children(pid) if listed is None else listed


def _listed_children(pid: int) -> list[int] | None:
    """From ``/proc/<pid>/task/*/children``; None where the kernel has no such file
    (CONFIG_PROC_CHILDREN is off)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found  # gone
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found += [int(p) for p in fh.read().split()]
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{tid}"):
                return None
        except (OSError, ValueError):
            continue  # a thread that just exited
    return found


def _scanned_children(pid: int) -> list[int]:
    """Every process's parent, read from ``/proc/*/stat`` (~1 ms for a hundred processes)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _stat(int(name))
                if stat is not None and stat[1] == pid:
                    found.append(int(name))
    return found


def has_children() -> bool:
    """Whether this process has any child, living or not yet reaped (one system call)."""
    if not hasattr(os, "waitid"):  # not Linux: no subreaper either; look the slow way
        return bool(children(os.getpid()))
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def reap_children(keep: Collection[int] = ()) -> int:
    """Kill and reap every child of this process except ``keep``, until none is left.

    A killed child's own children are re-parented to this process (it is a subreaper), so they
    come up in the next round. Returns how many processes were killed or reaped.
    """
    me = os.getpid()
    handled = 0
    give_up = time.monotonic() + _GIVE_UP_S
    while time.monotonic() < give_up:
        strays = [pid for pid in children(me) if pid not in keep]
        if not strays:
            return handled
        dying = []
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)  # a zombie takes it too, without effect
            except ProcessLookupError:
                continue
            except PermissionError:
                keep = (*keep, pid)  # it became another user: not ours to end
                continue
            dying.append(pid)
        for pid in dying:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            handled += 1
    return handled


def kill_descendants(root: int) -> int:
    """SIGKILL every living descendant of ``root`` (not ``root`` itself), in rounds until none
    is left.

    For a worker about to be killed: its descendants would otherwise be re-parented away from
    it, out of reach. Their zombies stay its children and go with it. Returns how many were
    signalled.
    """
    signalled: set[int] = set()
    give_up = time.monotonic() + _GIVE_UP_S
    pause = 0.0005
    while time.monotonic() < give_up:
        living: list[int] = []
        stack = [root]
        while stack:
            for pid in children(stack.pop()):
                stat = _stat(pid)
                if stat is not None and stat[0] not in ("Z", "X"):
                    living.append(pid)
                    stack.append(pid)
        if not living:
            break
        for pid in living:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            signalled.add(pid)
        time.sleep(pause)  # let them die before looking again (their orphans come up then)
        pause = min(pause * 2, 0.05)
    return len(signalled)
