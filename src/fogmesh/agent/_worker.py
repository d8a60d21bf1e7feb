"""A warm worker: imports once, then runs tasks in forked processes it supervises.

Tasks run one at a time, in the order they arrive; the runner may send the next one before the
current one ends (it waits in ``pending``, and a ``Kill`` for it answers it unstarted).

Run as ``python -m fogmesh.agent._worker [preload-module ...]`` by the runner, which talks to it
over stdin/stdout frames (``_ipc``). The worker never runs task code itself, so it never carries
a task's limits or leftovers; it forks a *task process* that inherits its already-imported
modules (numpy, the task's module) and supervises it: wall-clock deadline, duty-cycled CPU cap,
kill on request, CPU time and peak RSS.

``python`` tasks: the task process is kept for the next python task (a fork costs ~5–20 ms
with the fogmesh package loaded; a hand-over through a pipe costs well under 1 ms). It is
thrown away — and the next task gets a fresh fork — after a timeout, a cancel, a memory-cap
breach, an oversized result, a crash, or ``_MAX_TASKS`` tasks. The memory cap is the *soft*
RLIMIT_AS, set before each task and put back after it, which is what makes reuse possible: a
non-root process cannot raise a hard limit again. Allow-listed code could raise its own soft
limit; the cap guards against runaway allocation, not against the code the device owner allowed.

``command`` tasks: always a fresh fork that execs ``argv`` (its address space is new, so there
the cap is absolute and hard).

Nothing a task starts outlives it, even in a session of its own. The worker and each kept python
task process are subreapers (``_reaper``): a task's orphans are re-parented to them, not to
init. A kept process kills its own leftovers before it reports each task; the worker empties
the task's cgroup slot (when the runner made one) and kills and reaps every child
but the kept process after each command, each thrown-away task process, and before it exits.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec

from fogmesh.agent._cgroup import kill_group
from fogmesh.agent._dutycycle import TICK_S, DutyCycle, process_cpu_seconds
from fogmesh.agent._ipc import (
    TASK_GROUP_ENV,
    Done,
    Exit,
    FrameBuffer,
    Kill,
    Ready,
    Run,
    Started,
    ToRunner,
    ToWorker,
    decode_to_runner,
    decode_to_worker,
    encode,
    write_frame,
)
from fogmesh.agent._reaper import reap_children, set_subreaper
from fogmesh.agent._taskproc import child_entry, command_main, fail, resident_main

__all__ = ["main"]

_READ: Final = 1 << 16
_MAX_TASKS: Final = 500  # recycle a task process now and then: slow leaks stay bounded


class _Resident:
    """A forked task process waiting for python tasks on ``cmd_w``."""

    def __init__(self, pid: int, cmd_w: int, report_r: int) -> None:
        self.pid = pid
        self.cmd_w = cmd_w
        self.report_r = report_r
        self.frames = FrameBuffer()
        self.tasks = 0
        self.pidfd = -1
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self.pidfd = os.pidfd_open(pid)

    def close_fds(self) -> None:
        for fd in (self.cmd_w, self.report_r, self.pidfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


class _CapFailed(OSError):
    """A task process could not be put under its CPU cap (it is killed, never run)."""


def _join_group(procs: str | None, pid: int) -> None:
    """Move task process ``pid`` into the slot's cgroup (``procs``: its cgroup.procs): its CPU
    cap, where the runner caps through cgroups, and its containment."""
    if procs is None:
        return
    try:
        with open(procs, "w") as f:
            f.write(str(pid))
    except OSError as exc:
        raise _CapFailed(f"cannot put the task process into its cgroup: {exc}") from exc


class _Zygote:
    def __init__(self, fd_in: int, fd_out: int, task_group: str | None = None) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.outbox: list[bytes] = []  # encoded frames for the runner, written by flush()
        # cgroup.procs of this worker's slot: task processes run there, capped (if the runner caps
        # through cgroups) and contained; the worker itself stays outside, so its bookkeeping
        # never eats into a task's CPU allowance.
        self.task_group = task_group
        self.slot = None if task_group is None else Path(task_group).parent
        self.frames = FrameBuffer()
        self.pending: list[ToWorker] = []
        self.functions: dict[tuple[str, str], Callable[..., Any]] = {}
        self.exiting = False
        self.resident: _Resident | None = None

    # ---- messages from the runner -------------------------------------------------------

    def emit(self, msg: ToRunner) -> None:
        """Queue a message for the runner; ``flush`` writes what queued in one write (a task's
        result and the next task's start, typically: one wake-up of the runner, not two)."""
        self.outbox.append(encode(msg))

    def flush(self) -> None:
        if self.outbox:
            data, self.outbox = b"".join(self.outbox), []
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd_out, view) :]

    def _pump(self, timeout: float | None) -> bool:
        """Read what the runner sent; False on EOF (the runner is gone)."""
        if timeout != 0:
            self.flush()  # about to wait: what the runner is owed goes first
        ready, _, _ = select.select([self.fd_in], [], [], timeout)
        if not ready:
            return True
        data = os.read(self.fd_in, _READ)
        if not data:
            return False
        self.frames.feed(data)
        while (body := self.frames.next_frame()) is not None:
            self.pending.append(decode_to_worker(body))
        return True

    def serve(self) -> None:
        try:
            while not self.exiting:
                while not self.pending:
                    if not self._pump(None):
                        return
                msg = self.pending.pop(0)
                if isinstance(msg, Run):
                    self.emit(self._cancelled(msg) or self._run(msg))
                elif isinstance(msg, Exit):
                    return
                # a Kill for a task that already finished: nothing to do
        finally:
            with contextlib.suppress(OSError):
                self.flush()
            self._retire()

    def answer_cancelled(self) -> None:
        """Answer at once each queued task whose Kill has arrived (while another one runs)."""
        killed = {m.id for m in self.pending if isinstance(m, Kill)}
        if not killed:
            return
        for queued in [m for m in self.pending if isinstance(m, Run) and m.id in killed]:
            self.pending = [
                m
                for m in self.pending
                if m is not queued and not (isinstance(m, Kill) and m.id == queued.id)
            ]
            self.emit(self._cancelled_reply(queued))

    def _cancelled_reply(self, msg: Run) -> Done:
        return fail(msg, "cancelled", "cancelled", "cancelled before it started")

    def _cancelled(self, msg: Run) -> Done | None:
        """A task killed while it waited here behind another: answered, never started."""
        for queued in self.pending:
            if isinstance(queued, Kill) and queued.id == msg.id:
                self.pending.remove(queued)
                return self._cancelled_reply(msg)
        return None

    # ---- one task ----------------------------------------------------------------------

    def _resolve(self, module: str, name: str) -> Callable[..., Any]:
        key = (module, name)
        fn = self.functions.get(key)
        if fn is None:
            # Imported here, in the warm worker, so every later fork starts with it loaded.
            obj = getattr(importlib.import_module(module), name)
            if not callable(obj):
                raise TypeError(f"{module}:{name} is not callable")
            fn = self.functions[key] = obj
            gc.freeze()  # keep the new imports' objects out of GC passes that dirty shared pages
        return fn

    def _run(self, msg: Run) -> Done:
        if msg.kind == "python":
            try:
                self._resolve(msg.module, msg.function)
            except Exception as exc:
                return fail(msg, "failed", "import_error", f"{type(exc).__name__}: {exc}")
            try:
                return self._run_python(msg)
            except _CapFailed as exc:
                self._retire()
                return fail(msg, "failed", "cpu_cap_failed", str(exc))
            except OSError as exc:  # out of processes or fds: this task fails, the worker lives
                self._retire()
                return fail(msg, "failed", "fork_failed", str(exc))
        return self._run_command(msg)

    def _retire(self) -> None:
        """Kill and reap the kept task process, if any, and everything its tasks left."""
        res, self.resident = self.resident, None
        if res is not None:
            with contextlib.suppress(OSError):
                os.killpg(res.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(res.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(res.pid, 0)
            res.close_fds()
        self.sweep()

    def sweep(self) -> None:
        """Kill what tasks left behind: everything in the slot and every child of this worker
        (orphans come here: it is a subreaper) except the kept task process."""
        keep = None if self.resident is None else self.resident.pid
        if self.slot is not None:
            kill_group(self.slot, keep)
        reap_children(() if keep is None else (keep,))

    def _fork_resident(self) -> _Resident:
        cmd_r, cmd_w = os.pipe()
        try:
            report_r, report_w = os.pipe()
        except OSError:
            os.close(cmd_r)
            os.close(cmd_w)
            raise
        try:
            pid = os.fork()
        except OSError:
            for fd in (cmd_r, cmd_w, report_r, report_w):
                os.close(fd)
            raise
        if pid == 0:
            os.close(cmd_w)
            os.close(report_r)
            child_entry(
                lambda: resident_main((self.fd_in, self.fd_out), self.functions, cmd_r, report_w)
            )
        os.close(cmd_r)
        os.close(report_w)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # the child does it too; whichever runs first wins
        res = _Resident(pid, cmd_w, report_r)
        try:
            # Before it is sent any task: it only waits for commands until then.
            _join_group(self.task_group, pid)
        except _CapFailed:
            self.resident = res
            self._retire()
            raise
        return res

    def _run_python(self, msg: Run) -> Done:
        if self.resident is not None and self.resident.tasks >= _MAX_TASKS:
            self._retire()
        if self.resident is None:
            self.resident = self._fork_resident()
        res = self.resident
        res.tasks += 1
        t0 = time.monotonic()
        cpu0 = process_cpu_seconds(res.pid) or 0.0
        try:
            write_frame(res.cmd_w, msg)
        except BrokenPipeError:  # it died between tasks: start over with a fresh one
            self._retire()
            self.resident = res = self._fork_resident()
            res.tasks += 1
            write_frame(res.cmd_w, msg)
        self.emit(Started(id=msg.id, pid=res.pid, at=time.monotonic()))
        sup = _Supervision(self, msg, res.pid, t0, res.pidfd, {res.report_r: bytearray()})
        sup.report_frames = res.frames
        sup.run()
        if sup.exited is None:
            # Supervision only stops before the process exits when it answered and lives on.
            report = sup.report
            assert report is not None and sup.killed is None
            report.wall_s = time.monotonic() - t0
            if report.status == "killed" or not msg.keep:
                self._retire()  # a memory-cap breach leaves the heap suspect
            return report
        status, usage = sup.exited
        self.resident = None
        res.close_fds()
        self.sweep()  # its own children were re-parented here when it died
        done = _outcome(msg, sup, status)
        done.wall_s = time.monotonic() - t0
        if usage is not None:
            done.cpu_s = max(0.0, usage.ru_utime + usage.ru_stime - cpu0)
            done.max_rss_mb = usage.ru_maxrss / 1024.0
        return done

    def _run_command(self, msg: Run) -> Done:
        pipes: list[int] = []
        capped = self.task_group is not None
        try:
            report_r, report_w = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            pipes += (report_r, report_w, out_r, out_w, err_r, err_w)
            if capped:  # the child waits on it until it is under its cap
                go_r, go_w = os.pipe()
                pipes += (go_r, go_w)
            t0 = time.monotonic()
            pid = os.fork()
        except OSError as exc:
            for fd in pipes:
                os.close(fd)
            return fail(msg, "failed", "fork_failed", str(exc))
        if pid == 0:
            if capped:
                os.close(go_w)
                if not os.read(go_r, 1):  # end of file: the parent could not cap us
                    os._exit(70)
                os.close(go_r)
            child_entry(
                lambda: command_main(
                    (self.fd_in, self.fd_out), msg, report_r, report_w, out_w, err_w
                )
            )
        for fd in (report_w, out_w, err_w):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        if capped:
            os.close(go_r)
            try:
                _join_group(self.task_group, pid)
            except _CapFailed as exc:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                os.close(go_w)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                for fd in (report_r, out_r, err_r):
                    os.close(fd)
                return fail(msg, "failed", "cpu_cap_failed", str(exc))
            os.write(go_w, b"x")
            os.close(go_w)
        self.emit(Started(id=msg.id, pid=pid, at=time.monotonic()))
        pidfd = -1
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(pid)
        streams = {report_r: bytearray(), out_r: bytearray(), err_r: bytearray()}
        sup = _Supervision(self, msg, pid, t0, pidfd, streams)
        sup.out_fds = (out_r, err_r)
        sup.run()
        for fd in [*streams, pidfd]:
            if fd >= 0:
                os.close(fd)
        self.sweep()  # a command cannot clean up after itself as a kept process does
        status, usage = sup.exited if sup.exited is not None else (0, None)
        done = _outcome(msg, sup, status)
        done.wall_s = time.monotonic() - t0
        if usage is not None:
            done.cpu_s = usage.ru_utime + usage.ru_stime
            done.max_rss_mb = usage.ru_maxrss / 1024.0
        return done


class _Supervision:
    """Watch one task until its report arrives (kept python process) or its process exits."""

    def __init__(
        self,
        zygote: _Zygote,
        msg: Run,
        pid: int,
        t0: float,
        pidfd: int,
        streams: dict[int, bytearray],
    ) -> None:
        self.z = zygote
        self.msg = msg
        self.pid = pid
        self.pidfd = pidfd
        self.streams = streams
        self.open_fds = set(streams)
        self.deadline = t0 + msg.timeout_s
        self.duty = DutyCycle(pid, msg.duty_cores, t0) if msg.duty_cores else None
        self.killed: str | None = None
        self.overflow = False
        self.received = 0  # report bytes of this task
        self.report: Done | None = None
        self.report_frames: FrameBuffer | None = None  # set for a kept python process
        self.out_fds: tuple[int, int] | None = None  # set for a command
        self.exited: tuple[int, resource.struct_rusage | None] | None = None

    def kill(self, reason: str) -> None:
        if self.killed is None:
            self.killed = reason
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):  # before the child's setpgid ran
            os.kill(self.pid, signal.SIGKILL)

    def check_messages(self) -> None:
        # A Kill may have arrived in the same read as its Run, so look at everything queued.
        z = self.z
        for extra in z.pending:
            if isinstance(extra, Kill) and extra.id == self.msg.id:
                self.kill(extra.reason)
            elif isinstance(extra, Exit):
                z.exiting = True
                self.kill("runner_closed")
        z.pending = [m for m in z.pending if not (isinstance(m, Kill) and m.id == self.msg.id)]
        z.answer_cancelled()

    def run(self) -> None:
        self.check_messages()
        kept = self.report_frames is not None
        while self.exited is None and (self.report is None or self.killed is not None):
            now = time.monotonic()
            if self.killed is None and now >= self.deadline:
                self.kill("timeout")
            wait = max(0.0, self.deadline - now) if self.killed is None else TICK_S
            if self.duty is not None or self.pidfd < 0:
                wait = min(wait, TICK_S)
            fds = [*self.open_fds, self.z.fd_in] + ([self.pidfd] if self.pidfd >= 0 else [])
            if wait > 0:
                self.z.flush()  # the task's start (and the last one's result) before waiting
            ready, _, _ = select.select(fds, [], [], wait)
            for fd in ready:
                if fd == self.z.fd_in:
                    if not self.z._pump(0):
                        self.z.exiting = True
                        self.kill("runner_gone")
                    self.check_messages()
                elif fd in self.open_fds:
                    self._read(fd)
            if self.duty is not None and self.killed is None:
                self.duty.step(time.monotonic())
            if self.report is not None and self.killed is None:
                break  # a kept process answered and lives on
            res = os.wait4(self.pid, os.WNOHANG)
            if res[0] == self.pid:
                self.exited = (res[1], res[2])
        if self.duty is not None:
            self.duty.release()  # a kept process must not be left stopped
        if self.exited is not None:
            # Anything the task started in its process group goes with it.
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            for fd in list(self.open_fds):
                _drain(fd, self.streams[fd], self.msg.max_capture)
            if kept and self.report is None:
                self._parse_report()  # it may have reported just before it exited

    def _read(self, fd: int) -> None:
        data = os.read(fd, _READ)
        if not data:
            self.open_fds.discard(fd)
            return
        is_output = self.out_fds is not None and fd in self.out_fds
        if is_output:
            buf = self.streams[fd]
            if len(buf) < self.msg.max_capture:
                buf += data[: self.msg.max_capture - len(buf)]
            # output past the cap is read and dropped so the command never blocks on it
            return
        self.received += len(data)
        if self.received > self.msg.max_capture + 1024:  # + the report's own framing
            self.overflow = True
            self.kill("result_too_large")
            return
        self.streams[fd] += data
        if self.report_frames is not None:
            self._parse_report()

    def _parse_report(self) -> None:
        frames = self.report_frames
        assert frames is not None
        for fd in self.streams:
            frames.feed(bytes(self.streams[fd]))
            self.streams[fd].clear()
        try:
            body = frames.next_frame()
        except ValueError:
            return
        if body is not None:
            msg = _decode_report(body, self.msg.id)
            if msg is not None:
                self.report = msg


def _decode_report(body: bytes, task_id: str) -> Done | None:
    try:
        msg = decode_to_runner(body)
    except msgspec.DecodeError:
        return None
    if isinstance(msg, Done):
        msg.id = task_id
        return msg
    return None


def _drain(fd: int, buf: bytearray, cap: int) -> None:
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError, OSError):
        while data := os.read(fd, _READ):
            if len(buf) < cap:
                buf += data[: cap - len(buf)]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal has no name of its own
        return f"signal {number}"


