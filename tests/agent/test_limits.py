"""CPU caps measured, not trusted: the task's own CPU time over its wall time.

Both enforcement paths are measured on this machine — cgroups (where this process can create
and write one) and SIGSTOP/SIGCONT duty-cycling (forced). The machine is shared, so each
measurement is paired with an uncapped control run: if even the control could not get well
above the cap, the machine is too busy for the measurement to tell a working limiter from a
broken one, and the test skips instead of passing vacuously.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from fogmesh.agent import RunLimits, RunnerConfig, TaskRunner
from fogmesh.agent._cgroup import PERIOD_US, CpuCgroup, find_cpu_base
from fogmesh.agent._dutycycle import process_cpu_seconds
from fogmesh.fog.tasks import PythonPayload, Task, TaskType

BURN = "fogmesh.agent.workloads:burn"
CAP = 0.15
WINDOW_S = 2.0


def burn_task(name: str, seconds: float) -> Task:
    return Task(
        id=name,
        type=TaskType.VALIDATION,
        payload=PythonPayload(function=BURN, args={"seconds": seconds}),
    )


@pytest_asyncio.fixture
async def cgroup_runner() -> AsyncIterator[TaskRunner]:
    probe = CpuCgroup.create()
    if probe is None:
        pytest.skip("no writable cgroup for CPU limits here (not root, no delegated v2 subtree)")
    probe.remove()
    r = TaskRunner(RunnerConfig(workers=2, cpu_limiter="cgroup"))
    try:
        await r.start()
        yield r
    finally:
        await r.close()


@pytest_asyncio.fixture
async def duty_runner() -> AsyncIterator[TaskRunner]:
    r = TaskRunner(RunnerConfig(workers=2, cpu_limiter="duty-cycle"))
    try:
        await r.start()
        yield r
    finally:
        await r.close()


async def measure_cap(r: TaskRunner, limiter: str) -> None:
    # The control runs in the same window on the other worker, so both see the same contention.
    control, capped = await asyncio.gather(
        r.run(burn_task("control", WINDOW_S), RunLimits(cpu_cores=1.0, timeout_s=30)),
        r.run(burn_task("capped", WINDOW_S), RunLimits(cpu_cores=CAP, timeout_s=30)),
    )
    assert control.status == "completed", control.error
    assert capped.status == "completed", capped.error
    available = control.cpu_s / control.wall_s
    if available < CAP * 1.6:
        pytest.skip(f"machine too busy to measure a {CAP}-core cap (uncapped got {available:.2f})")
    assert capped.limiter == limiter
    ratio = capped.cpu_s / capped.wall_s
    # Upper bound: the cap plus scheduler granularity. A broken limiter gives ≈ `available`.
    assert ratio <= CAP * 1.15 + 0.02, f"{limiter}: {ratio:.3f} cores used under a {CAP} cap"
    # Lower bound: the cap must not starve the task far below what it was allowed.
    assert ratio >= min(CAP, available) * 0.6, f"{limiter}: only {ratio:.3f} cores"


async def test_cgroup_cap_holds(cgroup_runner: TaskRunner) -> None:
    assert cgroup_runner.limiter in ("cgroup-v1", "cgroup-v2")
    await measure_cap(cgroup_runner, cgroup_runner.limiter)


async def test_duty_cycle_cap_holds(duty_runner: TaskRunner) -> None:
    assert duty_runner.limiter == "duty-cycle"
    await measure_cap(duty_runner, "duty-cycle")


async def test_no_limiter_means_no_cap() -> None:
    async with TaskRunner(RunnerConfig(workers=1, cpu_limiter="none")) as r:
        out = await r.run(burn_task("free", 0.3), RunLimits(cpu_cores=0.1, timeout_s=30))
        assert out.status == "completed" and out.limiter == "none"
        assert r.capabilities()["cpu_limiter"] == "none"


def test_unknown_limiter_is_a_config_error() -> None:
    from fogmesh.errors import DeviceError

    with pytest.raises(DeviceError):
        TaskRunner(RunnerConfig(cpu_limiter="magic"))


def test_process_cpu_seconds_reads_proc() -> None:
    value = process_cpu_seconds(1 if Path("/proc/1/stat").exists() else 0)
    assert value is None or value >= 0
    assert process_cpu_seconds(2**22 + 12345) is None  # beyond pid_max: no such process


# ---- cgroup discovery and files, on a fake tree -------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_find_cpu_base_reads_v1_and_v2_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    write(proc / "cgroup", "4:memory:/x\n1:cpu,cpuacct:/agent\n0::/user.slice/agent.scope\n")
    write(
        proc / "mountinfo",
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
    )
    assert find_cpu_base(proc) == [
        ("cgroup-v2", Path("/sys/fs/cgroup/unified/user.slice/agent.scope")),
        ("cgroup-v1", Path("/sys/fs/cgroup/cpu,cpuacct/agent")),
    ]


def test_find_cpu_base_strips_a_container_mount_root(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    write(proc / "cgroup", "0::/pod/ctr/sub\n")
    write(proc / "mountinfo", "40 30 0:30 /pod/ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert find_cpu_base(proc) == [("cgroup-v2", Path("/sys/fs/cgroup/sub"))]


def test_v2_group_writes_cpu_max(tmp_path: Path) -> None:
    base = tmp_path / "v2"
    base.mkdir()
    group = CpuCgroup.create([("cgroup-v2", base)])
    assert group is not None and group.version == "cgroup-v2"
    assert (base / "cgroup.subtree_control").read_text() == "+cpu"
    group.set_cores(1, 0.25)
    assert (group.group / "w1" / "cpu.max").read_text() == f"25000 {PERIOD_US}"
    group.set_cores(1, None)
    assert (group.group / "w1" / "cpu.max").read_text() == f"max {PERIOD_US}"
    group.set_weight(3)
    assert (group.group / "cpu.weight").read_text() == "300"
    group.attach(1, 4242)
    assert (group.group / "w1" / "cgroup.procs").read_text() == "4242"


def test_v1_group_writes_cfs_quota(tmp_path: Path) -> None:
    base = tmp_path / "v1"
    base.mkdir()
    group = CpuCgroup.create([("cgroup-v1", base)], slots=2)
    assert group is not None and group.version == "cgroup-v1"
    assert (group.group / "cpu.shares").read_text() == "2048"
    group.set_cores(0, 1.5)
    assert (group.group / "w0" / "cpu.cfs_quota_us").read_text() == "150000"
    assert (group.group / "w0" / "cpu.cfs_period_us").read_text() == str(PERIOD_US)
    group.set_cores(0, 0.001)  # below the kernel's minimum quota
    assert (group.group / "w0" / "cpu.cfs_quota_us").read_text() == "1000"


def test_groups_of_dead_runners_are_swept(tmp_path: Path) -> None:
    base = tmp_path / "v1"
    stale = base / "fogmesh-99999999-abcdef"  # above pid_max: that runner is gone
    (stale / "w0").mkdir(parents=True)
    foreign = base / "someone-else"
    foreign.mkdir()
    group = CpuCgroup.create([("cgroup-v1", base)])
    assert group is not None
    assert not stale.exists() and foreign.exists()


def test_unwritable_base_gives_no_cgroup(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    assert CpuCgroup.create([("cgroup-v1", missing), ("cgroup-v2", missing)]) is None


def test_real_cgroup_is_removed_on_close() -> None:
    group = CpuCgroup.create()
    if group is None:
        pytest.skip("no writable cgroup here")
    try:
        group.set_cores(0, 0.5)
        assert group.group.exists()
    finally:
        group.remove()
    assert not group.group.exists()


SHARE = 0.2  # each task's own cap, and (below) the device's budget for both together


async def measure_shared_budget(r: TaskRunner, limiter: str) -> None:
    # Two tasks each allowed SHARE cores, first without a device budget (they use up to
    # 2 × SHARE: the control), then sharing a budget of SHARE: together they must stay within it.
    def both(budget: float | None) -> list[RunLimits]:
        return [RunLimits(cpu_cores=SHARE, device_cpu_cores=budget, timeout_s=30)] * 2

    async def used(budget: float | None) -> float:
        outcomes = await asyncio.gather(
            *(
                r.run(burn_task(f"{i}-{budget}", WINDOW_S), lim)
                for i, lim in enumerate(both(budget))
            )
        )
        assert all(o.status == "completed" for o in outcomes), [o.error for o in outcomes]
        assert all(o.limiter == limiter for o in outcomes)
        return sum(o.cpu_s / o.wall_s for o in outcomes)

    free = await used(None)
    if free < SHARE * 1.6:
        pytest.skip(f"machine too busy to measure a shared budget (two tasks got {free:.2f})")
    shared = await used(SHARE)
    assert shared <= SHARE * 1.15 + 0.03, f"{limiter}: {shared:.3f} cores under a {SHARE} budget"
    assert shared >= SHARE * 0.5, f"{limiter}: only {shared:.3f} cores"


async def test_cgroup_tasks_share_the_device_budget(cgroup_runner: TaskRunner) -> None:
    await measure_shared_budget(cgroup_runner, cgroup_runner.limiter)


async def test_duty_cycle_tasks_share_the_device_budget(duty_runner: TaskRunner) -> None:
    await measure_shared_budget(duty_runner, "duty-cycle")
