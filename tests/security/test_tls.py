"""HTTPS pinning: a wrong fingerprint fails before any request byte (and so the ticket) leaves,
and a ticket never goes over plain http to another machine.

The server here is a real TLS server on 127.0.0.1 that records every application byte it
receives after the handshake; the control cases (the right pin) show it does see the request,
so an empty record means nothing was sent, not that nothing could have been seen.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fogmesh.agent.link import AgentCredentials, LinkRefused, open_link
from fogmesh.client import FogClient
from fogmesh.edge.remote import RemoteEdge
from fogmesh.errors import ConfigError, KeyFileError, TLSError, TransportError
from fogmesh.security.identity import DeviceIdentity
from fogmesh.security.noise import NoiseKeypair
from fogmesh.security.selfsigned import (
    CoordinatorCertificate,
    load_or_create_certificate,
    saved_fingerprint,
)
from fogmesh.security.tls import (
    client_context,
    format_fingerprint,
    is_local_host,
    is_loopback,
    parse_fingerprint,
    refuse_plain_http,
)
from fogmesh.server.config import ServerConfig

TICKET = "v4.public.secret-ticket-bytes"
_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"connection: close\r\n\r\n{}"
)


class RecordingTLSServer:
    """Accepts TLS connections and records the application bytes each one carried."""

    def __init__(self, cert: CoordinatorCertificate) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert.cert_path, cert.key_path)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.received = bytearray()
        self.connections_done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._handle(conn)
            finally:
                self.connections_done += 1

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        with tls, contextlib.suppress(ssl.SSLError, OSError):
            while True:
                data = tls.recv(65536)
                if not data:
                    return
                self.received += data
                if b"\r\n\r\n" in self.received:
                    tls.sendall(_REPLY)
                    return

    def wait_for_connections(self, count: int, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while self.connections_done < count:
            assert time.monotonic() < deadline, "the client never connected"
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def cert(tmp_path: Path) -> CoordinatorCertificate:
    return load_or_create_certificate(tmp_path / "server", host="127.0.0.1")


@pytest.fixture
def server(cert: CoordinatorCertificate) -> Iterator[RecordingTLSServer]:
    srv = RecordingTLSServer(cert)
    try:
        yield srv
    finally:
        srv.close()


WRONG = bytes(32)


# -- the HTTP client (httpx, blocking) --------------------------------------------------------
def test_a_wrong_pin_sends_nothing_and_says_so(
    server: RecordingTLSServer, cert: CoordinatorCertificate
) -> None:
    url = f"https://127.0.0.1:{server.port}"
    client = FogClient(url, TICKET, fingerprint=WRONG)
    with client, pytest.raises(TLSError, match="fingerprint mismatch") as caught:
        client.status()
    assert cert.fingerprint_text in caught.value.reason  # says what the server presented
    assert "nothing was sent" in caught.value.reason
    server.wait_for_connections(1)
    assert bytes(server.received) == b""


def test_the_right_pin_reaches_the_server(
    server: RecordingTLSServer, cert: CoordinatorCertificate
) -> None:
    url = f"https://127.0.0.1:{server.port}"
    with FogClient(url, TICKET, fingerprint=cert.fingerprint_text) as client:
        assert client.status() == {}
    assert f"Bearer {TICKET}".encode() in server.received


def test_without_a_pin_a_self_signed_server_is_untrusted(server: RecordingTLSServer) -> None:
    client = FogClient(f"https://127.0.0.1:{server.port}", TICKET)
    with client, pytest.raises(TLSError, match=r"not trusted.*--fingerprint"):
        client.status()
    server.wait_for_connections(1)
    assert bytes(server.received) == b""


# -- the edge client (httpx, async) and the agent link (websockets) ---------------------------
async def test_async_edge_client_with_a_wrong_pin_sends_nothing(
    server: RecordingTLSServer, cert: CoordinatorCertificate
) -> None:
    url = f"https://127.0.0.1:{server.port}"
    with pytest.raises(TLSError, match="fingerprint mismatch"):
        await RemoteEdge(url, TICKET, fingerprint=WRONG).object("GET", "/v1/edge/status")
    server.wait_for_connections(1)
    assert bytes(server.received) == b""
    assert await RemoteEdge(url, TICKET, fingerprint=cert.fingerprint).object("GET", "/x") == {}
    assert f"Bearer {TICKET}".encode() in server.received


def _agent(tmp_path: Path, url: str, pin: bytes) -> AgentCredentials:
    directory = tmp_path / "agent"
    return AgentCredentials(
        directory,
        DeviceIdentity.load_or_create(directory / "identity.key"),
        NoiseKeypair.load_or_create(directory / "noise.key"),
        url,
        bytes(32),
        TICKET,
        enrolled=False,
        tls_fingerprint=pin,
    )


async def test_agent_link_with_a_wrong_pin_is_refused_before_the_upgrade(
    server: RecordingTLSServer, cert: CoordinatorCertificate, tmp_path: Path
) -> None:
    url = f"https://127.0.0.1:{server.port}"
    with pytest.raises(LinkRefused, match="fingerprint mismatch"):
        await open_link(_agent(tmp_path, url, WRONG), open_timeout=5)
    server.wait_for_connections(1)
    assert bytes(server.received) == b""
    # Control: with the right pin the WebSocket upgrade request does arrive (the recording
    # server then answers plain HTTP, which is no WebSocket, so the link fails after it).
    with pytest.raises(TransportError):
        await open_link(_agent(tmp_path, url, cert.fingerprint), open_timeout=5)
    assert b"GET /v1/agent" in server.received


# -- plain http --------------------------------------------------------------------------------
def test_a_ticket_is_not_sent_over_http_to_another_machine() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    for url in ("http://192.168.1.20:8700", "http://fog.example:8700", "http://[fd00::1]:80"):
        with pytest.raises(ConfigError, match="refusing to send a ticket in clear"):
            FogClient(url, TICKET, transport=httpx.MockTransport(record))
        with pytest.raises(ConfigError, match="refusing"):
            RemoteEdge(url, TICKET)
    assert sent == []
    # What stays allowed: this machine, https, and an explicit opt-in (the control).
    for url in ("http://127.0.0.1:8700", "http://localhost:8700", "http://[::1]:1"):
        with FogClient(url, TICKET, transport=httpx.MockTransport(record)) as client:
            client.status()
    mock = httpx.MockTransport(record)
    with FogClient("http://192.168.1.20:8700", TICKET, transport=mock, insecure_http=True) as c:
        c.status()
    assert len(sent) == 4
    refuse_plain_http("https://192.168.1.20:8700", insecure_http=False)


def test_the_cli_refuses_http_to_another_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from fogmesh.cli.app import app

    monkeypatch.delenv("FOGMESH_INSECURE_HTTP", raising=False)
    # 192.0.2.1 (TEST-NET-1) is never reachable: had the client tried, it would have hung or
    # failed to connect instead of refusing up front.
    result = CliRunner().invoke(app, ["tasks", "--url", "http://192.0.2.1:8700", "--ticket", "x"])
    assert isinstance(result.exception, ConfigError)
    assert "refusing to send a ticket in clear" in result.exception.reason


# -- values ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback", "local"),
    [
        ("127.0.0.1", True, True),
        ("127.3.2.1", True, True),
        ("::1", True, True),
        ("[::1]", True, True),
        ("localhost", True, True),
        ("0.0.0.0", False, True),  # binds every interface; a client dialling it reaches here
        ("::", False, True),
        ("192.168.1.20", False, False),
        ("fog.example", False, False),
        ("", False, False),
    ],
)
def test_loopback_and_local_hosts(host: str, loopback: bool, local: bool) -> None:
    assert is_loopback(host) is loopback
    assert is_local_host(host) is local


@pytest.mark.parametrize(
    ("host", "options", "tls"),
    [
        ("127.0.0.1", {}, False),  # loopback: nothing crosses a network
        ("127.0.0.1", {"tls": True}, True),
        ("0.0.0.0", {}, True),  # any other address: HTTPS by default
        ("192.168.1.20", {}, True),
        ("0.0.0.0", {"insecure_http": True}, False),
    ],
)
def test_when_the_coordinator_serves_https(
    tmp_path: Path, host: str, options: dict[str, bool], tls: bool
) -> None:
    config = ServerConfig(data_dir=tmp_path, host=host, **options)
    assert config.uses_tls is tls
    assert config.url.startswith("https://" if tls else "http://")


def test_server_config_rejects_contradictions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--insecure-http"):
        ServerConfig(data_dir=tmp_path, host="0.0.0.0", tls=True, insecure_http=True)
    with pytest.raises(ConfigError, match="both --tls-cert and --tls-key"):
        ServerConfig(data_dir=tmp_path, tls_cert=tmp_path / "c.pem")
    with pytest.raises(ConfigError, match="not https"):
        ServerConfig(data_dir=tmp_path, host="0.0.0.0", public_url="http://10.0.0.2:8700")


def test_fingerprint_forms() -> None:
    digest = bytes(range(32))
    text = format_fingerprint(digest)
    assert text == "sha256:" + digest.hex()
    openssl = "sha256 Fingerprint=" + ":".join(f"{b:02X}" for b in digest)
    for form in (text, text.upper(), digest.hex(), openssl, f"  {text}\n"):
        assert parse_fingerprint(form) == digest
    for bad in ("", "sha256:abc", "md5:" + digest.hex(), "sha256:" + "g" * 64):
        with pytest.raises(ConfigError, match="--fingerprint"):
            parse_fingerprint(bad)
    assert isinstance(client_context(digest), ssl.SSLContext)


# -- the self-signed certificate ---------------------------------------------------------------
def test_self_signed_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    from cryptography import x509

    first = load_or_create_certificate(tmp_path, host="0.0.0.0", names=["fog.example", "10.0.0.5"])
    assert first.self_signed
    assert stat.S_IMODE(os.stat(first.key_path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(first.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "fog.example", socket.gethostname()} <= set(dns)
    assert {"127.0.0.1", "::1", "10.0.0.5"} <= ips
    # A restart with another bind address keeps the certificate every pin names.
    again = load_or_create_certificate(tmp_path, host="192.168.1.20")
    assert again.fingerprint == first.fingerprint == saved_fingerprint(tmp_path)


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    made = load_or_create_certificate(tmp_path, host="127.0.0.1")
    made.key_path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_certificate(tmp_path, host="127.0.0.1")
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_certificate(tmp_path, host="x", cert=made.cert_path, key=made.key_path)


def test_where_the_client_finds_its_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from fogmesh.client import connect, find_fingerprint
    from fogmesh.security.keyfile import write_private_file

    monkeypatch.delenv("FOGMESH_FINGERPRINT", raising=False)
    pin = bytes(range(32))
    url = "https://127.0.0.1:8700"
    runtime = tmp_path / "coordinator.json"
    record = {"url": url, "pid": 1, "fingerprint": format_fingerprint(pin), "self_signed": True}
    write_private_file(runtime, json.dumps(record).encode())
    assert find_fingerprint(url, data_dir=tmp_path) == pin  # the coordinator on this machine
    assert find_fingerprint("https://10.0.0.2:8700", data_dir=tmp_path) is None  # another one
    assert find_fingerprint("https://x:1", "sha256:" + "ab" * 32, tmp_path) == b"\xab" * 32
    monkeypatch.setenv("FOGMESH_FINGERPRINT", "sha256:" + "cd" * 32)
    assert find_fingerprint("https://x:1", data_dir=tmp_path) == b"\xcd" * 32
    runtime.chmod(0o666)  # a record others could rewrite is not trusted
    with pytest.raises(KeyFileError, match="chmod 600"):
        connect(data_dir=tmp_path, ticket="t")
    # FOGMESH_INSECURE_HTTP=1 is the environment's --insecure-http.
    with pytest.raises(ConfigError, match="refusing"):
        connect("http://192.0.2.1:8700", "t", tmp_path)
    monkeypatch.setenv("FOGMESH_INSECURE_HTTP", "1")
    connect("http://192.0.2.1:8700", "t", tmp_path).close()


async def test_an_agent_dialling_ws_to_an_https_coordinator_is_told_why(
    server: RecordingTLSServer, tmp_path: Path
) -> None:
    creds = _agent(tmp_path, f"http://127.0.0.1:{server.port}", bytes(32))
    creds.tls_fingerprint = None
    with pytest.raises(TransportError, match="now serves HTTPS, enrol again"):
        await open_link(creds, open_timeout=5)


def test_one_rule_says_which_bind_hosts_mean_every_interface() -> None:
    from fogmesh.security.tls import is_wildcard

    for host in ("", None, "*", "0.0.0.0", "::", "[::]", "0:0::0"):
        assert is_wildcard(host), host
    for host in ("127.0.0.1", "localhost", "192.168.1.20", "fog.example", "::1"):
        assert not is_wildcard(host), host
