"""The device-side task runner: real work, under limits the device enforces itself.

``TaskRunner.run(task, limits)`` takes a ``python``, ``model`` or ``command`` payload, runs it in
a warm worker pool and returns a ``RunOutcome`` — it never raises for a task's own failure.

How limits are enforced (docs/runner.md has the full story):

* each warm worker imports once and runs tasks in a forked *task process* it supervises; a
  python task process is kept for the next task until a limit kills it (then the next task gets
  a fresh fork), so the pool stays warm and a tiny task costs a pipe hand-over, not a fork;
* CPU: cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us`` on the worker's slot group when this
  process can create and write one (checked at start), otherwise SIGSTOP/SIGCONT duty-cycling
  driven by the task's measured CPU time;
* memory: soft RLIMIT_AS in the task process for the task's duration — the cap is what the task
  may add to the address space it inherited from the warm worker;
* wall clock: the worker kills the task's process group at the deadline; the runner kills and
  replaces the whole worker if the worker itself stops answering;
* containment: nothing a task starts outlives it, in a session of its own included — the
  worker's cgroup slot is emptied (the CPU group, or a group made only for this where CPU caps
  do not use one), and the worker and kept task processes are subreapers that kill their
  orphans (all there is where no cgroup can be made: ``_reaper``).

A worker runs one task at a time. A *short* task (estimated at most ``PREFETCH_MAX_S``) may be
handed to a worker busy with another short one, to wait in the worker's own queue
(``PREFETCH`` deep): it then starts the moment the one ahead ends, without waiting for this
process to read the result and send the next task — on a loaded device that hand-back costs
more than a tiny task itself. Tasks running at once never exceed the ``running_cap`` the
caller passes (the device policy's concurrent tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec

from fogmesh.agent._cgroup import CpuCgroup
from fogmesh.agent._dutycycle import process_cpu_seconds
from fogmesh.agent._ipc import Done, Kill, Ready, Run, Started
from fogmesh.agent._pool import Worker
from fogmesh.devices.model import Accepts
from fogmesh.errors import DeviceError
from fogmesh.fog.tasks import CommandPayload, ModelPayload, PythonPayload, Task

__all__ = [
    "CONTAINMENTS",
    "LIMITERS",
    "PREFETCH",
    "PREFETCH_MAX_S",
    "RunLimits",
    "RunOutcome",
    "RunnerConfig",
    "TaskRunner",
]

log = logging.getLogger(__name__)

LIMITERS: Final = ("auto", "cgroup", "duty-cycle", "none")
CONTAINMENTS: Final = ("auto", "cgroup", "process-tree")
_BACKSTOP_S: Final = 5.0  # extra wall time before the runner stops trusting a worker
# Private: reachable only through a model payload, never named by a python payload.
_INFER: Final = ("fogmesh.agent._inference", "run_cached_model")
_MAX_CORES: Final = 1024.0  # same bound as TaskResources validation; also rules out inf/NaN
_MAX_TIMEOUT_S: Final = 7 * 24 * 3600.0
PREFETCH: Final = 4  # short tasks a busy worker may hold queued behind the one it runs
PREFETCH_MAX_S: Final = 2.0  # "short": estimated at most this long (the scheduler's queue rule)


class RunLimits(msgspec.Struct, frozen=True, kw_only=True):
    cpu_cores: float  # CPU the task may use, in cores (0.7 = 70 % of one core)
    # The device's CPU budget for all fog work together (the policy's cores × CPU %): the tasks
    # running at once share it, whatever each one's own cap. None = no shared cap. The scheduler
    # may reserve up to half a core past it (NodeView.cpu_fit); this is what keeps the device
    # itself within it.
    device_cpu_cores: float | None = None
    memory_mb: int | None = None  # address space the task may add; None = no cap
    timeout_s: float = 60.0  # wall-clock limit, from the moment a worker takes the task


class RunOutcome(msgspec.Struct, kw_only=True):
    status: str  # completed | failed | timeout | killed | cancelled | refused
    result: Any = None
    error: dict[str, Any] | None = None  # {"code", "reason"} unless completed
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float | None = None  # task process peak RSS (a kept process: peak so far)
    limiter: str = "none"  # how the CPU cap was enforced: cgroup-v2 | cgroup-v1 | duty-cycle
    artefact: bytes | None = None  # JSON bytes of a result larger than max_result_bytes
    start_latency_s: float | None = None  # run() called → task process running (queue included)


class RunnerConfig(msgspec.Struct, frozen=True, kw_only=True):
    allowed_modules: tuple[str, ...] = ("fogmesh.agent.workloads",)
    allow_commands: bool = False
    workers: int = 2
    max_result_bytes: int = 1 << 20
    max_artefact_bytes: int = 64 << 20  # beyond this a result is refused, not uploaded
    model_resolver: Callable[[str], Path | None] | None = None
    cpu_limiter: str = "auto"  # auto | cgroup | duty-cycle | none
    # How a task's leftover processes are found and ended: auto = a cgroup where one can be
    # made, else process-tree (subreapers); process-tree makes no cgroup for this (a cgroup CPU
    # limiter's group contains the tasks anyway); cgroup = fail start-up without one.
    containment: str = "auto"
    preload: tuple[str, ...] = ("fogmesh.agent.workloads",)  # imported once per worker
    # Keep a python task's process for the next task (fast); False = a fresh fork per task
    # (no state can pass from one task to the next, ~5–20 ms more per task).
    reuse_task_process: bool = True


def _refused(code: str, reason: str) -> RunOutcome:
    return RunOutcome(status="refused", error={"code": code, "reason": reason})


def _failed(code: str, reason: str) -> RunOutcome:
    return RunOutcome(status="failed", error={"code": code, "reason": reason})


_DUTY_FLOOR_CORES = 0.05


class _Active:
    __slots__ = ("cancelled", "cores", "worker")

    def __init__(self, cores: float = 0.0) -> None:
        self.cancelled = False
        self.cores = cores  # the CPU it may use (its cap once running)
        self.worker: Worker | None = None


class _WorkerLost(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Flight:
    """A task handed to a worker: it runs there, or waits in the worker's queue."""

    __slots__ = ("budget_s", "done", "entry", "msg", "on_start", "short", "started")

    def __init__(
        self,
        msg: Run,
        entry: _Active,
        on_start: Callable[[], None] | None,
        short: bool,
        budget_s: float,
    ) -> None:
        self.msg = msg
        self.entry = entry
        self.on_start = on_start
        self.short = short
        self.budget_s = budget_s  # how long it may take before the worker is presumed hung
        self.started: Started | None = None
        self.done: asyncio.Future[Done] = asyncio.get_running_loop().create_future()


