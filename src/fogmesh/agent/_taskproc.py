"""Code that runs inside a forked task process (never in the warm worker itself).

See ``_worker`` for why task processes exist and when one is kept for the next task.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any, Final, NoReturn

import msgspec

from fogmesh.agent._ipc import Done, FrameBuffer, Run, decode_to_worker, write_frame
from fogmesh.agent._reaper import has_children, load_libc, reap_children, set_subreaper
from fogmesh.errors import FogmeshError

__all__ = ["child_entry", "command_main", "fail", "resident_main"]

_PR_SET_PDEATHSIG: Final = 1
_READ: Final = 1 << 16


def fail(msg: Run, status: str, code: str, reason: str) -> Done:
    return Done(id=msg.id, status=status, error={"code": code, "reason": reason})


def child_entry(body: Callable[[], int]) -> NoReturn:
    code = 70
    try:
        code = body()
    finally:
        os._exit(code)


def _detach(worker_fds: tuple[int, int]) -> bool:
    """Common start of a task process; False if the worker died before it was set up.

    Not a subreaper: an exec'd command would collect its orphans as zombies it never reaps;
    they go to the worker instead, which is one.
    """
    parent = os.getppid()
    for fd in worker_fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc = load_libc()
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the worker died before prctl took effect
            return False
    return True


def resident_main(
    worker_fds: tuple[int, int],
    functions: dict[tuple[str, str], Callable[..., Any]],
    cmd_r: int,
    report_w: int,
) -> int:
    """A kept python task process: run each Run it is sent, report, repeat until EOF."""
    if not _detach(worker_fds):
        return 1
    # Whatever a task starts stays below this process, even after a double fork or a setsid,
    # so that it can be ended with the task (see _end_leftovers).
    set_subreaper()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    capturing = _capture_stdout()
    if not capturing:
        os.dup2(devnull, 1)
    frames = FrameBuffer()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        body = frames.next_frame()
        if body is None:
            data = os.read(cmd_r, _READ)
            if not data:
                return 0
            frames.feed(data)
            continue
        msg = decode_to_worker(body)
        if not isinstance(msg, Run):
            continue
        if capturing:
            _rewind_stdout()
        done = _run_in_process(msg, functions, soft, hard)
        _end_leftovers()
        if capturing and done.error is not None:
            tail = _stdout_tail()
            if tail:
                done.error["stdout"] = tail
        write_frame(report_w, done)
        if done.status == "killed":
            return 0


_signatures: dict[Callable[..., Any], inspect.Signature] = {}  # per task process


def _end_leftovers() -> None:
    """Kill and reap every process the task left running: none may see the next task. The
    usual case — it left none — costs one system call."""
    if has_children():
        reap_children()


def _run_in_process(
    msg: Run, functions: dict[tuple[str, str], Callable[..., Any]], soft: int, hard: int
) -> Done:
    try:
        fn = functions.get((msg.module, msg.function))
        if fn is None:  # imported by the worker after this process was forked
            fn = functions[(msg.module, msg.function)] = getattr(
                importlib.import_module(msg.module), msg.function
            )
        args = msgspec.json.decode(msg.args)
        if not isinstance(args, dict):
            return fail(msg, "failed", "bad_args", "args must be a JSON object")
        signature = _signatures.get(fn)
        if signature is None:
            signature = _signatures[fn] = inspect.signature(fn)
        signature.bind(**args)
    except (TypeError, ValueError, msgspec.DecodeError) as exc:
        return fail(msg, "failed", "bad_args", str(exc))
    except Exception as exc:
        return fail(msg, "failed", "import_error", f"{type(exc).__name__}: {exc}")
    before = _cpu_seconds()
    done = _call(msg, fn, args, soft, hard)
    done.cpu_s = _cpu_seconds() - before
    done.max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return done


def _call(msg: Run, fn: Callable[..., Any], args: dict[str, Any], soft: int, hard: int) -> Done:
    try:
        if msg.mem_bytes is not None:
            limit = _address_space() + msg.mem_bytes
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        started = time.monotonic()
        try:
            value = fn(**args)
        finally:
            if msg.mem_bytes is not None:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except MemoryError:
        return fail(msg, "killed", "memory_limit", "the task exceeded its memory cap")
    except FogmeshError as exc:
        return fail(msg, "failed", exc.code, exc.reason)
    except Exception as exc:
        done = fail(msg, "failed", "task_error", f"{type(exc).__name__}: {exc}")
        assert done.error is not None
        done.error["traceback"] = _traceback_tail(exc)
        return done
    try:
        data = msgspec.json.encode(value)
    except (TypeError, ValueError) as exc:
        return fail(msg, "failed", "bad_result", f"result is not JSON: {exc}")
    except MemoryError:
        return fail(msg, "killed", "memory_limit", "the task exceeded its memory cap")
    return Done(id=msg.id, status="completed", result=data, started_at=started)


# What a failed task's report carries of its stdout (`fogmesh task ID` shows it).
_STDOUT_CHARS = 4000


def _capture_stdout() -> bool:
    """Point fd 1 at a nameless temporary file, so that a failing task's last output can be
    reported with its error (it used to go to /dev/null). Each task starts it afresh."""
    directory = tempfile.gettempdir()
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):  # no O_TMPFILE (filesystem, or not Linux)
        try:
            fd, path = tempfile.mkstemp(prefix="fogmesh-task-out-")
            os.unlink(path)
        except OSError:
            return False
    os.dup2(fd, 1)
    os.close(fd)
    return True


def _rewind_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        if os.lseek(1, 0, os.SEEK_CUR):  # only a task that printed costs a truncation
            os.ftruncate(1, 0)
            os.lseek(1, 0, os.SEEK_SET)


def _stdout_tail() -> str:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        size = os.lseek(1, 0, os.SEEK_END)
        start = max(0, size - _STDOUT_CHARS)
        text = os.pread(1, size - start, start).decode("utf-8", "replace")
        return ("…" if start else "") + text
    return ""


def _traceback_tail(exc: BaseException) -> str:
    """The task's traceback from the task function down (this module's frame left out), its
    last ``_TRACEBACK_CHARS`` characters: what `fogmesh task ID` shows."""
    text = "".join(
        traceback.format_exception(
            type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
        )
    )
    return text if len(text) <= _TRACEBACK_CHARS else "…" + text[-_TRACEBACK_CHARS:]


_TRACEBACK_CHARS = 4000


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def command_main(
    worker_fds: tuple[int, int], msg: Run, report_r: int, report_w: int, out_w: int, err_w: int
) -> int:
    """A command task process: exec ``argv`` (reports only if exec fails)."""
    os.close(report_r)
    if not _detach(worker_fds):
        return 1
    # Python ignores SIGPIPE and SIGXFSZ; an exec'd program expects the defaults (as subprocess
    # restores them), or `yes | head` would behave differently here.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    try:
        if msg.mem_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (msg.mem_bytes, msg.mem_bytes))
        os.execvp(msg.argv[0], msg.argv)
    except OSError as exc:
        reason = f"{msg.argv[0]}: {exc.strerror or exc}"
        write_frame(report_w, fail(msg, "failed", "exec_failed", reason))
    return 127


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
