"""Messages between the runner and its warm worker processes (private to the agent).

Frames are a 4-byte big-endian length followed by a msgpack-encoded message. This is a pipe
between two processes of one device, not the agent↔coordinator wire protocol.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Final

import msgspec

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "TASK_GROUP_ENV",
    "Done",
    "Exit",
    "FrameBuffer",
    "Kill",
    "Ready",
    "Run",
    "Started",
    "ToRunner",
    "ToWorker",
    "decode_to_runner",
    "decode_to_worker",
    "encode",
    "write_frame",
]

HEADER: Final = struct.Struct(">I")
MAX_FRAME: Final = 256 << 20  # bigger results are refused in the worker long before this
# Environment variable naming the cgroup.procs file a worker puts its task processes in.
TASK_GROUP_ENV: Final = "FOGMESH_TASK_CGROUP"


class Run(msgspec.Struct, tag="run", kw_only=True):
    id: str
    kind: str  # "python" | "command"
    module: str = ""
    function: str = ""
    args: bytes = b"{}"  # JSON object, decoded in the task process only
    argv: list[str] = msgspec.field(default_factory=list)
    duty_cores: float | None = None  # SIGSTOP/SIGCONT cap in cores; None = not duty-cycled
    mem_bytes: int | None = None  # address space the task may add to the warm worker's
    timeout_s: float = 60.0
    max_capture: int = 1 << 20  # result/stdout bytes kept before the task is stopped
    keep: bool = True  # a python task process may serve the next task


class Kill(msgspec.Struct, tag="kill", kw_only=True):
    id: str
    reason: str  # "cancelled" | "timeout"


class Exit(msgspec.Struct, tag="exit"):
    pass


class Ready(msgspec.Struct, tag="ready", kw_only=True):
    pid: int


class Started(msgspec.Struct, tag="started", kw_only=True):
    id: str
    pid: int
    at: float  # time.monotonic() in the worker (CLOCK_MONOTONIC is system-wide on Linux)


class Done(msgspec.Struct, tag="done", kw_only=True):
    id: str
    status: str
    result: bytes | None = None  # JSON text of the result (completed only)
    error: dict[str, Any] | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float | None = None
    started_at: float | None = None


ToWorker = Run | Kill | Exit
ToRunner = Ready | Started | Done

_enc = msgspec.msgpack.Encoder()
_to_worker = msgspec.msgpack.Decoder(ToWorker)
_to_runner = msgspec.msgpack.Decoder(ToRunner)


def encode(msg: ToWorker | ToRunner) -> bytes:
    body = _enc.encode(msg)
    return HEADER.pack(len(body)) + body


def decode_to_worker(body: bytes) -> ToWorker:
    return _to_worker.decode(body)


def decode_to_runner(body: bytes) -> ToRunner:
    return _to_runner.decode(body)


def write_frame(fd: int, msg: ToWorker | ToRunner) -> None:
    view = memoryview(encode(msg))
    while view:
        n = os.write(fd, view)
        view = view[n:]


class FrameBuffer:
    """Accumulates bytes read from a non-blocking pipe and yields whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> bytes | None:
        if len(self._buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buf)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
        end = HEADER.size + size
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[HEADER.size : end])
        del self._buf[:end]
        return body
