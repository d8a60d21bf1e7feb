"""The agent's side of the link: its saved credentials, and one Noise XK session over WebSocket.

Files in the agent's data directory (keys 0600, via ``fogmesh.security``)::

    agent/identity.key     Ed25519 device identity (the device id is derived from it)
    agent/noise.key        X25519 Noise static key, bound to the identity by a signature
    agent/agent.json       coordinator URL, Noise key and certificate pin (from the join token),
                           device id (0600)
    agent/agent.ticket     the agent ticket the coordinator issued at enrolment (0600)

Both files are read under the key files' rule (owner-only, else refused). A coordinator URL with
https:// is dialled as wss://, its certificate pinned to the join token's fingerprint (or
verified by the system's CAs when the token has none).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from fogmesh.errors import ConfigError, HandshakeError, TransportError
from fogmesh.security.handshake import device_hello
from fogmesh.security.identity import DeviceIdentity
from fogmesh.security.keyfile import read_private_file
from fogmesh.security.noise import NoiseInitiator, NoiseKeypair
from fogmesh.security.tls import client_context, tls_error_in
from fogmesh.security.tokens import JoinToken
from fogmesh.wire.channel import PROLOGUE, SecureChannel

__all__ = ["AgentCredentials", "Link", "LinkRefused", "agent_ws_url", "open_link"]

AGENT_DIR: Final = "agent"
_STATE: Final = "agent.json"
_TICKET: Final = "agent.ticket"
_MAX_FRAME: Final = 1 << 17
# Close codes after which retrying cannot help: the coordinator refused who we are.
FATAL_CLOSE_CODES: Final = frozenset({4400, 4401, 4403})


def _proxy_option() -> Literal[True] | None:
    """websockets' ``proxy``: ``True`` (find the proxy as urllib.request's ``getproxies`` and
    ``proxy_bypass`` do), or ``None`` where that is known to find none. Outside macOS and
    Windows those read the environment's ``*_proxy`` variables alone, so with none set there is
    no proxy, and saying so keeps urllib.request and http.client out of the agent (1.9 MB of its
    idle memory)."""
    if sys.platform == "darwin" or os.name == "nt":
        return True
    named = any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in os.environ.items()
    )
    return True if named else None


class LinkRefused(HandshakeError):
    """The coordinator refused this device's session (bad key, ticket, protocol): not retried."""


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a platform without directory handles: the files themselves are fsync'd
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; nothing more can be done here
    finally:
        os.close(fd)


@dataclass(slots=True)
class AgentCredentials:
    directory: Path
    identity: DeviceIdentity
    noise: NoiseKeypair
    coordinator_url: str
    coordinator_key: bytes
    ticket: str  # the agent ticket, or the one-shot enrolment ticket until enrolled
    enrolled: bool
    tls_fingerprint: bytes | None = None  # the coordinator certificate's SHA-256 pin

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @classmethod
    def _keys(cls, data_dir: Path) -> tuple[Path, DeviceIdentity, NoiseKeypair]:
        directory = Path(data_dir) / AGENT_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = DeviceIdentity.load_or_create(directory / "identity.key")
        noise = NoiseKeypair.load_or_create(directory / "noise.key")
        return directory, identity, noise

    @classmethod
    def from_join_token(cls, data_dir: Path, token: str) -> AgentCredentials:
        """Credentials for a first connection (enrolment); the token is checked, not spent."""
        join = JoinToken.parse(token)
        directory, identity, noise = cls._keys(data_dir)
        # The token is spent in this identity's name: after a power cut the device must come
        # back with the same key (to enrol again if the answer was lost), so the key files'
        # directory entries are made durable before the token is presented.
        _sync_directory(directory)
        return cls(
            directory,
            identity,
            noise,
            join.coordinator_url,
            join.coordinator_key,
            join.ticket,
            enrolled=False,
            tls_fingerprint=join.tls_fingerprint,
        )

    @classmethod
    def load(cls, data_dir: Path) -> AgentCredentials:
        """The saved identity and agent ticket; ConfigError if this device never enrolled."""
        directory = Path(data_dir) / AGENT_DIR
        try:
            state = json.loads(read_private_file(directory / _STATE, what="agent state file"))
            ticket = read_private_file(directory / _TICKET, what="ticket file").decode("ascii")
            ticket = ticket.strip()
            url, key = str(state["coordinator_url"]), bytes.fromhex(state["coordinator_key"])
            pin = state.get("tls_fingerprint")
            fingerprint = bytes.fromhex(pin) if pin else None
        except FileNotFoundError:
            raise ConfigError(
                f"no enrolment found in {directory}: run 'fogmesh agent --join TOKEN' first",
                field="--data-dir",
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{directory / _STATE} is damaged: {exc}", field="--data-dir"
            ) from exc
        _, identity, noise = cls._keys(data_dir)
        if state.get("device_id") != identity.device_id:
            raise ConfigError(
                f"{directory} holds an enrolment for another identity; re-enrol with --join",
                field="--data-dir",
            )
        return cls(
            directory, identity, noise, url, key, ticket, enrolled=True, tls_fingerprint=fingerprint
        )

    def save_enrolment(self, ticket: str) -> None:
        """Keep the agent ticket (0600) and the coordinator it belongs to."""
        _write_private(self.directory / _TICKET, ticket + "\n")
        state = {
            "coordinator_url": self.coordinator_url,
            "coordinator_key": self.coordinator_key.hex(),
            "device_id": self.device_id,
        }
        if self.tls_fingerprint is not None:
            state["tls_fingerprint"] = self.tls_fingerprint.hex()
        _write_private(self.directory / _STATE, json.dumps(state) + "\n")
        self.ticket = ticket
        self.enrolled = True


