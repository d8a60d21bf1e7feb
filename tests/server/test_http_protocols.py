"""The header deadline and connection cap on both of uvicorn's HTTP implementations (httptools,
the default with uvicorn[standard], and h11, its fallback), in-process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fogmesh.server._http import guarded_http_protocol


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":  # an echo, as long as the client stays
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})
        return
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def serving(base: type[asyncio.Protocol], **limits: Any) -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", http=guarded_http_protocol(base=base, **limits)
    )
    server = _Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_half_headers_get_408_and_others_are_served(base: type[asyncio.Protocol]) -> None:
    with serving(base, header_timeout=0.5, max_connections=100) as port:
        opened = time.monotonic()
        half = socket.create_connection(("127.0.0.1", port), timeout=10)
        half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as ok:
            ok.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_all(ok).startswith(b"HTTP/1.1 200")
        assert read_all(half).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - opened < 5
        half.close()


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_past_the_cap_a_connection_gets_503(base: type[asyncio.Protocol]) -> None:
    with serving(base, header_timeout=30, max_connections=2) as port:
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            deadline = time.monotonic() + 10
            while True:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as extra:
                    try:
                        reply = read_all(extra)
                    except TimeoutError:  # accepted before the held two were counted
                        reply = b""
                if reply.startswith(b"HTTP/1.1 503") or time.monotonic() > deadline:
                    break
            assert reply.startswith(b"HTTP/1.1 503"), reply
        finally:
            for s in held:
                s.close()


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_an_upgraded_websocket_outlives_the_header_deadline(base: type[asyncio.Protocol]) -> None:
    # The deadline is for a request's headers: once the connection is a WebSocket (an agent's
    # link), the HTTP protocol object must not arm it again and close the link under it.
    from websockets.sync.client import connect

    with (
        serving(base, header_timeout=0.3, max_connections=100) as port,
        connect(f"ws://127.0.0.1:{port}/", open_timeout=10) as ws,
    ):
        until = time.monotonic() + 1.2  # four deadlines
        n = 0
        while time.monotonic() < until:
            ws.send(f"beat {n}")
            assert ws.recv(timeout=5) == f"beat {n}"
            n += 1
            time.sleep(0.05)  # a beat's interval, as an agent's heartbeats have
