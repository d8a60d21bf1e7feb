"""A TCP proxy on 127.0.0.1 that loses one reply: it cuts the connection instead of passing it on.

It runs its own event loop in a thread, so the processes on either side are real and unaware of
it. A ``Cut`` watches one connection's bytes both ways and says when the server's reply must be
lost; the proxy then closes both sides without forwarding that reply. It cuts once, then passes
everything through (the retry must get through).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["CutAfterRequest", "CutWebSocketFrame", "CuttingProxy"]


class Cut:
    """Per connection: ``up`` sees client bytes; ``down`` gets server bytes and returns what to
    forward, and whether to cut the connection after forwarding that much."""

    def up(self, data: bytes) -> None:
        pass

    def down(self, data: bytes) -> tuple[bytes, bool]:
        return data, False


class CutAfterRequest(Cut):
    """Loses the answer to the first request that starts with ``request_line`` (e.g.
    ``b"POST /v1/tasks/batch "``): the server got the whole request and answered; the client
    gets nothing."""

    def __init__(self, request_line: bytes) -> None:
        self._line = request_line
        self._seen = b""
        self._armed = False

    def up(self, data: bytes) -> None:
        self._seen = (self._seen + data)[-4096:]
        if self._line in self._seen:
            self._armed = True

    def down(self, data: bytes) -> tuple[bytes, bool]:
        if self._armed:
            return b"", True
        return data, False


class CutWebSocketFrame(Cut):
    """On a WebSocket to ``path``, loses the server's ``index``-th frame (1-based, after the
    HTTP upgrade) and everything after it."""

    def __init__(self, path: bytes, index: int) -> None:
        self._path = path
        self._index = index
        self._first = b""
        self._buf = b""
        self._upgraded = False
        self._frames = 0

    def up(self, data: bytes) -> None:
        if len(self._first) < 256:
            self._first += data

    def down(self, data: bytes) -> tuple[bytes, bool]:
        if not self._first.startswith(b"GET " + self._path):
            return data, False
        self._buf += data
        out = b""
        if not self._upgraded:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return out, False
            out, self._buf = self._buf[: end + 4], self._buf[end + 4 :]
            self._upgraded = True
        while True:
            size = _frame_size(self._buf)
            if size is None or len(self._buf) < size:
                if self._frames + 1 == self._index and self._buf:
                    return out, True  # the lost frame has begun to arrive: cut before it
                return out, False
            if self._frames + 1 == self._index:
                return out, True
            out, self._buf = out + self._buf[:size], self._buf[size:]
            self._frames += 1


def _frame_size(buf: bytes) -> int | None:
    """The length of the (unmasked, server-sent) frame at the start of ``buf``, once its header
    is complete."""
    if len(buf) < 2:
        return None
    length, header = buf[1] & 0x7F, 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, header = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, header = int.from_bytes(buf[2:10], "big"), 10
    return header + length


class CuttingProxy:
    """``with CuttingProxy(target_port, lambda: CutAfterRequest(...)) as proxy:`` — clients
    connect to ``proxy.port``; ``proxy.cuts`` counts the replies it lost (at most one)."""

    def __init__(self, target_port: int, make_cut: Callable[[], Cut]) -> None:
        self._target = target_port
        self._make_cut = make_cut
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.cuts = 0
        self.connections = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for conn in list(self._conns):
                conn.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.connections += 1
        cut = self._make_cut() if self.cuts == 0 else Cut()
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client_w.close()
            self._conns.discard(task)
            return
        done = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                cut.up(data)
                server_w.write(data)
                await server_w.drain()
            with contextlib.suppress(OSError):
                server_w.write_eof()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                forward, stop = cut.down(data)
                if forward:
                    client_w.write(forward)
                    await client_w.drain()
                if stop:
                    self.cuts += 1
                    break
            done.set()

        jobs = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await done.wait()
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.transport.abort()  # RST: the peer sees the link die, not a clean end
            self._conns.discard(task)
