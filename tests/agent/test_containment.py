"""Nothing a task starts outlives it: not its end, a timeout, a cancel, the runner's close or the
agent's SIGTERM — by cgroup where this process can make one, by subreaper sweep where not.

Every leftover here is a ``sleep <marker>`` started in a session of its own (out of reach of the
task's process-group kill); the ``marker`` fixture kills any such process whatever the outcome.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from containment_helpers import living, with_marker
from daemon_helpers import join_token, running_coordinator
from leaky_tasks import MODULE

from fogmesh.agent import RunLimits, RunnerConfig, RunOutcome, TaskRunner
from fogmesh.agent._cgroup import find_cpu_base
from fogmesh.fog.tasks import CommandPayload, Payload, PythonPayload, Task, TaskType

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = Path(__file__).resolve().parent
LIMITS = RunLimits(cpu_cores=1.0, memory_mb=256, timeout_s=20.0)
# (cpu_limiter, containment). cgroup-cpu: the CPU group contains the tasks (v1 here, as root);
# cgroup-only: no CPU group, a group made only to contain them (here: the v2 hierarchy, which
# has no cpu controller, so cgroup.kill); process-tree: no cgroup at all, so the fallback
# (process-group kill + subreaper sweep) is all there is. Without writable cgroups the first
# two are the fallback too.
SETUPS = {
    "cgroup-cpu": ("auto", "auto"),
    "cgroup-only": ("duty-cycle", "auto"),
    "process-tree": ("duty-cycle", "process-tree"),
}
_ids = iter(range(1_000_000))


def task(payload: Payload) -> Task:
    return Task(id=f"c{next(_ids)}", type=TaskType.VALIDATION, payload=payload)


def leaky(function: str, **args: Any) -> Task:
    return task(PythonPayload(function=f"{MODULE}:{function}", args=args))


def command(*argv: str) -> Task:
    return task(CommandPayload(argv=list(argv)))


async def wait_for(cond: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module", autouse=True)
def importable_here() -> Iterator[None]:
    """Workers (and agents) started by these tests can import ``leaky_tasks``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
        yield


def runner_config(setup: str, workers: int = 1) -> RunnerConfig:
    limiter, containment = SETUPS[setup]
    return RunnerConfig(
        allowed_modules=("fogmesh.agent.workloads", MODULE),
        allow_commands=True,
        workers=workers,
        cpu_limiter=limiter,
        containment=containment,
    )


def check_setup(r: TaskRunner, setup: str) -> None:
    assert r.capabilities()["containment"] == r.containment
    if setup == "process-tree":
        assert r._cgroup is None and r.containment == "process-tree"
    elif setup == "cgroup-only" and r._cgroup is not None:
        assert not r._cgroup.cpu and r.limiter == "duty-cycle"


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=list(SETUPS))
async def runner(request: pytest.FixtureRequest) -> AsyncIterator[TaskRunner]:
    r = TaskRunner(runner_config(request.param))
    try:
        await r.start()
        check_setup(r, request.param)
        yield r
    finally:
        await r.close()


