"""No error message, repr or log line carries key material or plaintext.

Every failure path of the library is driven with known secrets in play; everything a user or a
log could see (``str``/``repr`` of the error and of its whole cause chain, ``to_value()``, reprs of
key-holding objects, and every log record at DEBUG) is searched for those secrets in raw, hex and
base64 forms.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from security_helpers import complete

from fogmesh.clock import ManualClock
from fogmesh.errors import FogmeshError, SecurityError
from fogmesh.security import (
    CoordinatorKeys,
    DeviceIdentity,
    JoinToken,
    MasterKey,
    MemorySeenStore,
    NoiseInitiator,
    NoiseKeypair,
    NoiseResponder,
    Sealer,
    TicketIssuer,
    TicketKeyring,
    TicketVerifier,
    accept_device_hello,
    create_join_token,
    device_hello,
)

PLAINTEXT = b"PLAINTEXT-" + os.urandom(12).hex().encode()


def _forms(secret: bytes) -> set[str]:
    forms = {
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }
    if len(secret) >= 12:  # a recognisable prefix is already a leak
        forms |= {secret[:8].hex(), base64.b64encode(secret[:9]).decode()}
    with contextlib.suppress(UnicodeDecodeError):
        forms.add(secret.decode("ascii"))
    forms.add(repr(secret)[2:-1])
    return {f for f in forms if len(f) >= 8}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def test_errors_reprs_and_logs_never_show_secrets(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    secrets: list[bytes] = [PLAINTEXT]
    visible: list[str] = []

    def expect(action: Callable[[], object]) -> None:
        with pytest.raises(SecurityError) as info:
            action()
        for exc in _chain(info.value):
            visible.extend([str(exc), repr(exc)])
            if isinstance(exc, FogmeshError):
                visible.append(json.dumps(exc.to_value(), default=str))

    # Noise handshake and transport.
    device_noise, coordinator_noise = NoiseKeypair.generate(), NoiseKeypair.generate()
    secrets += [device_noise.private_bytes(), coordinator_noise.private_bytes()]
    wrong = NoiseInitiator(device_noise, NoiseKeypair.generate().public)
    responder = NoiseResponder(coordinator_noise)
    expect(lambda: responder.read_message(wrong.write_message(PLAINTEXT)))

    identity = DeviceIdentity.generate()
    secrets.append(identity.private_bytes())
    initiator = NoiseInitiator(device_noise, coordinator_noise.public)
    responder = NoiseResponder(coordinator_noise)
    unbound = device_hello(identity, NoiseKeypair.generate().public)
    received = complete(initiator, responder, unbound)
    device, coordinator = initiator.transport(), responder.transport()
    secrets += [device._tx_state.k, device._rx_state.k]  # the live transport keys
    visible += [repr(initiator), repr(responder), repr(device)]
    expect(lambda: accept_device_hello(responder, received))

    initiator = NoiseInitiator(device_noise, coordinator_noise.public)
    responder = NoiseResponder(coordinator_noise)
    complete(initiator, responder)
    device, coordinator = initiator.transport(), responder.transport()
    frame = device.encrypt(PLAINTEXT)
    tampered = bytearray(frame)
    tampered[0] ^= 1
    expect(lambda: coordinator.decrypt(bytes(tampered)))
    expect(lambda: coordinator.decrypt(frame))  # closed now
    expect(lambda: device.encrypt(PLAINTEXT * 5000))

    # Tickets.
    signing = Ed25519PrivateKey.generate()
    secrets.append(signing.private_bytes_raw())
    keyring = TicketKeyring(signing)
    issuer, verifier = (
        TicketIssuer(keyring, clock),
        TicketVerifier(keyring, clock, seen=MemorySeenStore(clock)),
    )
    ticket = issuer.issue(subject="s", audience="a", scopes=["enrol"], ttl=60, one_shot=True)
    secrets.append(ticket.encode())  # a live bearer ticket is a secret too
    expect(lambda: verifier.verify(ticket, audience="b", scope="enrol"))
    expect(lambda: verifier.verify(ticket, audience="a", scope="admin"))
    expect(lambda: verifier.verify(ticket[:-3] + "AAA", audience="a", scope="enrol"))
    verifier.verify(ticket, audience="a", scope="enrol")
    expect(lambda: verifier.verify(ticket, audience="a", scope="enrol"))
    visible.append(repr(keyring))

    # Sealed storage.
    master = MasterKey.generate()
    secrets.append(master._key)
    sealer = Sealer(master)
    envelope = bytearray(sealer.seal(PLAINTEXT, record_id="r", kind="k"))
    envelope[-1] ^= 1
    expect(lambda: sealer.unseal(bytes(envelope), record_id="r", kind="k"))
    visible += [repr(master), repr(sealer)]

    # Key files and join tokens.
    path = tmp_path / "identity.key"
    identity.save(path)
    path.chmod(0o644)
    expect(lambda: DeviceIdentity.load(path))
    keys = CoordinatorKeys.load_or_create(tmp_path / "coord")
    visible.append(repr(keys))
    join, _ = create_join_token(keys, url="http://fog:8700", ttl=60, clock=clock)
    secrets.append(join.ticket.encode())
    token = join.encode()
    expect(lambda: JoinToken.parse(token[:-2]))
    visible.append(repr(join))

    visible += [record.getMessage() for record in caplog.records]
    visible.append(caplog.text)
    assert any("noise" in r.name for r in caplog.records)  # failures were logged at all
    haystack = "\n".join(visible)
    for secret in secrets:
        for form in _forms(secret):
            assert form not in haystack, "secret material visible in an error, repr or log"
