"""Message 3 credentials: identity key, binding signature and ticket, checked by the coordinator."""

from __future__ import annotations

import msgspec
import pytest
from security_helpers import complete

from fogmesh.clock import ManualClock
from fogmesh.errors import (
    HandshakeError,
    ReplayError,
    TicketAudienceError,
    TicketError,
    TicketExpired,
)
from fogmesh.security.handshake import accept_device_hello, device_hello
from fogmesh.security.identity import DeviceIdentity
from fogmesh.security.noise import NoiseInitiator, NoiseKeypair, NoiseResponder
from fogmesh.security.tickets import TicketIssuer, TicketVerifier

AUD = "fogmesh-coordinator-test"


class Device:
    def __init__(self) -> None:
        self.identity = DeviceIdentity.generate()
        self.noise = NoiseKeypair.generate()


@pytest.fixture
def coordinator() -> NoiseKeypair:
    return NoiseKeypair.generate()


def _run(
    device: Device, coordinator: NoiseKeypair, payload: bytes
) -> tuple[NoiseInitiator, NoiseResponder, bytes]:
    initiator = NoiseInitiator(device.noise, coordinator.public)
    responder = NoiseResponder(coordinator)
    received = complete(initiator, responder, payload)
    return initiator, responder, received


def test_device_is_authenticated_with_its_ticket(
    coordinator: NoiseKeypair, issuer: TicketIssuer, verifier: TicketVerifier
) -> None:
    device = Device()
    ticket = issuer.issue(subject="enrol", audience=AUD, scopes=["enrol"], ttl=600, one_shot=True)
    hello = device_hello(device.identity, device.noise.public, ticket)
    _, responder, received = _run(device, coordinator, hello)
    peer = accept_device_hello(responder, received, tickets=verifier, audience=AUD, scope="enrol")
    assert peer.device_id == device.identity.device_id
    assert peer.identity_key == device.identity.public_key
    assert peer.noise_static == device.noise.public
    assert peer.ticket is not None and peer.ticket.one_shot
    assert peer.handshake_hash == responder.handshake_hash
    assert not responder.closed


def test_without_ticket_checking_a_ticket_is_optional(coordinator: NoiseKeypair) -> None:
    device = Device()
    binding = device.identity.bind_noise_key(device.noise.public)  # stored once, reused
    hello = device_hello(device.identity, device.noise.public, binding=binding)
    _, responder, received = _run(device, coordinator, hello)
    peer = accept_device_hello(responder, received)
    assert peer.ticket is None and peer.raw_ticket is None


def test_unbound_noise_key_is_refused(coordinator: NoiseKeypair) -> None:
    device = Device()
    # The binding vouches for some other Noise key, not the one used in this handshake.
    hello = device_hello(device.identity, NoiseKeypair.generate().public)
    _, responder, received = _run(device, coordinator, hello)
    transport = responder.transport()
    with pytest.raises(HandshakeError, match="not bound"):
        accept_device_hello(responder, received)
    assert responder.closed and transport.closed


def test_borrowed_binding_from_another_device_is_refused(coordinator: NoiseKeypair) -> None:
    victim, thief = Device(), Device()
    stolen = victim.identity.bind_noise_key(victim.noise.public)
    # The thief claims the victim's identity and binding but can only run its own Noise key.
    forged = msgspec.msgpack.encode([1, victim.identity.public_key, stolen, None])
    _, responder, received = _run(thief, coordinator, forged)
    with pytest.raises(HandshakeError, match="not bound"):
        accept_device_hello(responder, received)
    assert responder.closed


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", b"garbage", msgspec.msgpack.encode([2, b"k" * 32, b"s" * 64, None])],
)
def test_malformed_credentials_are_refused(coordinator: NoiseKeypair, payload: bytes) -> None:
    _, responder, received = _run(Device(), coordinator, payload)
    with pytest.raises(HandshakeError):
        accept_device_hello(responder, received)
    assert responder.closed


def test_credentials_before_message_three_are_refused(coordinator: NoiseKeypair) -> None:
    device = Device()
    initiator = NoiseInitiator(device.noise, coordinator.public)
    responder = NoiseResponder(coordinator)
    hello = device_hello(device.identity, device.noise.public)
    responder.read_message(initiator.write_message(hello))  # message 1 is replayable: refused
    with pytest.raises(HandshakeError, match="message 3"):
        accept_device_hello(responder, hello)
    assert responder.closed


def test_missing_ticket_is_refused(coordinator: NoiseKeypair, verifier: TicketVerifier) -> None:
    device = Device()
    _, responder, received = _run(
        device, coordinator, device_hello(device.identity, device.noise.public)
    )
    with pytest.raises(HandshakeError, match="no ticket"):
        accept_device_hello(responder, received, tickets=verifier, audience=AUD, scope="enrol")
    assert responder.closed


def test_replayed_one_shot_ticket_closes_the_second_session(
    coordinator: NoiseKeypair, issuer: TicketIssuer, verifier: TicketVerifier
) -> None:
    ticket = issuer.issue(subject="enrol", audience=AUD, scopes=["enrol"], ttl=600, one_shot=True)
    first, second = Device(), Device()
    for device in (first, second):
        hello = device_hello(device.identity, device.noise.public, ticket)
        _, responder, received = _run(device, coordinator, hello)
        if device is first:
            accept_device_hello(responder, received, tickets=verifier, audience=AUD, scope="enrol")
            continue
        with pytest.raises(ReplayError):
            accept_device_hello(responder, received, tickets=verifier, audience=AUD, scope="enrol")
        assert responder.closed


@pytest.mark.parametrize("problem", ["audience", "expired", "subject"])
def test_bad_ticket_closes_the_session(
    coordinator: NoiseKeypair,
    issuer: TicketIssuer,
    verifier: TicketVerifier,
    clock: ManualClock,
    problem: str,
) -> None:
    device = Device()
    ticket = issuer.issue(
        subject="dev-someone-else" if problem == "subject" else device.identity.device_id,
        audience="another-coordinator" if problem == "audience" else AUD,
        scopes=["agent"],
        ttl=60,
    )
    if problem == "expired":
        clock.advance(3600)
    hello = device_hello(device.identity, device.noise.public, ticket)
    _, responder, received = _run(device, coordinator, hello)
    expected = {
        "audience": TicketAudienceError,
        "expired": TicketExpired,
        "subject": TicketError,
    }[problem]
    with pytest.raises(expected):
        accept_device_hello(
            responder,
            received,
            tickets=verifier,
            audience=AUD,
            scope="agent",
            ticket_bound_to_device=True,
        )
    assert responder.closed


def test_ticket_bound_to_its_device_is_accepted(
    coordinator: NoiseKeypair, issuer: TicketIssuer, verifier: TicketVerifier
) -> None:
    device = Device()
    ticket = issuer.issue(subject=device.identity.device_id, audience=AUD, scopes=["agent"], ttl=60)
    hello = device_hello(device.identity, device.noise.public, ticket)
    _, responder, received = _run(device, coordinator, hello)
    peer = accept_device_hello(
        responder,
        received,
        tickets=verifier,
        audience=AUD,
        scope="agent",
        ticket_bound_to_device=True,
    )
    assert peer.ticket is not None and peer.ticket.subject == device.identity.device_id
