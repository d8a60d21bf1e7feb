"""The authenticated layer on top of the XK handshake: who the device is, and what it may do.

Message 3 of XK is the first one the initiator sends after the coordinator has proven its static
key (``es``/``ee`` in messages 1–2), and it is encrypted to that coordinator, so it is where the
device puts its credentials: its Ed25519 identity key, the signature binding that identity to the
Noise static key it used in this very handshake, and optionally a ticket. The binding is what
links the long-lived identity (the device id) to the DH key that actually authenticated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from fogmesh.errors import HandshakeError, IntegrityError, ReplayError, TicketError
from fogmesh.security.identity import (
    DeviceIdentity,
    device_id_from_public_key,
    verify_noise_binding,
)
from fogmesh.security.noise import NoiseResponder

if TYPE_CHECKING:  # the device side (device_hello) never checks a ticket
    from fogmesh.security.tickets import Ticket, TicketVerifier

__all__ = [
    "AuthenticatedDevice",
    "accept_device_hello",
    "device_hello",
]

_HELLO_VERSION = 1
_MAX_HELLO = 8192


class _DeviceHello(msgspec.Struct, array_like=True, frozen=True):
    version: int
    identity_key: bytes
    binding: bytes
    ticket: str | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_DeviceHello).decode


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    """What the coordinator knows after message 3 has been checked."""

    device_id: str
    identity_key: bytes
    noise_static: bytes
    handshake_hash: bytes
    ticket: Ticket | None
    raw_ticket: str | None

    def __repr__(self) -> str:
        return f"AuthenticatedDevice(device_id={self.device_id!r})"


def device_hello(
    identity: DeviceIdentity,
    noise_static_public: bytes,
    ticket: str | None = None,
    *,
    binding: bytes | None = None,
) -> bytes:
    """The message-3 payload for a device. Pass a stored ``binding`` to skip re-signing."""
    if binding is None:
        binding = identity.bind_noise_key(noise_static_public)
    return _encode(_DeviceHello(_HELLO_VERSION, identity.public_key, binding, ticket))


def accept_device_hello(
    responder: NoiseResponder,
    payload: bytes,
    *,
    tickets: TicketVerifier | None = None,
    audience: str | None = None,
    scope: str | None = None,
    ticket_bound_to_device: bool = False,
) -> AuthenticatedDevice:
    """Check message 3's payload on a finished responder handshake.

    Raises HandshakeError for a malformed payload or an unbound Noise key; with ``tickets`` a
    ticket is required and checked for ``audience``/``scope`` (the specific TicketError or
    ReplayError propagates). With ``ticket_bound_to_device`` the ticket's subject must be this
    device's id. Any failure closes the responder's session.
    """
    if not responder.handshake_complete or responder.remote_static is None:
        raise responder.fail("device credentials arrive in message 3; the handshake is not done")
    if len(payload) > _MAX_HELLO:
        raise responder.fail("device credentials too large")
    try:
        hello = _decode(payload)
    except msgspec.DecodeError as exc:
        raise responder.fail("device credentials malformed") from exc
    if hello.version != _HELLO_VERSION:
        raise responder.fail(f"device credentials version {hello.version} not supported")
    noise_static = responder.remote_static
    try:
        verify_noise_binding(hello.identity_key, noise_static, hello.binding)
    except IntegrityError as exc:
        raise responder.fail("device's Noise key is not bound to its identity key") from exc
    device_id = device_id_from_public_key(hello.identity_key)
    verified: Ticket | None = None
    if tickets is not None:
        if hello.ticket is None:
            raise responder.fail("device presented no ticket")
        if audience is None or scope is None:
            responder.close()
            raise ValueError("checking a ticket needs an audience and a scope")
        try:
            verified = tickets.verify(
                hello.ticket,
                audience=audience,
                scope=scope,
                subject=device_id if ticket_bound_to_device else None,
            )
        except (TicketError, ReplayError):
            responder.close()
            raise
    handshake_hash = responder.handshake_hash
    if handshake_hash is None:  # pragma: no cover - set whenever the handshake is complete
        raise HandshakeError("handshake hash missing")
    return AuthenticatedDevice(
        device_id=device_id,
        identity_key=hello.identity_key,
        noise_static=noise_static,
        handshake_hash=handshake_hash,
        ticket=verified,
        raw_ticket=hello.ticket,
    )