class _Lane:
    """One worker process and the tasks handed to it, in order (the first one runs)."""

    __slots__ = ("caps", "flights", "reader", "worker")

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.flights: dict[str, _Flight] = {}
        self.caps: tuple[float, float | None] | None = None  # cgroup caps last written
        self.reader: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return self.worker.healthy and self.worker.proc.returncode is None


class TaskRunner:
    """Runs tasks in a warm process pool with per-task CPU, memory and time limits."""

    def __init__(self, config: RunnerConfig | None = None) -> None:
        self.config = config or RunnerConfig()
        if self.config.cpu_limiter not in LIMITERS:
            raise DeviceError(f"cpu_limiter must be one of {', '.join(LIMITERS)}")
        if self.config.containment not in CONTAINMENTS:
            raise DeviceError(f"containment must be one of {', '.join(CONTAINMENTS)}")
        if self.config.workers < 1:
            raise DeviceError("workers must be ≥ 1")
        self.limiter = "none"
        self.containment = "none"  # cgroup-v2 | cgroup-v1 | process-tree, once started
        self._cgroup: CpuCgroup | None = None
        self._workers: dict[int, Worker] = {}
        self._lanes: dict[int, _Lane] = {}
        self._room = asyncio.Event()  # set (and replaced) whenever a worker may take a task
        self._active: dict[str, _Active] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._closing = False  # shutting down (closed, or a failed start): no replacements
        self._ncpu = os.cpu_count() or 1
        self._start_lock = asyncio.Lock()
        self._onnx: bool | None = None  # onnxruntime is installed (looked up on first ask)

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._started or self._closed:
                return
            self.limiter = self._choose_limiter()
            self.containment = self._choose_containment()
            self._closing = False
            try:
                workers = await asyncio.gather(
                    *(self._spawn(i) for i in range(self.config.workers)),
                    return_exceptions=True,
                )
                errors = [w for w in workers if isinstance(w, BaseException)]
                for w in workers:
                    if isinstance(w, Worker):
                        self._add_lane(w)
                if errors:
                    raise DeviceError(f"could not start the worker pool: {errors[0]}")
            except BaseException:
                await self._shutdown()
                raise
            self._started = True

    async def _spawn(self, index: int) -> Worker:
        group: str | None = None
        if self._cgroup is not None:
            try:
                group = str(self._cgroup.procs_file(index))
            except OSError as exc:
                raise DeviceError(f"could not make the cgroup of worker {index}: {exc}") from exc
        return await Worker.spawn(index, self.config.preload, task_group=group)

    def _choose_limiter(self) -> str:
        wanted = self.config.cpu_limiter
        if wanted in ("auto", "cgroup"):
            self._cgroup = CpuCgroup.create(slots=self.config.workers)
            if self._cgroup is not None:
                return self._cgroup.version
            if wanted == "cgroup":
                raise DeviceError("no writable cgroup for CPU limits on this device")
        if wanted == "none":
            return "none"
        # Duty-cycling needs to read a process's CPU time from /proc.
        return "duty-cycle" if process_cpu_seconds(os.getpid()) is not None else "none"

    def _choose_containment(self) -> str:
        wanted = self.config.containment
        if self._cgroup is None and wanted != "process-tree":
            self._cgroup = CpuCgroup.create(slots=self.config.workers, cpu=False)
        if self._cgroup is not None:
            return self._cgroup.version
        if wanted == "cgroup":
            raise DeviceError("no writable cgroup to contain tasks in on this device")
        return "process-tree"

    async def close(self) -> None:
        """Stop every worker and task process and remove our cgroups. Idempotent."""
        self._closed = True
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._closing = True
        for entry in self._active.values():
            entry.cancelled = True
        self._notify()
        for bg in list(self._background):
            bg.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        workers = list(self._workers.values())
        readers = [lane.reader for lane in self._lanes.values() if lane.reader is not None]
        self._workers.clear()
        await asyncio.gather(*(w.stop(grace_s=2.0) for w in workers), return_exceptions=True)
        if readers:
            # Each reader ends at its worker's end of file, after routing its last replies
            # (a task stopped by the shutdown reports "cancelled").
            _, stuck = await asyncio.wait(readers, timeout=2.0)
            for reader in stuck:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        if self._cgroup is not None:
            # Kills what the tasks left in the slots (a worker that had to be killed could not
            # sweep them itself), then removes the groups.
            cgroup, self._cgroup = self._cgroup, None
            await asyncio.to_thread(cgroup.remove)

    async def __aenter__(self) -> TaskRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- running -----------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        return {
            "cpu_limiter": self.limiter,
            "memory_limiter": "rlimit-as",
            "containment": self.containment,
            "allowed_modules": list(self.config.allowed_modules),
            "allow_commands": self.config.allow_commands,
            "workers": self.config.workers,
            "max_result_bytes": self.config.max_result_bytes,
            "onnx": importlib.util.find_spec("onnxruntime") is not None,
            "models": self.config.model_resolver is not None,
            "payloads": ["python", "model"] + (["command"] if self.config.allow_commands else []),
        }

    def accepts(self) -> Accepts:
        """The payloads this runner runs, as the agent advertises them (the scheduler places
        by it): what ``_prepare`` would not refuse."""
        return Accepts(
            python_modules=tuple(self.config.allowed_modules),
            commands=self.config.allow_commands,
            models=self.config.model_resolver is not None and self._has_onnx(),
        )

    def _has_onnx(self) -> bool:
        if self._onnx is None:
            self._onnx = importlib.util.find_spec("onnxruntime") is not None
        return self._onnx

    def allowed(self, module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in self.config.allowed_modules)

    async def _prepare(self, task: Task) -> Run | RunOutcome:
        payload = task.payload
        if isinstance(payload, PythonPayload):
            module, sep, name = payload.function.partition(":")
            parts = [*module.split("."), name]
            if not sep or not all(p.isidentifier() and not p.startswith("_") for p in parts):
                # private modules and names are implementation, not callable entry points
                return _refused("bad_function", "function must be 'module:function', both public")
            if not self.allowed(module):
                return _refused("not_allowed", f"module {module!r} is not allow-listed here")
            try:
                args = msgspec.json.encode(payload.args)
            except (TypeError, ValueError) as exc:
                return _refused("bad_args", f"args are not JSON: {exc}")
            return Run(id=task.id, kind="python", module=module, function=name, args=args)
        if isinstance(payload, ModelPayload):
            if not self._has_onnx():
                return _refused("models_unsupported", "this agent has no ONNX runtime")
            return await self._prepare_model(task.id, payload)
        if isinstance(payload, CommandPayload):
            if not self.config.allow_commands:
                return _refused("commands_disabled", "this agent does not run command payloads")
            if not payload.argv:
                return _refused("bad_command", "argv is empty")
            return Run(id=task.id, kind="command", argv=list(payload.argv))
        return _refused("no_payload", "the task carries no payload")

    async def _prepare_model(self, task_id: str, payload: ModelPayload) -> Run | RunOutcome:
        resolver = self.config.model_resolver
        try:
            # In a thread: a resolver may hash the file to verify it.
            path = None if resolver is None else await asyncio.to_thread(resolver, payload.model_id)
            found = path is not None and await asyncio.to_thread(Path(path).is_file)
        except Exception as exc:  # the resolver is someone else's code; its failure is a value
            return _failed("model_missing", f"model {payload.model_id!r}: {exc}")
        if not found:
            return _failed("model_missing", f"model {payload.model_id!r} is not on this device")
        args = {"path": str(path), "input": payload.input}
        try:
            encoded = msgspec.json.encode(args)
        except (TypeError, ValueError) as exc:
            return _refused("bad_args", f"model input is not JSON: {exc}")
        module, name = _INFER
        return Run(id=task_id, kind="python", module=module, function=name, args=encoded)

    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome:
        """Run ``task`` under ``limits``; every failure comes back as a ``RunOutcome``.

        ``running_cap``: the most tasks this runner may run at once, this one included (the
        device policy's concurrent tasks); None = one per worker.
        """
        called = time.monotonic()
        if self._closed:
            return _refused("runner_closed", "the runner is closed")
        if not (
            0 < limits.cpu_cores < _MAX_CORES
            and 0 < limits.timeout_s < _MAX_TIMEOUT_S
            and (limits.memory_mb is None or 0 < limits.memory_mb < 1 << 30)
            and (limits.device_cpu_cores is None or 0 < limits.device_cpu_cores < _MAX_CORES)
        ):
            return _refused(
                "bad_limits",
                "cpu_cores, device_cpu_cores and timeout_s must be finite and > 0, memory_mb ≥ 1",
            )
        prepared = await self._prepare(task)
        if isinstance(prepared, RunOutcome):
            return prepared
        if task.id in self._active:
            return _refused("duplicate", f"task {task.id} is already running here")
        try:
            await self.start()
        except DeviceError as exc:
            return _refused("runner_unavailable", exc.reason)
        entry = self._active[task.id] = _Active(limits.cpu_cores)
        short = task.resources.estimated_duration <= PREFETCH_MAX_S
        cap = len(self._workers) if running_cap is None else max(1, running_cap)
        try:
            return await self._dispatch(prepared, limits, entry, called, on_start, short, cap)
        finally:
            del self._active[task.id]

    def _notify(self) -> None:
        """Wake the tasks waiting for a worker: one may now take it (or was cancelled)."""
        self._room.set()
        self._room = asyncio.Event()

    def _pick(
        self, short: bool, running_cap: int, caps: tuple[float, float | None]
    ) -> _Lane | None:
        busy = 0
        idle: _Lane | None = None
        queue: _Lane | None = None
        for lane in self._lanes.values():
            if not lane.open:
                continue
            n = len(lane.flights)
            if n == 0:
                if idle is None:
                    idle = lane
                continue
            busy += 1
            if (
                short
                and n <= PREFETCH
                and (queue is None or n < len(queue.flights))
                and (self._cgroup is None or not self._cgroup.cpu or lane.caps == caps)
                and all(f.short for f in lane.flights.values())
            ):
                queue = lane
        if idle is not None and busy < running_cap:
            return idle
        return queue

    async def _acquire(
        self, entry: _Active, short: bool, running_cap: int, caps: tuple[float, float | None]
    ) -> _Lane | None:
        while not entry.cancelled and not self._closed:
            lane = self._pick(short, running_cap, caps)
            if lane is not None:
                return lane
            await self._room.wait()
        return None

    async def _dispatch(
        self,
        msg: Run,
        limits: RunLimits,
        entry: _Active,
        called: float,
        on_start: Callable[[], None] | None,
        short: bool,
        running_cap: int,
    ) -> RunOutcome:
        caps = (limits.cpu_cores, limits.device_cpu_cores)
        while True:
            lane = await self._acquire(entry, short, running_cap, caps)
            if lane is None:
                reason = "runner closed" if self._closed else "cancelled before it started"
                return RunOutcome(status="cancelled", error={"code": "cancelled", "reason": reason})
            limiter = self._apply_cpu(lane, msg, limits, entry)
            msg.timeout_s = limits.timeout_s
            msg.mem_bytes = None if limits.memory_mb is None else limits.memory_mb << 20
            msg.max_capture = self.config.max_artefact_bytes
            msg.keep = self.config.reuse_task_process
            # The backstop counts the tasks ahead of this one in the worker's queue.
            ahead = sum(f.budget_s for f in lane.flights.values())
            flight = _Flight(msg, entry, on_start, short, limits.timeout_s + _BACKSTOP_S)
            lane.flights[msg.id] = flight
            worker = entry.worker = lane.worker
            done: Done | None = None
            try:
                worker.send(msg)
                await worker.drain()
                async with asyncio.timeout(ahead + flight.budget_s):
                    done = await asyncio.shield(flight.done)
            except _WorkerLost as lost:
                if flight.started is None and not entry.cancelled and not self._closed:
                    continue  # it never ran: another worker takes it
                done = Done(
                    id=msg.id,
                    status="failed",
                    error={"code": "worker_lost", "reason": f"worker process failed: {lost}"},
                )
            except TimeoutError:
                done = Done(
                    id=msg.id,
                    status="timeout",
                    error={"code": "timeout", "reason": "worker stopped answering; replaced"},
                )
                self._retire(lane)
            except (BrokenPipeError, ConnectionError, RuntimeError) as exc:
                self._retire(lane, f"worker process failed: {exc!r}")
                if not entry.cancelled and not self._closed:
                    continue
                done = Done(
                    id=msg.id,
                    status="failed",
                    error={"code": "worker_lost", "reason": f"worker process failed: {exc!r}"},
                )
            finally:
                entry.worker = None
                if done is None:
                    # Interrupted mid-task (the caller was cancelled): the worker may still be
                    # busy with it, so it is replaced rather than handed the next task.
                    self._retire(lane)
                lane.flights.pop(msg.id, None)
            return self._outcome(done, limiter, called, flight.started)

    async def _read(self, lane: _Lane) -> None:
        """Route the worker's replies to the tasks handed to it, until it is gone."""
        worker = lane.worker
        reason = "worker process exited"
        try:
            while True:
                reply = await worker.recv()
                if isinstance(reply, Ready):
                    continue
                flight = lane.flights.get(reply.id)
                if flight is None:
                    continue  # a task whose caller already gave up on it
                if isinstance(reply, Started):
                    flight.started = reply
                    if flight.entry.cancelled:  # cancel() ran before the worker had forked
                        worker.send(Kill(id=reply.id, reason="cancelled"))
                    if flight.on_start is not None:
                        try:
                            flight.on_start()
                        except Exception:  # the caller's hook must not strand the task
                            log.exception("on_start hook failed for %s", reply.id)
                    continue
                del lane.flights[reply.id]
                if not flight.done.done():
                    flight.done.set_result(reply)
                self._notify()
        except asyncio.CancelledError:
            reason = "the runner closed"
            raise
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError, ValueError) as exc:
            reason = f"worker process failed: {exc!r}"
        finally:
            self._retire(lane, reason)

    def _add_lane(self, worker: Worker) -> None:
        lane = _Lane(worker)
        self._workers[worker.index] = worker
        self._lanes[worker.index] = lane
        lane.reader = asyncio.create_task(self._read(lane), name=f"worker-{worker.index}")
        self._notify()

    def _retire(self, lane: _Lane, reason: str = "worker replaced") -> None:
        """Take the lane's worker out of service (once): fail what it held, start a new one."""
        worker = lane.worker
        for flight in lane.flights.values():
            if not flight.done.done():
                flight.done.set_exception(_WorkerLost(reason))
                flight.done.exception()  # the caller may be gone: retrieved here
        lane.flights.clear()
        if self._lanes.get(worker.index) is not lane:
            return
        del self._lanes[worker.index]
        worker.healthy = False
        if lane.reader is not None and lane.reader is not asyncio.current_task():
            lane.reader.cancel()
        self._notify()
        if self._closed or self._closing:
            return
        bg = asyncio.create_task(self._replace(worker))
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    def _apply_cpu(self, lane: _Lane, msg: Run, limits: RunLimits, entry: _Active) -> str:
        ncpu = self._ncpu
        cores, budget = limits.cpu_cores, limits.device_cpu_cores
        if self._cgroup is not None and self._cgroup.cpu:
            # The parent group holds the running tasks together to the budget; each slot holds
            # its task to its own cap. (A task only queues behind one with the same caps.)
            self._cgroup.set_total(budget)
            self._cgroup.set_cores(lane.worker.index, cores)
            lane.caps = (cores, budget)
            return self._cgroup.version
        if self.limiter == "duty-cycle":
            if budget is not None:
                # No parent group to hold the tasks together, and a running task's duty cycle
                # is fixed: this one gets what the budget has left (a small floor, so that it
                # cannot be starved by tasks started under an older, larger budget). Tasks on
                # this worker end before it starts.
                mine = lane.worker
                running = sum(
                    a.cores
                    for a in self._active.values()
                    if a.worker is not None and a.worker is not mine
                )
                cores = min(cores, max(budget - running, _DUTY_FLOOR_CORES))
            entry.cores = cores
            if cores < ncpu:
                msg.duty_cores = cores
                return "duty-cycle"
        return "none"

    async def _replace(self, old: Worker) -> None:
        await old.kill()
        cgroup = self._cgroup
        if cgroup is not None:
            # The slot is the new worker's: nothing the old one's tasks started may run on in it.
            await asyncio.to_thread(cgroup.kill, old.index)
        delay = 0.5
        while not self._closed:
            try:
                new = await self._spawn(old.index)
            except DeviceError:
                await asyncio.sleep(delay)  # backoff before trying to start a worker again
                delay = min(delay * 2, 30.0)
                continue
            if self._closed:
                await new.kill()
                return
            self._add_lane(new)
            return

    def _outcome(
        self, done: Done, limiter: str, called: float, started: Started | None
    ) -> RunOutcome:
        out = RunOutcome(
            status=done.status,
            error=done.error,
            wall_s=done.wall_s,
            cpu_s=done.cpu_s,
            max_rss_mb=done.max_rss_mb,
            limiter=limiter,
            start_latency_s=None if started is None else max(0.0, started.at - called),
        )
        if done.status == "completed" and done.result is not None:
            if len(done.result) > self.config.max_result_bytes:
                out.artefact = done.result
            else:
                try:
                    out.result = msgspec.json.decode(done.result)
                except msgspec.DecodeError:
                    out.status = "failed"
                    out.error = {"code": "bad_result", "reason": "result was not valid JSON"}
        return out

    async def cancel(self, task_id: str) -> bool:
        """Stop ``task_id`` whether queued or running; False if it is not here."""
        entry = self._active.get(task_id)
        if entry is None:
            return False
        entry.cancelled = True
        self._notify()
        if entry.worker is not None:
            # Running, or queued in the worker: either way the worker ends it.
            with contextlib.suppress(BrokenPipeError, ConnectionError, RuntimeError):
                entry.worker.send(Kill(id=task_id, reason="cancelled"))
        return True