def agent_ws_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/v1/agent"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class Link:
    """One authenticated session: a ``SecureChannel`` over an open WebSocket."""

    def __init__(self, ws: ClientConnection, channel: SecureChannel) -> None:
        self.ws = ws
        self.channel = channel

    async def close(self) -> None:
        await self.ws.close()


def _refusal(exc: ConnectionClosed, url: str) -> TransportError | LinkRefused:
    frame = exc.rcvd
    if frame is None or frame.code not in FATAL_CLOSE_CODES:
        return TransportError(f"coordinator at {url} closed the connection")
    reason = frame.reason or "no reason given"
    if frame.code == 4401 and "ticket" not in reason:
        return LinkRefused(
            f"coordinator at {url} refused the Noise handshake ({reason}): it does not hold the "
            "key this device trusts — wrong coordinator, or a join token for another one"
        )
    return LinkRefused(f"coordinator at {url} refused this device: {reason}")


async def open_link(creds: AgentCredentials, *, open_timeout: float = 10.0) -> Link:
    """Connect and run the XK handshake. ``LinkRefused`` when retrying cannot help,
    ``TransportError`` when it may (coordinator down, network)."""
    url = agent_ws_url(creds.coordinator_url)
    tls: dict[str, Any] = {}  # wss:// without a pin: websockets verifies against the CAs
    if url.startswith("wss:") and creds.tls_fingerprint is not None:
        tls["ssl"] = client_context(creds.tls_fingerprint)
    try:
        ws = await connect(
            url,
            **tls,
            max_size=_MAX_FRAME,
            open_timeout=open_timeout,
            ping_interval=20,
            ping_timeout=20,
            # Noise ciphertext does not compress; deflate would only burn CPU on both ends.
            compression=None,
            proxy=_proxy_option(),
        )
    except InvalidURI as exc:
        raise ConfigError(f"coordinator URL {url!r} is not valid") from exc
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        untrusted = tls_error_in(exc, url)
        if untrusted is not None:
            # Not the certificate the join token names: retrying reaches the same server.
            raise LinkRefused(untrusted.reason) from exc
        hint = ""
        if url.startswith("ws:") and isinstance(exc, InvalidHandshake):
            hint = " (if the coordinator now serves HTTPS, enrol again with a new join token)"
        raise TransportError(f"cannot reach the coordinator at {url}: {exc}{hint}") from exc
    initiator = NoiseInitiator(creds.noise, creds.coordinator_key, PROLOGUE)
    try:
        await ws.send(initiator.write_message())
        reply = await ws.recv()
        if not isinstance(reply, bytes):
            raise HandshakeError("coordinator answered the handshake with text")
        initiator.read_message(reply)
        hello = device_hello(creds.identity, creds.noise.public, creds.ticket)
        await ws.send(initiator.write_message(hello))
    except ConnectionClosed as exc:
        raise _refusal(exc, url) from None
    except HandshakeError as exc:
        await ws.close()
        raise LinkRefused(
            f"handshake with {url} failed: {exc.reason} — the coordinator does not hold the key "
            "in this device's join token"
        ) from exc
    transport = initiator.transport()

    async def recv() -> bytes:
        try:
            data = await ws.recv()
        except ConnectionClosed as exc:
            raise _refusal(exc, url) from None
        if not isinstance(data, bytes):
            raise TransportError("the agent link carries binary frames only")
        return data

    async def send(frame: bytes) -> None:
        try:
            await ws.send(frame)
        except ConnectionClosed as exc:
            raise _refusal(exc, url) from None

    return Link(ws, SecureChannel(transport, send, recv))
