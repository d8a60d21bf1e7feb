"""TaskRunner: short tasks wait in a busy worker's own queue; the running cap holds; a queued
task can be cancelled unstarted and survives its worker's death; task processes, not workers,
carry the CPU cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from fogmesh.agent import RunLimits, RunnerConfig, RunOutcome, TaskRunner
from fogmesh.agent.runner import PREFETCH_MAX_S
from fogmesh.fog.tasks import PythonPayload, Task, TaskResources, TaskType

pytestmark = pytest.mark.asyncio(loop_scope="module")

W = "fogmesh.agent.workloads"
LIMITS = RunLimits(cpu_cores=1.0, timeout_s=30.0)
_ids = iter(range(1_000_000))


def short(function: str, **args: Any) -> Task:
    return Task(
        id=f"p{next(_ids)}",
        type=TaskType.VALIDATION,
        resources=TaskResources(estimated_duration=PREFETCH_MAX_S),
        payload=PythonPayload(function=f"{W}:{function}", args=args),
    )


def long(function: str, **args: Any) -> Task:
    return Task(
        id=f"l{next(_ids)}",
        type=TaskType.VALIDATION,
        resources=TaskResources(estimated_duration=PREFETCH_MAX_S * 10),
        payload=PythonPayload(function=f"{W}:{function}", args=args),
    )


async def wait_for(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def running(
    r: TaskRunner, task: Task, limits: RunLimits = LIMITS
) -> asyncio.Task[RunOutcome]:
    """``task`` handed to ``r``, once its process runs."""
    started = asyncio.Event()
    fut = asyncio.create_task(r.run(task, limits, on_start=started.set))
    await asyncio.wait_for(started.wait(), 10)
    return fut


def queued_on(r: TaskRunner, task_id: str) -> int | None:
    """The worker index whose queue holds ``task_id`` (handed over, not started)."""
    for index, lane in r._lanes.items():
        flight = lane.flights.get(task_id)
        if flight is not None and flight.started is None:
            return index
    return None


async def test_a_short_task_waits_in_the_busy_workers_queue_and_starts_after() -> None:
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        first = short("burn", seconds=0.4)
        first_fut = await running(r, first)
        started: list[float] = []
        second = short("echo", x=7)
        second_fut = asyncio.create_task(
            r.run(second, LIMITS, on_start=lambda: started.append(time.monotonic()))
        )
        # handed to the busy worker at once, where it waits unstarted
        await wait_for(lambda: queued_on(r, second.id) == 0)
        assert started == []
        out = await asyncio.wait_for(first_fut, 10)
        assert out.status == "completed"
        done = await asyncio.wait_for(second_fut, 10)
        assert done.status == "completed" and done.result == {"x": 7}
        # it started when the first one ended, in the worker (most of the 0.4 s burn later)
        assert len(started) == 1
        assert done.start_latency_s is not None and done.start_latency_s > 0.2


async def test_long_tasks_are_never_queued_behind_another() -> None:
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        first = long("burn", seconds=0.3)
        first_fut = await running(r, first)
        second = long("echo", x=1)
        second_fut = asyncio.create_task(r.run(second, LIMITS))
        await wait_for(lambda: second.id in r._active)
        await asyncio.sleep(0.1)
        assert [len(lane.flights) for lane in r._lanes.values()] == [1]
        assert (await asyncio.wait_for(first_fut, 10)).status == "completed"
        assert (await asyncio.wait_for(second_fut, 10)).result == {"x": 1}


async def test_the_running_cap_holds_whatever_the_number_of_workers() -> None:
    async with TaskRunner(RunnerConfig(workers=3)) as r:
        spans: list[tuple[float, float]] = []

        async def one(t: Task) -> None:
            called = time.monotonic()
            out = await r.run(t, LIMITS, running_cap=2)
            assert out.status == "completed", out.error
            assert out.start_latency_s is not None
            start = called + out.start_latency_s  # the worker's clock: CLOCK_MONOTONIC too
            # Both ends are the worker's readings around the hand-over, which a busy machine
            # can delay by a few milliseconds: trimmed by 10 ms so that back-to-back tasks of
            # one worker do not seem to overlap (a third task running beside two others would
            # overlap them by most of its 100 ms).
            spans.append((start + 0.01, start + out.wall_s - 0.01))

        await asyncio.gather(*(one(short("burn", seconds=0.1)) for _ in range(12)))
        # the most tasks running at one moment (ties: an end before a start)
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        running = most = 0
        for _, step in edges:
            running += step
            most = max(most, running)
        assert most == 2, sorted(spans)


async def test_a_task_cancelled_in_a_workers_queue_never_runs() -> None:
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        busy = short("burn", seconds=60.0)
        busy_fut = await running(r, busy)
        started: list[int] = []
        queued = short("echo", x=1)
        queued_fut = asyncio.create_task(r.run(queued, LIMITS, on_start=lambda: started.append(1)))
        await wait_for(lambda: queued_on(r, queued.id) == 0)
        assert await r.cancel(queued.id)
        out = await asyncio.wait_for(queued_fut, 5)
        assert out.status == "cancelled" and out.error is not None
        assert out.error["reason"] == "cancelled before it started"
        assert started == [] and out.start_latency_s is None
        assert await r.cancel(busy.id)
        assert (await asyncio.wait_for(busy_fut, 10)).status == "cancelled"
        # the worker lived on and serves the next task
        assert (await r.run(short("echo", x=2), LIMITS)).result == {"x": 2}


async def test_a_task_queued_behind_a_lost_worker_runs_on_its_replacement() -> None:
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        doomed = short("burn", seconds=60.0)
        doomed_fut = await running(r, doomed)
        queued = short("echo", x=3)
        queued_fut = asyncio.create_task(r.run(queued, LIMITS))
        await wait_for(lambda: queued_on(r, queued.id) == 0)
        victim = r._workers[0]
        psutil.Process(victim.pid).kill()
        lost = await asyncio.wait_for(doomed_fut, 10)
        assert lost.status == "failed" and lost.error is not None
        assert lost.error["code"] == "worker_lost"
        # it never started, so it is not lost with the worker: the new worker runs it
        out = await asyncio.wait_for(queued_fut, 30)
        assert out.status == "completed" and out.result == {"x": 3}
        assert r._workers[0].pid != victim.pid


def _read(path: Path) -> str:
    return path.read_text()


def _cgroup_lines(pid: int) -> set[str]:
    return set(_read(Path(f"/proc/{pid}/cgroup")).splitlines())


async def test_task_processes_carry_the_cpu_cap_and_the_worker_does_not() -> None:
    async with TaskRunner(RunnerConfig(workers=1, cpu_limiter="auto")) as r:
        if not r.limiter.startswith("cgroup"):
            pytest.skip(f"no writable cgroup here (limiter: {r.limiter})")
        t = short("burn", seconds=60.0)
        fut = await running(r, t, RunLimits(cpu_cores=0.5))
        worker = r._workers[0]
        (task_proc,) = psutil.Process(worker.pid).children()
        assert r._cgroup is not None
        procs = r._cgroup.procs_file(0)
        slot_pids = {int(p) for p in _read(procs).split()}
        assert task_proc.pid in slot_pids
        assert worker.pid not in slot_pids
        assert _cgroup_lines(worker.pid) == _cgroup_lines(psutil.Process().pid)
        assert await r.cancel(t.id)
        assert (await asyncio.wait_for(fut, 10)).status == "cancelled"
