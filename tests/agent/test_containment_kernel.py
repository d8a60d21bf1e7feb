"""The kernel mechanisms the runner contains tasks with, on real processes and real cgroups
(the runner-level tests are in test_containment.py)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
from containment_helpers import living

from fogmesh.agent._cgroup import CpuCgroup, find_cpu_base, group_pids, kill_group
from fogmesh.agent._reaper import _listed_children, _scanned_children, children


def _writable_bases() -> list[tuple[str, Path]]:
    usable = []
    for version, base in find_cpu_base():
        probe = base / f"fogmesh-probe-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            probe.mkdir()
        except OSError:
            continue
        probe.rmdir()
        usable.append((version, base))
    return usable


def test_kill_group_empties_a_group_in_every_hierarchy_this_machine_offers(
    marker: str,
) -> None:
    """v2 through cgroup.kill (or a freeze), v1 by SIGKILL rounds: each with a process tree that
    left its session, and with a process to keep."""
    bases = _writable_bases()
    if not bases:
        pytest.skip("no writable cgroup hierarchy here (not root, no delegation)")
    for version, base in bases:
        group = base / f"fogmesh-test-{os.getpid()}-{secrets.token_hex(3)}"
        group.mkdir()
        keep = subprocess.Popen(["sleep", "60"])
        leaders: list[subprocess.Popen[bytes]] = []
        try:
            (group / "cgroup.procs").write_text(str(keep.pid))
            for _ in range(3):
                # Each sh joins the group, then leaves a sleep behind in a session of its own.
                sh = subprocess.Popen(
                    ["sh", "-c", f"echo $$ > {group}/cgroup.procs; setsid -f sleep {marker}"]
                )
                leaders.append(sh)
                sh.wait(10)
            assert len(living(marker)) == 3
            assert kill_group(group, keep=keep.pid), version
            assert group_pids(group) == [keep.pid] and not living(marker)
            assert kill_group(group), version
            assert group_pids(group) == []
            assert keep.wait(10) == -signal.SIGKILL
        finally:
            keep.kill()
            keep.wait()
            group.rmdir()


def test_a_stale_group_is_emptied_and_removed_at_the_next_start(marker: str) -> None:
    made = CpuCgroup.create()
    if made is None:
        pytest.skip("no writable cgroup for CPU limits here")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = made.group.parent / f"fogmesh-{dead.pid}-{secrets.token_hex(3)}"
    try:
        (stale / "w0").mkdir(parents=True)
        subprocess.run(
            ["sh", "-c", f"echo $$ > {stale}/w0/cgroup.procs; setsid -f sleep {marker}"],
            check=True,
        )
        assert living(marker)
    finally:
        made.remove()
    again = CpuCgroup.create()  # sweeps the groups of runners that are gone
    assert again is not None
    again.remove()
    assert not stale.exists() and not living(marker)


def test_children_are_found_with_and_without_the_kernels_children_files(marker: str) -> None:
    shell = subprocess.Popen(["sh", "-c", f"sleep {marker} & sleep {marker} & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(living(marker)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        kids = {p.pid for p in living(marker)}
        assert set(_scanned_children(shell.pid)) == kids
        listed = _listed_children(shell.pid)
        assert listed is None or set(listed) == kids  # None: a kernel without them
        assert set(children(shell.pid)) == kids
    finally:
        shell.kill()
        shell.wait()
