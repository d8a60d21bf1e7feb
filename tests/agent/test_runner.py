"""TaskRunner: payload kinds, refusals, failures as values, timeouts, cancel, close."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import psutil
import pytest
import pytest_asyncio

from fogmesh.agent import RunLimits, RunnerConfig, RunOutcome, TaskRunner
from fogmesh.fog.tasks import CommandPayload, Payload, PythonPayload, Task, TaskType

pytestmark = pytest.mark.asyncio(loop_scope="module")

W = "fogmesh.agent.workloads"
LIMITS = RunLimits(cpu_cores=1.0, memory_mb=None, timeout_s=10.0)
_ids = iter(range(1_000_000))


def task(payload: Payload | None) -> Task:
    return Task(id=f"t{next(_ids)}", type=TaskType.VALIDATION, payload=payload)


def py(function: str, **args: Any) -> Task:
    return task(PythonPayload(function=function, args=args))


def descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


async def wait_for(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runner() -> AsyncIterator[TaskRunner]:
    r = TaskRunner(
        RunnerConfig(
            workers=2, allow_commands=True, max_result_bytes=4096, max_artefact_bytes=1 << 16
        )
    )
    try:
        await r.start()
        yield r
    finally:
        await r.close()


def worker_pids(r: TaskRunner) -> set[int]:
    return {w.pid for w in r._workers.values()}


# ---- completed ---------------------------------------------------------------------------


async def test_echo_round_trip_reports_measurements(runner: TaskRunner) -> None:
    out = await runner.run(py(f"{W}:echo", x={"a": [1, 2.5, "z"]}), LIMITS)
    assert out.status == "completed", out.error
    assert out.result == {"x": {"a": [1, 2.5, "z"]}}
    assert out.error is None and out.artefact is None
    assert out.limiter in ("cgroup-v2", "cgroup-v1", "duty-cycle")
    assert out.wall_s > 0 and out.cpu_s >= 0 and out.max_rss_mb is not None
    assert out.start_latency_s is not None and out.start_latency_s < 5


async def test_real_work_matches_a_local_computation(runner: TaskRunner) -> None:
    from fogmesh.agent.workloads import matmul

    out = await runner.run(py(f"{W}.linalg:matmul", n=48, seed=3), LIMITS)
    assert out.status == "completed", out.error
    assert out.result == msgspec.json.decode(msgspec.json.encode(matmul(n=48, seed=3)))


async def test_warm_workers_are_reused(runner: TaskRunner) -> None:
    before = worker_pids(runner)
    outs = await asyncio.gather(*(runner.run(py(f"{W}:echo", x=i), LIMITS) for i in range(20)))
    assert [o.result for o in outs] == [{"x": i} for i in range(20)]
    assert worker_pids(runner) == before


async def test_big_result_comes_back_as_an_artefact(runner: TaskRunner) -> None:
    out = await runner.run(py(f"{W}:echo", x="a" * 10_000), LIMITS)
    assert out.status == "completed" and out.result is None
    assert out.artefact is not None
    assert msgspec.json.decode(out.artefact) == {"x": "a" * 10_000}


async def test_result_beyond_the_artefact_cap_fails(runner: TaskRunner) -> None:
    out = await runner.run(py(f"{W}:echo", x="b" * 200_000), LIMITS)
    assert out.status == "failed" and out.error is not None
    assert out.error["code"] == "result_too_large"


# ---- refused before anything runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (PythonPayload(function="os:system", args={"command": "true"}), "not_allowed"),
        # a prefix match must end at a module boundary
        (PythonPayload(function="fogmesh.agent.workloads_evil:x"), "not_allowed"),
        (PythonPayload(function=f"{W}._util:checksum"), "bad_function"),
        (PythonPayload(function=f"{W}:_private"), "bad_function"),
        (PythonPayload(function="no_colon"), "bad_function"),
        (None, "no_payload"),
    ],
)
async def test_refusals(runner: TaskRunner, payload: Payload | None, code: str) -> None:
    out = await runner.run(task(payload), LIMITS)
    assert out.status == "refused"
    assert out.error is not None and out.error["code"] == code
    assert out.start_latency_s is None  # no process was started for it


async def test_commands_are_refused_unless_enabled() -> None:
    r = TaskRunner(RunnerConfig(workers=1))
    try:
        out = await r.run(task(CommandPayload(argv=["true"])), LIMITS)
        assert out.status == "refused" and out.error == {
            "code": "commands_disabled",
            "reason": "this agent does not run command payloads",
        }
        assert r._workers == {}  # refused before the pool was even needed
    finally:
        await r.close()


@pytest.mark.parametrize(
    "limits",
    [
        RunLimits(cpu_cores=0, timeout_s=1),
        RunLimits(cpu_cores=1, timeout_s=0),
        RunLimits(cpu_cores=1, memory_mb=0, timeout_s=1),
        RunLimits(cpu_cores=float("inf"), timeout_s=1),
        RunLimits(cpu_cores=float("nan"), timeout_s=1),
        RunLimits(cpu_cores=1, timeout_s=float("inf")),
    ],
)
async def test_bad_limits_are_refused(runner: TaskRunner, limits: RunLimits) -> None:
    out = await runner.run(py(f"{W}:echo"), limits)
    assert out.status == "refused" and out.error is not None
    assert out.error["code"] == "bad_limits"


# ---- failures are values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "args", "code"),
    [
        (f"{W}:echo", {"nope": 1}, "bad_args"),
        (f"{W}:missing_function", {}, "import_error"),
        (f"{W}.nonexistent:f", {}, "import_error"),
        (f"{W}:matmul", {"n": -4}, "invalid_request"),
        (f"{W}:embed", {"texts": "not a list"}, "invalid_request"),
    ],
)
async def test_failures_carry_a_code_and_no_traceback(
    runner: TaskRunner, function: str, args: dict[str, Any], code: str
) -> None:
    out = await runner.run(py(function, **args), LIMITS)
    assert out.status == "failed" and out.error is not None
    assert out.error["code"] == code
    assert "Traceback" not in out.error["reason"]


async def test_non_json_result_fails_and_allow_list_is_configurable() -> None:
    async with TaskRunner(RunnerConfig(workers=1, allowed_modules=("fractions",))) as r:
        out = await r.run(py("fractions:Fraction", numerator=1, denominator=3), LIMITS)
        assert out.status == "failed" and out.error is not None
        assert out.error["code"] == "bad_result"
        refused = await r.run(py(f"{W}:echo"), LIMITS)
        assert refused.status == "refused"


async def test_duplicate_task_id_is_refused_while_running(runner: TaskRunner) -> None:
    t = py(f"{W}:burn", seconds=5.0)
    running = asyncio.Event()
    first = asyncio.create_task(runner.run(t, LIMITS, on_start=running.set))
    await asyncio.wait_for(running.wait(), 10)
    second = await runner.run(t, LIMITS)
    assert second.status == "refused" and second.error is not None
    assert second.error["code"] == "duplicate"
    assert await runner.cancel(t.id)
    assert (await first).status == "cancelled"


# ---- time, cancel, memory -------------------------------------------------------------------


async def test_timeout_kills_the_task_and_the_pool_stays_warm(runner: TaskRunner) -> None:
    before = worker_pids(runner)
    t0 = time.monotonic()
    out = await runner.run(py(f"{W}:burn", seconds=60.0), RunLimits(cpu_cores=1, timeout_s=0.5))
    assert out.status == "timeout" and out.error is not None and out.error["code"] == "timeout"
    assert 0.45 <= out.wall_s < 3.0 and time.monotonic() - t0 < 5.0
    assert worker_pids(runner) == before  # only the forked task process died
    assert (await runner.run(py(f"{W}:echo", x=1), LIMITS)).result == {"x": 1}


async def test_cancel_running_task_kills_its_process(runner: TaskRunner) -> None:
    t = py(f"{W}:burn", seconds=60.0)
    running = asyncio.Event()
    fut = asyncio.create_task(runner.run(t, LIMITS, on_start=running.set))
    await asyncio.wait_for(running.wait(), 10)
    busy = runner._active[t.id].worker
    assert busy is not None
    task_pids = {p.pid for p in psutil.Process(busy.pid).children()}
    assert task_pids  # the forked task process exists
    assert await runner.cancel(t.id)
    out = await asyncio.wait_for(fut, 10)
    assert out.status == "cancelled" and out.error is not None
    assert out.error["code"] == "cancelled"
    await wait_for(lambda: not any(psutil.pid_exists(p) for p in task_pids))
    assert not await runner.cancel(t.id)
    assert not await runner.cancel("never-seen")


async def test_cancel_queued_task_never_starts() -> None:
    async with TaskRunner(RunnerConfig(workers=1)) as r:
        busy = py(f"{W}:burn", seconds=60.0)
        running = asyncio.Event()
        busy_fut = asyncio.create_task(r.run(busy, LIMITS, on_start=running.set))
        await asyncio.wait_for(running.wait(), 10)
        started = []
        queued = py(f"{W}:echo", x=1)
        queued_fut = asyncio.create_task(r.run(queued, LIMITS, on_start=lambda: started.append(1)))
        await wait_for(lambda: queued.id in r._active)
        assert await r.cancel(queued.id)
        out = await asyncio.wait_for(queued_fut, 5)
        assert out.status == "cancelled" and out.start_latency_s is None and started == []
        assert await r.cancel(busy.id)
        assert (await asyncio.wait_for(busy_fut, 10)).status == "cancelled"


async def test_memory_cap_kills_an_overallocating_task(runner: TaskRunner) -> None:
    before = worker_pids(runner)
    capped = RunLimits(cpu_cores=1, memory_mb=64, timeout_s=20)
    over = await runner.run(py(f"{W}:allocate", mb=256), capped)
    assert over.status == "killed" and over.error is not None
    assert over.error["code"] == "memory_limit"
    under = await runner.run(py(f"{W}:allocate", mb=16), capped)
    assert under.status == "completed" and under.result["mb"] == 16
    # the same allocation without a cap succeeds: the cap, not the machine, stopped it
    free = await runner.run(py(f"{W}:allocate", mb=256), RunLimits(cpu_cores=1, timeout_s=20))
    assert free.status == "completed", free.error
    assert free.max_rss_mb is not None and free.max_rss_mb > 256
    assert worker_pids(runner) == before


async def test_a_dead_worker_is_replaced(runner: TaskRunner) -> None:
    t = py(f"{W}:burn", seconds=60.0)
    running = asyncio.Event()
    fut = asyncio.create_task(runner.run(t, LIMITS, on_start=running.set))
    await asyncio.wait_for(running.wait(), 10)
    victim = runner._active[t.id].worker
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    out = await asyncio.wait_for(fut, 10)
    assert out.status == "failed" and out.error is not None
    assert out.error["code"] == "worker_lost"
    await wait_for(lambda: runner._workers[victim.index].pid != victim.pid, within=30)
    outs = await asyncio.gather(*(runner.run(py(f"{W}:echo", x=i), LIMITS) for i in range(4)))
    assert all(o.status == "completed" for o in outs)


async def test_cancelling_the_caller_stops_the_task_and_replaces_its_worker(
    runner: TaskRunner,
) -> None:
    running = asyncio.Event()
    t = py(f"{W}:burn", seconds=60.0)
    fut = asyncio.create_task(runner.run(t, LIMITS, on_start=running.set))
    await asyncio.wait_for(running.wait(), 10)
    busy = runner._active[t.id].worker
    assert busy is not None
    task_pids = {p.pid for p in psutil.Process(busy.pid).children()}
    fut.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fut
    await wait_for(lambda: not any(psutil.pid_exists(p) for p in task_pids | {busy.pid}))
    await wait_for(lambda: runner._workers[busy.index].pid != busy.pid, within=30)
    outs = await asyncio.gather(*(runner.run(py(f"{W}:echo", x=i), LIMITS) for i in range(4)))
    assert [o.result for o in outs] == [{"x": i} for i in range(4)]


async def test_a_failing_on_start_hook_does_not_strand_the_task(runner: TaskRunner) -> None:
    def hook() -> None:
        raise RuntimeError("daemon bug")

    out = await runner.run(py(f"{W}:echo", x=5), LIMITS, on_start=hook)
    assert out.status == "completed" and out.result == {"x": 5}


async def test_task_process_is_kept_between_tasks_and_replaced_after_a_kill() -> None:
    config = RunnerConfig(workers=1, allowed_modules=("os", W))
    async with TaskRunner(config) as r:
        worker_pid = next(iter(worker_pids(r)))

        async def task_pid() -> int:
            out = await r.run(py("os:getpid"), LIMITS)
            assert out.status == "completed", out.error
            assert isinstance(out.result, int)
            return out.result

        first = await task_pid()
        assert first != worker_pid  # task code never runs in the warm worker itself
        capped = RunLimits(cpu_cores=1, memory_mb=64, timeout_s=20)
        assert (await r.run(py(f"{W}:allocate", mb=16), capped)).status == "completed"
        # the cap was lifted after that task: the same process can now allocate more
        big = await r.run(py(f"{W}:allocate", mb=256), LIMITS)
        assert big.status == "completed", big.error
        assert await task_pid() == first
        over = await r.run(py(f"{W}:allocate", mb=256), capped)
        assert over.status == "killed"
        after_kill = await task_pid()
        assert after_kill != first
        short = RunLimits(cpu_cores=1, timeout_s=0.3)
        assert (await r.run(py(f"{W}:burn", seconds=30.0), short)).status == "timeout"
        assert await task_pid() not in (first, after_kill)
        assert worker_pids(r) == {worker_pid}


async def test_fresh_process_per_task_when_reuse_is_off() -> None:
    config = RunnerConfig(workers=1, allowed_modules=("os",), reuse_task_process=False)
    async with TaskRunner(config) as r:
        pids = [(await r.run(py("os:getpid"), LIMITS)).result for _ in range(3)]
        assert len(set(pids)) == 3


# ---- commands ----------------------------------------------------------------------------


async def test_command_payloads(runner: TaskRunner) -> None:
    ok = await runner.run(task(CommandPayload(argv=["echo", "hello fog"])), LIMITS)
    assert ok.status == "completed", ok.error
    assert ok.result == {"returncode": 0, "stdout": "hello fog\n", "stderr": ""}
    bad = await runner.run(task(CommandPayload(argv=["sh", "-c", "echo oops >&2; exit 3"])), LIMITS)
    assert bad.status == "failed" and bad.error is not None
    assert bad.error["code"] == "command_failed" and "exit status 3: oops" in bad.error["reason"]
    missing = await runner.run(task(CommandPayload(argv=["/nonexistent/binary"])), LIMITS)
    assert missing.status == "failed" and missing.error is not None
    assert missing.error["code"] == "exec_failed"
    # a pipeline inside the command gets SIGPIPE like it would from a shell
    piped = await runner.run(task(CommandPayload(argv=["sh", "-c", "yes | head -n 2"])), LIMITS)
    assert piped.status == "completed" and piped.result["stdout"] == "y\ny\n"
    assert piped.result["stderr"] == ""
    slow = await runner.run(
        task(CommandPayload(argv=["sleep", "30"])), RunLimits(cpu_cores=1, timeout_s=0.3)
    )
    assert slow.status == "timeout"


# ---- lifecycle ---------------------------------------------------------------------------


async def test_capabilities_describe_the_runner(runner: TaskRunner) -> None:
    caps = runner.capabilities()
    assert caps["cpu_limiter"] == runner.limiter
    assert caps["allowed_modules"] == [W]
    assert caps["allow_commands"] is True and "command" in caps["payloads"]
    assert caps["memory_limiter"] == "rlimit-as"
    assert isinstance(caps["onnx"], bool)


async def test_close_mid_task_leaves_no_process_and_no_cgroup() -> None:
    r = TaskRunner(RunnerConfig(workers=2))
    await r.start()
    group = r._cgroup.group if r._cgroup is not None else None
    running = asyncio.Event()
    fut = asyncio.create_task(r.run(py(f"{W}:burn", seconds=60.0), LIMITS, on_start=running.set))
    await asyncio.wait_for(running.wait(), 10)
    ours = set()
    for w in r._workers.values():
        ours |= {w.pid} | {p.pid for p in psutil.Process(w.pid).children(recursive=True)}
    assert len(ours) == 3  # two workers and one task process
    await r.close()
    out: RunOutcome = await asyncio.wait_for(fut, 10)
    assert out.status == "cancelled"
    await wait_for(lambda: not ours & {p.pid for p in descendants()})
    assert not any(psutil.pid_exists(p) for p in ours)
    if group is not None:
        assert not group.exists()
    await r.close()  # idempotent
    late = await r.run(py(f"{W}:echo"), LIMITS)
    assert late.status == "refused" and late.error is not None
    assert late.error["code"] == "runner_closed"


async def test_close_while_starting_leaves_no_process() -> None:
    before = {p.pid for p in descendants()}
    r = TaskRunner(RunnerConfig(workers=2))
    starting = asyncio.create_task(r.start())
    await wait_for(lambda: len({p.pid for p in descendants()} - before) >= 2)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await r.close()
    await wait_for(lambda: not ({p.pid for p in descendants()} - before))
