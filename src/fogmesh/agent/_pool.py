"""Warm worker processes as seen from the runner's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Final

from fogmesh.agent._ipc import (
    HEADER,
    MAX_FRAME,
    TASK_GROUP_ENV,
    Exit,
    Ready,
    ToRunner,
    ToWorker,
    decode_to_runner,
    encode,
)
from fogmesh.agent._reaper import kill_descendants
from fogmesh.errors import DeviceError

__all__ = ["Worker"]

_START_TIMEOUT_S: Final = 60.0
# One thread per task process: tasks are capped in cores, and BLAS/ORT pools sized to the
# machine would only fight the cap. The user's environment wins where it sets them.
_THREAD_ENV: Final = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",  # per-thread arenas would eat RLIMIT_AS address space
}


class Worker:
    """One warm worker process (``fogmesh.agent._worker``) and its frame pipe."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.pid = proc.pid
        self.healthy = True
        self._outgoing: list[bytes] = []  # frames for the next write

    @classmethod
    async def spawn(
        cls, index: int, preload: tuple[str, ...], task_group: str | None = None
    ) -> Worker:
        """Start worker ``index``; ``task_group`` is the cgroup.procs file its task processes
        go in (their CPU cap), if the runner caps through cgroups."""
        env = dict(os.environ)
        for key, value in _THREAD_ENV.items():
            env.setdefault(key, value)
        env.pop(TASK_GROUP_ENV, None)
        if task_group is not None:
            env[TASK_GROUP_ENV] = task_group
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fogmesh.agent._worker",
            *preload,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: one killpg ends it and its tasks
            env=env,
        )
        worker = cls(index, proc)
        try:
            async with asyncio.timeout(_START_TIMEOUT_S):
                first = await worker.recv()
        except (TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            await worker.kill()
            raise DeviceError(f"worker process {index} did not start: {exc!r}") from exc
        except asyncio.CancelledError:  # the runner closed while this worker was starting
            await worker.kill()
            raise
        if not isinstance(first, Ready):
            await worker.kill()
            raise DeviceError(f"worker process {index} sent {type(first).__name__} first")
        return worker

    def send(self, msg: ToWorker) -> None:
        """Queue ``msg`` for the worker. What is sent in one turn of the event loop goes in one
        write: each write to a sleeping worker is a wake-up, and on a loaded device the writer
        often loses its CPU to the process it woke."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise BrokenPipeError("worker stdin is closed")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(encode(msg))

    def _flush(self) -> None:
        frames, self._outgoing = self._outgoing, []
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            return  # the worker is gone: its reader sees the end of its output
        stdin.write(b"".join(frames))

    async def drain(self) -> None:
        if self.proc.stdin is not None:
            await self.proc.stdin.drain()

    async def recv(self) -> ToRunner:
        stdout = self.proc.stdout
        assert stdout is not None
        (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        return decode_to_runner(await stdout.readexactly(size))

    async def kill(self) -> None:
        """Kill the worker, its task processes and whatever they started, now, and reap it."""
        self.healthy = False
        if self.proc.returncode is None:  # once reaped, its pid (and pgid) may belong to another
            # Its descendants first: once it is dead they would be re-parented out of reach
            # (tasks' own sessions escape the process group kill below). Inline, not in a
            # thread: a caller cancelled meanwhile (the runner closing while it replaces this
            # worker) would otherwise kill the worker while its descendants are still being
            # looked for. It takes a few milliseconds: they die at the first SIGKILL.
            kill_descendants(self.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def stop(self, grace_s: float) -> None:
        """Ask the worker to exit (it kills its running task first); kill it after ``grace_s``."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
            self.send(Exit())
        try:
            async with asyncio.timeout(grace_s):
                await self.proc.wait()
        except TimeoutError:
            pass
        await self.kill()
