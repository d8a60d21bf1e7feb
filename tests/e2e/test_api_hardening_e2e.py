"""The REST edge of a real coordinator process under a failing store and half-sent requests."""

from __future__ import annotations

import resource
import socket
import time

import httpx
from e2e_helpers import Fog, wait_until

TASK = {"type": "preprocessing", "payload": {"type": "python", "function": "m:f", "args": {}}}


def test_a_failing_store_is_503_with_a_plain_reason_and_healthz_says_degraded(fog: Fog) -> None:
    fog.start_coordinator()
    pid = fog.procs["coordinator"].pid
    assert fog.api("POST", "/v1/tasks", json=TASK).status_code == 201
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    # The coordinator may no longer write past the first byte of any file: SQLite's writes fail
    # with EFBIG as they would on a full disk (Python ignores SIGXFSZ), reads still work.
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        r = fog.api("POST", "/v1/tasks", json=TASK)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        error = r.json()["error"]
        assert error["code"] == "store_unavailable"
        for leak in ("sqlite", "SQL", "INSERT", "OperationalError", "I/O"):
            assert leak not in error["reason"], error
        r = fog.api("POST", "/v1/tasks/batch", json={"tasks": [TASK, TASK]})
        assert r.status_code == 503, r.text
        health = httpx.get(f"{fog.url}/healthz", timeout=10)
        assert health.status_code == 503, health.text
        assert health.json()["status"] == "degraded" and health.json()["store"] == "failing"
        assert health.headers["retry-after"] == "5"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

    def healthy() -> bool:
        return httpx.get(f"{fog.url}/healthz", timeout=10).status_code == 200

    wait_until(healthy, 30, "the coordinator to report a healthy store again")
    assert fog.api("POST", "/v1/tasks", json=TASK).status_code == 201
    tasks = fog.api("GET", "/v1/tasks").json()["tasks"]
    assert len(tasks) == 2  # the refused submits left nothing behind


def _half_requests(fog: Fog, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", fog.port), timeout=5)
        # Half a request: the request line and one header, never the blank line that ends them;
        # every tenth sends nothing at all.
        if i % 10:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket) -> bool:
    """Whether the server has closed ``s`` (reads what it sent first)."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_half_sent_headers_are_closed_within_the_header_timeout(fog: Fog) -> None:
    fog.start_coordinator("--header-timeout", "2")
    socks = _half_requests(fog, 200)
    try:
        opened = time.monotonic()
        # The server keeps answering others meanwhile.
        for _ in range(5):
            r = httpx.get(f"{fog.url}/healthz", timeout=5)
            assert r.status_code == 200
        wait_until(
            lambda: all(_closed_by_server(s) for s in socks) or None,
            15,
            "every half-sent request to be closed",
        )
        took = time.monotonic() - opened
        assert took < 2 + 5, took  # the timeout plus scheduling slack on a busy machine
        # A kept-alive connection that starts a second request and stalls is closed too.
        with socket.create_connection(("127.0.0.1", fog.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            s.settimeout(8)
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 408"), reply
        # Agents' WebSockets and ordinary requests are not affected.
        assert fog.api("POST", "/v1/tasks", json=TASK).status_code == 201
    finally:
        for s in socks:
            s.close()


def test_connections_beyond_the_cap_are_turned_away(fog: Fog) -> None:
    fog.start_coordinator("--max-connections", "20", "--header-timeout", "60")
    socks = [socket.create_connection(("127.0.0.1", fog.port), timeout=5) for _ in range(20)]
    try:

        def turned_away() -> bytes | None:
            with socket.create_connection(("127.0.0.1", fog.port), timeout=5) as extra:
                reply = extra.recv(4096)  # answered at once, before any request
                return reply if reply.startswith(b"HTTP/1.1 503") else None

        reply = wait_until(turned_away, 10, "a connection past the cap to be turned away")
        assert b"retry-after: 5" in reply.lower()
    finally:
        for s in socks:
            s.close()
    wait_until(
        lambda: httpx.get(f"{fog.url}/healthz", timeout=5).status_code == 200 or None,
        10,
        "the coordinator to answer again once connections closed",
    )


def test_the_client_reads_a_503_as_a_store_error() -> None:
    from fogmesh.client import error_from_response
    from fogmesh.errors import StoreError

    body = {"error": {"code": "store_unavailable", "reason": "the store is not answering"}}
    error = error_from_response(httpx.Response(503, json=body, headers={"Retry-After": "5"}))
    assert isinstance(error, StoreError) and error.reason == "the store is not answering"