def _outcome(msg: Run, sup: _Supervision, status: int) -> Done:
    killed = sup.killed
    if killed == "timeout":
        return fail(msg, "timeout", "timeout", f"ran longer than {msg.timeout_s:g} s; killed")
    if killed == "cancelled":
        return fail(msg, "cancelled", "cancelled", "cancelled while running")
    if killed in ("runner_closed", "runner_gone"):
        return fail(msg, "cancelled", "runner_closed", "the runner shut down while the task ran")
    if sup.overflow:
        return fail(
            msg, "failed", "result_too_large", f"result exceeded {msg.max_capture} bytes; cut"
        )
    if sup.report is not None and (msg.kind == "python" or sup.report.status != "completed"):
        return sup.report
    if msg.kind == "command" and sup.out_fds is not None:
        # An exec failure reports through the (close-on-exec) report pipe.
        (report_fd,) = (fd for fd in sup.streams if fd not in sup.out_fds)
        body = bytes(sup.streams[report_fd])
        frames = FrameBuffer()
        frames.feed(body)
        with contextlib.suppress(ValueError):
            first = frames.next_frame()
            report = _decode_report(first, msg.id) if first is not None else None
            if report is not None:
                return report
    if os.WIFSIGNALED(status):
        sig = _signal_name(os.WTERMSIG(status))
        if msg.mem_bytes is not None and sig == "SIGABRT":
            # A native allocation failing under RLIMIT_AS aborts rather than raising (C++'s
            # bad_alloc uncaught, Python's fatal out-of-memory). A SIGSEGV, SIGBUS or a SIGKILL
            # from someone else is a crash like any other: the cap does not explain it.
            return fail(msg, "killed", "memory_limit", f"died by {sig} under a memory cap")
        return fail(msg, "failed", "crashed", f"task process died by {sig}")
    code = os.waitstatus_to_exitcode(status)
    if msg.kind == "python" or sup.out_fds is None:
        return fail(msg, "failed", "crashed", f"task process exited ({code}) without a result")
    out_r, err_r = sup.out_fds
    stdout = bytes(sup.streams[out_r]).decode("utf-8", "replace")
    stderr = bytes(sup.streams[err_r]).decode("utf-8", "replace")
    if code != 0:
        tail = stderr.strip()[-300:]
        reason = f"exit status {code}" + (f": {tail}" if tail else "")
        return fail(msg, "failed", "command_failed", reason)
    result = {"returncode": code, "stdout": stdout, "stderr": stderr}
    return Done(id=msg.id, status="completed", result=msgspec.json.encode(result))


def main(argv: list[str] | None = None) -> None:
    # The protocol gets private fds; stray prints from imported code go to stderr instead.
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_subreaper()  # a task's orphans come here, not to init: see sweep()
    for name in sys.argv[1:] if argv is None else argv:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()
    os.write(fd_out, encode(Ready(pid=os.getpid())))
    _Zygote(fd_in, fd_out, os.environ.pop(TASK_GROUP_ENV, None) or None).serve()


if __name__ == "__main__":
    main()
