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
  replaces the whole worker if the worker itself stops answering.
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
from fogmesh.agent._ipc import Done, Kill, Run, Started
from fogmesh.agent._pool import Worker
from fogmesh.errors import DeviceError
from fogmesh.fog.tasks import CommandPayload, ModelPayload, PythonPayload, Task

__all__ = ["LIMITERS", "RunLimits", "RunOutcome", "RunnerConfig", "TaskRunner"]

log = logging.getLogger(__name__)

LIMITERS: Final = ("auto", "cgroup", "duty-cycle", "none")
_BACKSTOP_S: Final = 5.0  # extra wall time before the runner stops trusting a worker
_INFER: Final = ("fogmesh.agent.workloads.inference", "run_model")
_MAX_CORES: Final = 1024.0  # same bound as TaskResources validation; also rules out inf/NaN
_MAX_TIMEOUT_S: Final = 7 * 24 * 3600.0


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
    __slots__ = ("cancelled", "cores", "wakeup", "worker")

    def __init__(self, cores: float = 0.0) -> None:
        self.cancelled = False
        self.cores = cores  # the CPU it may use (its cap once running)
        self.wakeup = asyncio.Event()
        self.worker: Worker | None = None


class TaskRunner:
    """Runs tasks in a warm process pool with per-task CPU, memory and time limits."""

    def __init__(self, config: RunnerConfig | None = None) -> None:
        self.config = config or RunnerConfig()
        if self.config.cpu_limiter not in LIMITERS:
            raise DeviceError(f"cpu_limiter must be one of {', '.join(LIMITERS)}")
        if self.config.workers < 1:
            raise DeviceError("workers must be ≥ 1")
        self.limiter = "none"
        self._cgroup: CpuCgroup | None = None
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        self._workers: dict[int, Worker] = {}
        self._active: dict[str, _Active] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._start_lock = asyncio.Lock()

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._started or self._closed:
                return
            self.limiter = self._choose_limiter()
            try:
                workers = await asyncio.gather(
                    *(self._spawn(i) for i in range(self.config.workers)),
                    return_exceptions=True,
                )
                errors = [w for w in workers if isinstance(w, BaseException)]
                for w in workers:
                    if isinstance(w, Worker):
                        self._workers[w.index] = w
                        self._idle.put_nowait(w)
                if errors:
                    raise DeviceError(f"could not start the worker pool: {errors[0]}")
            except BaseException:
                await self._shutdown()
                raise
            self._started = True

    async def _spawn(self, index: int) -> Worker:
        worker = await Worker.spawn(index, self.config.preload)
        if self._cgroup is not None:
            try:
                self._cgroup.attach(index, worker.pid)
            except OSError as exc:
                await worker.kill()
                raise DeviceError(f"could not move worker {index} into its cgroup: {exc}") from exc
        return worker

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

    async def close(self) -> None:
        """Stop every worker and task process and remove our cgroups. Idempotent."""
        self._closed = True
        await self._shutdown()

    async def _shutdown(self) -> None:
        for entry in self._active.values():
            entry.cancelled = True
            entry.wakeup.set()
        for bg in list(self._background):
            bg.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        workers = list(self._workers.values())
        self._workers.clear()
        await asyncio.gather(*(w.stop(grace_s=2.0) for w in workers), return_exceptions=True)
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

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
            "allowed_modules": list(self.config.allowed_modules),
            "allow_commands": self.config.allow_commands,
            "workers": self.config.workers,
            "max_result_bytes": self.config.max_result_bytes,
            "onnx": importlib.util.find_spec("onnxruntime") is not None,
            "models": self.config.model_resolver is not None,
            "payloads": ["python", "model"] + (["command"] if self.config.allow_commands else []),
        }

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
    ) -> RunOutcome:
        """Run ``task`` under ``limits``; every failure comes back as a ``RunOutcome``."""
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
        try:
            return await self._dispatch(prepared, limits, entry, called, on_start)
        finally:
            del self._active[task.id]

    async def _acquire(self, entry: _Active) -> Worker | None:
        getter = asyncio.ensure_future(self._idle.get())
        waiter = asyncio.ensure_future(entry.wakeup.wait())
        try:
            await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not getter.done():
                getter.cancel()
        worker = getter.result() if getter.done() and not getter.cancelled() else None
        if entry.cancelled:
            if worker is not None:
                self._idle.put_nowait(worker)
            return None
        return worker

    async def _dispatch(
        self,
        msg: Run,
        limits: RunLimits,
        entry: _Active,
        called: float,
        on_start: Callable[[], None] | None,
    ) -> RunOutcome:
        worker = await self._acquire(entry)
        if worker is None:
            reason = "runner closed" if self._closed else "cancelled before it started"
            return RunOutcome(status="cancelled", error={"code": "cancelled", "reason": reason})
        limiter = self._apply_cpu(worker, msg, limits, entry)
        msg.timeout_s = limits.timeout_s
        msg.mem_bytes = None if limits.memory_mb is None else limits.memory_mb << 20
        msg.max_capture = self.config.max_artefact_bytes
        msg.keep = self.config.reuse_task_process
        entry.worker = worker
        started: Started | None = None
        done: Done | None = None
        try:
            worker.send(msg)
            await worker.drain()
            async with asyncio.timeout(limits.timeout_s + _BACKSTOP_S):
                while done is None:
                    reply = await worker.recv()
                    if isinstance(reply, Started) and reply.id == msg.id:
                        started = reply
                        if entry.cancelled:  # cancel() ran before the worker had forked
                            worker.send(Kill(id=msg.id, reason="cancelled"))
                        if on_start is not None:
                            try:
                                on_start()
                            except Exception:  # the caller's hook must not strand the task
                                log.exception("on_start hook failed for %s", msg.id)
                    elif isinstance(reply, Done) and reply.id == msg.id:
                        done = reply
        except TimeoutError:
            done = Done(
                id=msg.id,
                status="timeout",
                error={"code": "timeout", "reason": "worker stopped answering; replaced"},
            )
            worker.healthy = False
        except (asyncio.IncompleteReadError, BrokenPipeError, ConnectionError, ValueError) as exc:
            done = Done(
                id=msg.id,
                status="failed",
                error={"code": "worker_lost", "reason": f"worker process failed: {exc!r}"},
            )
            worker.healthy = False
        finally:
            entry.worker = None
            if done is None:
                # Interrupted mid-task (the caller was cancelled): the worker may still be busy
                # with it, so it is replaced rather than handed the next task.
                worker.healthy = False
            self._release(worker)
        return self._outcome(done, limiter, called, started)

    def _apply_cpu(self, worker: Worker, msg: Run, limits: RunLimits, entry: _Active) -> str:
        ncpu = os.cpu_count() or 1
        cores, budget = limits.cpu_cores, limits.device_cpu_cores
        if self._cgroup is not None:
            # The parent group holds the running tasks together to the budget; each slot holds
            # its task to its own cap.
            self._cgroup.set_total(budget)
            self._cgroup.set_cores(worker.index, cores)
            return self._cgroup.version
        if self.limiter == "duty-cycle":
            if budget is not None:
                # No parent group to hold the tasks together, and a running task's duty cycle
                # is fixed: this one gets what the budget has left (a small floor, so that it
                # cannot be starved by tasks started under an older, larger budget).
                running = sum(a.cores for a in self._active.values() if a.worker is not None)
                cores = min(cores, max(budget - running, _DUTY_FLOOR_CORES))
            entry.cores = cores
            if cores < ncpu:
                msg.duty_cores = cores
                return "duty-cycle"
        return "none"

    def _release(self, worker: Worker) -> None:
        if self._closed or worker.index not in self._workers:
            return
        if worker.healthy and worker.proc.returncode is None:
            self._idle.put_nowait(worker)
            return
        bg = asyncio.create_task(self._replace(worker))
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    async def _replace(self, old: Worker) -> None:
        await old.kill()
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
            self._workers[new.index] = new
            self._idle.put_nowait(new)
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
        entry.wakeup.set()
        if entry.worker is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionError, RuntimeError):
                entry.worker.send(Kill(id=task_id, reason="cancelled"))
        return True