def group_pids(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def slot_holds_only_the_kept_process(r: TaskRunner) -> bool:
    if r._cgroup is None:
        return True
    worker = r._workers[0]
    kept = {p.pid for p in psutil.Process(worker.pid).children()}
    return set(group_pids(r._cgroup.slot(0))) <= kept and len(kept) <= 1


# ---- a task's end --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["session_child", "double_fork"])
async def test_a_python_task_that_ends_takes_its_children_with_it(
    runner: TaskRunner, marker: str, how: str
) -> None:
    first = await runner.run(leaky("spawn_session_child", marker=marker), LIMITS)
    if how == "double_fork":
        first = await runner.run(leaky("double_fork", marker=marker), LIMITS)
    assert first.status == "completed", first.error
    # At once, not eventually: the task's result is only sent once its processes are gone.
    assert with_marker(marker) == []
    assert slot_holds_only_the_kept_process(runner)
    # The kept task process serves the next task, and that one sees nothing of the last.
    kept = {p.pid for p in psutil.Process(runner._workers[0].pid).children()}
    again = await runner.run(leaky("spawn_session_child", marker=marker), LIMITS)
    assert again.status == "completed" and with_marker(marker) == []
    assert {p.pid for p in psutil.Process(runner._workers[0].pid).children()} == kept


async def test_a_command_that_ends_takes_its_children_with_it(
    runner: TaskRunner, marker: str
) -> None:
    out = await runner.run(command("setsid", "-f", "sleep", marker), LIMITS)
    assert out.status == "completed", out.error
    assert with_marker(marker) == []
    assert slot_holds_only_the_kept_process(runner)


@pytest.mark.parametrize("kind", ["python", "command"])
@pytest.mark.parametrize("end", ["timeout", "cancelled"])
async def test_a_task_stopped_takes_its_children_with_it(
    runner: TaskRunner, marker: str, kind: str, end: str
) -> None:
    if kind == "python":
        t = leaky("spawn_session_child", marker=marker, then_sleep=60.0)
    else:
        t = command("sh", "-c", f"setsid -f sleep {marker}; sleep 60")
    # Long enough for the child to be seen before the kill, even on a loaded machine.
    limits = RunLimits(cpu_cores=1.0, timeout_s=60.0 if end == "cancelled" else 3.0)
    run = asyncio.create_task(runner.run(t, limits))
    await wait_for(lambda: bool(living(marker)))
    if end == "cancelled":
        assert await runner.cancel(t.id)
    out: RunOutcome = await asyncio.wait_for(run, 30)
    assert out.status == end, out.error
    assert with_marker(marker) == []
    assert slot_holds_only_the_kept_process(runner)


async def test_a_worker_replaced_mid_task_takes_its_tasks_children_with_it(
    runner: TaskRunner, marker: str
) -> None:
    t = leaky("spawn_session_child", marker=marker, then_sleep=60.0)
    run = asyncio.create_task(runner.run(t, RunLimits(cpu_cores=1.0, timeout_s=60.0)))
    await wait_for(lambda: bool(living(marker)))
    old = runner._workers[0].pid
    run.cancel()  # the caller gives up: its worker may still be busy, so it is killed, replaced
    with pytest.raises(asyncio.CancelledError):
        await run
    await wait_for(lambda: 0 in runner._workers and runner._workers[0].pid != old, within=30)
    await wait_for(lambda: not living(marker))
    out = await runner.run(leaky("spawn_session_child", marker=marker), LIMITS)
    assert out.status == "completed" and with_marker(marker) == []


# ---- crashes -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["python", "command"])
async def test_a_segfault_under_a_memory_cap_is_a_crash_not_a_memory_kill(
    runner: TaskRunner, kind: str
) -> None:
    t = leaky("segfault") if kind == "python" else command("sh", "-c", "kill -SEGV $$")
    out = await runner.run(t, LIMITS)  # LIMITS carries a memory cap
    assert out.status == "failed" and out.error is not None, out
    assert out.error["code"] == "crashed"
    assert "SIGSEGV" in out.error["reason"]


# ---- the runner's close ------------------------------------------------------------------


@pytest.mark.parametrize("setup", list(SETUPS))
async def test_close_ends_what_running_tasks_started_and_removes_the_groups(
    marker: str, setup: str
) -> None:
    r = TaskRunner(runner_config(setup, workers=2))
    try:
        await r.start()
        check_setup(r, setup)
        group = None if r._cgroup is None else r._cgroup.group
        long = RunLimits(cpu_cores=1.0, timeout_s=60.0)
        runs = [
            asyncio.create_task(
                r.run(leaky("spawn_session_child", marker=marker, then_sleep=60.0), long)
            ),
            asyncio.create_task(
                r.run(command("sh", "-c", f"setsid -f sleep {marker}; sleep 60"), long)
            ),
        ]
        await wait_for(lambda: len(living(marker)) == 2)
    finally:
        await r.close()
    outs = await asyncio.gather(*runs)
    assert [o.status for o in outs] == ["cancelled", "cancelled"]
    assert with_marker(marker) == []
    if group is not None:
        assert not group.exists()


async def test_close_after_a_worker_is_stopped_still_ends_its_tasks_children(
    marker: str,
) -> None:
    """A worker that cannot sweep (here: stopped, so it never answers the runner's Exit) is
    killed; what its tasks started goes with it."""
    r = TaskRunner(runner_config("process-tree"))
    try:
        await r.start()
        run = asyncio.create_task(
            r.run(
                leaky("spawn_session_child", marker=marker, then_sleep=60.0),
                RunLimits(cpu_cores=1.0, timeout_s=60.0),
            )
        )
        await wait_for(lambda: bool(living(marker)))
        os.kill(r._workers[0].pid, signal.SIGSTOP)
    finally:
        await r.close()
    await asyncio.gather(run, return_exceptions=True)
    await wait_for(lambda: not living(marker))


# ---- the agent's SIGTERM -----------------------------------------------------------------

# The command module is loaded by path (as in tests/e2e): importing the fogmesh.cli package would
# import every command group's dependencies.
_CLI = HERE.parents[1] / "src" / "fogmesh" / "cli" / "agent.py"
_RUN = (
    "import importlib.util as u, sys, typer; "
    "s = u.spec_from_file_location('_fogmesh_cmd', sys.argv[1]); m = u.module_from_spec(s); "
    "s.loader.exec_module(m); f = getattr(m, sys.argv[2]); sys.argv[1:3] = []; typer.run(f)"
)


def _all_pids(group: Path) -> list[int]:
    return [pid for slot in [group, *group.iterdir()] if slot.is_dir() for pid in group_pids(slot)]


def _groups_of(pid: int) -> list[Path]:
    return [
        group
        for _, base in find_cpu_base()
        if base.is_dir()
        for group in base.glob(f"fogmesh-{pid}-*")
    ]


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_the_agents_end_ends_what_its_tasks_started(
    tmp_path: Path, marker: str, setup: str, sig: signal.Signals
) -> None:
    """SIGTERM: the agent closes its runner. SIGKILL: nothing of the agent runs any more; its
    workers see their pipe close and end their tasks and what those started themselves."""
    limiter, containment = SETUPS[setup]
    async with running_coordinator(tmp_path / "coord") as service:
        env = {
            **os.environ,
            "FOGMESH_TEST_LIMITER": limiter,
            "FOGMESH_TEST_CONTAINMENT": containment,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("FOGMESH_PROFILE", None)
        argv = [
            sys.executable, "-c", _RUN, str(_CLI), "agent",
            "--data-dir", str(tmp_path / "agent"),
            "--join", join_token(service),
            "--profile", "desktop",
            "--heartbeat", "0.5",
            "--stop-grace", "0",
            "--runner", f"{MODULE}:make_runner",
            "--log-level", "warning",
        ]  # fmt: skip
        log = (tmp_path / "agent.log").open("wb")
        agent = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            for payload in (
                {
                    "type": "python",
                    "function": f"{MODULE}:spawn_session_child",
                    "args": {"marker": marker, "then_sleep": 60.0},
                },
                {"type": "command", "argv": ["sh", "-c", f"setsid -f sleep {marker}; sleep 60"]},
            ):
                await service.coordinator.submit_task(
                    "inference", cpu_cores=0.2, estimated_duration=60, payload=payload
                )
            await wait_for(lambda: len(living(marker)) == 2, within=60)
            if setup == "process-tree":
                assert _groups_of(agent.pid) == []
            agent.send_signal(sig)
            await asyncio.wait_for(agent.wait(), 30)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
            log.close()
        if sig == signal.SIGTERM:
            assert agent.returncode == 0, (tmp_path / "agent.log").read_text()[-2000:]
            assert with_marker(marker) == []
            assert _groups_of(agent.pid) == []
        else:
            # Its workers outlive it only until they read the end of their pipe; its groups
            # stay (nothing of it runs to remove them) until the next runner's start sweeps.
            await wait_for(lambda: not living(marker))
            for group in _groups_of(agent.pid):
                assert not _all_pids(group), group
                for slot in [*group.iterdir(), group]:
                    if slot.is_dir():
                        slot.rmdir()
