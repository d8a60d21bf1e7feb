"""Noise XK sessions: round trips, counters, rekeying, and every failure closing the session."""

from __future__ import annotations

import pytest
from security_helpers import complete, handshake_pair

from fogmesh.errors import FrameError, HandshakeError
from fogmesh.security.noise import (
    MAX_FRAME,
    MAX_PLAINTEXT,
    NoiseInitiator,
    NoiseKeypair,
    NoiseResponder,
    NoiseTransport,
)


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _sessions(**kwargs: int) -> tuple[NoiseTransport, NoiseTransport]:
    initiator, responder, _, _ = handshake_pair(**kwargs)
    complete(initiator, responder)
    return initiator.transport(), responder.transport()


def _assert_closed(transport: NoiseTransport) -> None:
    assert transport.closed
    with pytest.raises(FrameError, match="closed"):
        transport.encrypt(b"after close")
    with pytest.raises(FrameError, match="closed"):
        transport.decrypt(b"\0" * 32)


# -- round trips ------------------------------------------------------------------------------


def test_handshake_round_trip_carries_payloads_and_learns_the_device_key() -> None:
    initiator, responder, device, coordinator = handshake_pair()
    assert responder.remote_static is None
    assert responder.read_message(initiator.write_message(b"")) == b""
    assert initiator.read_message(responder.write_message(b"from coordinator")) == (
        b"from coordinator"
    )
    assert responder.read_message(initiator.write_message(b"credentials")) == b"credentials"
    assert initiator.handshake_complete and responder.handshake_complete
    assert responder.remote_static == device.public
    assert initiator.remote_static == coordinator.public
    assert initiator.handshake_hash == responder.handshake_hash
    assert len(initiator.handshake_hash or b"") == 32


@pytest.mark.parametrize("size", [0, 1, 1024, MAX_PLAINTEXT])
def test_transport_round_trip_both_directions(size: int) -> None:
    device, coordinator = _sessions()
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = device.encrypt(message)
    assert len(frame) == size + 16 <= MAX_FRAME
    assert coordinator.decrypt(frame) == message
    assert device.decrypt(coordinator.encrypt(message)) == message


def test_counters_are_kept_per_direction() -> None:
    device, coordinator = _sessions()
    for i in range(5):
        coordinator.decrypt(device.encrypt(b"x" * i))
    device.decrypt(coordinator.encrypt(b"yy"))
    assert (device.messages_sent, device.messages_received) == (5, 1)
    assert (coordinator.messages_sent, coordinator.messages_received) == (1, 5)
    assert device.bytes_sent == coordinator.bytes_received == 0 + 1 + 2 + 3 + 4
    assert coordinator.bytes_sent == device.bytes_received == 2


def test_same_plaintext_gives_different_frames() -> None:
    device, _ = _sessions()
    assert device.encrypt(b"same") != device.encrypt(b"same")


# -- rekeying ---------------------------------------------------------------------------------

_FIXED = {
    "device": bytes(range(1, 33)),
    "coordinator": bytes(range(33, 65)),
    "e_i": bytes(range(65, 97)),
    "e_r": bytes(range(97, 129)),
}


def _fixed_sessions(**kwargs: int) -> tuple[NoiseTransport, NoiseTransport]:
    coordinator = NoiseKeypair.from_private_bytes(_FIXED["coordinator"])
    initiator = NoiseInitiator(
        _FIXED["device"], coordinator.public, ephemeral_key=_FIXED["e_i"], **kwargs
    )
    responder = NoiseResponder(coordinator, ephemeral_key=_FIXED["e_r"], **kwargs)
    complete(initiator, responder)
    return initiator.transport(), responder.transport()


def test_rekey_after_message_bound_changes_keys_in_step() -> None:
    plain_device, _ = _fixed_sessions()
    device, coordinator = _fixed_sessions(rekey_after_messages=3)
    frames = [device.encrypt(b"m%d" % i) for i in range(10)]
    reference = [plain_device.encrypt(b"m%d" % i) for i in range(10)]
    # Deterministic keys: the first 3 frames match the non-rekeying session, later ones do not.
    assert frames[:3] == reference[:3]
    assert all(a != b for a, b in zip(frames[3:], reference[3:], strict=True))
    assert [coordinator.decrypt(f) for f in frames] == [b"m%d" % i for i in range(10)]


def test_rekey_after_byte_bound() -> None:
    plain_device, _ = _fixed_sessions()
    device, coordinator = _fixed_sessions(rekey_after_bytes=100)
    frames = [device.encrypt(bytes(60)) for _ in range(4)]
    reference = [plain_device.encrypt(bytes(60)) for _ in range(4)]
    # 60 + 60 = 120 >= 100 after the second message, so the third uses a new key.
    assert frames[:2] == reference[:2] and frames[2] != reference[2]
    assert [coordinator.decrypt(f) for f in frames] == [bytes(60)] * 4


def test_mismatched_rekey_bound_fails_closed() -> None:
    device, _ = _fixed_sessions(rekey_after_messages=2)
    _, coordinator = _fixed_sessions()
    coordinator.decrypt(device.encrypt(b"1"))
    coordinator.decrypt(device.encrypt(b"2"))
    with pytest.raises(FrameError):
        coordinator.decrypt(device.encrypt(b"3"))
    _assert_closed(coordinator)


def test_rekey_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        _sessions(rekey_after_messages=0)


# -- handshake failures -----------------------------------------------------------------------


def test_wrong_coordinator_key_fails_at_the_coordinator() -> None:
    real, other = NoiseKeypair.generate(), NoiseKeypair.generate()
    initiator = NoiseInitiator(NoiseKeypair.generate(), other.public)  # token for another one
    responder = NoiseResponder(real)
    with pytest.raises(HandshakeError, match="rejected"):
        responder.read_message(initiator.write_message())
    assert responder.closed
    with pytest.raises(HandshakeError, match="closed"):
        responder.write_message()


def test_impostor_coordinator_fails_at_the_device() -> None:
    genuine, impostor = NoiseKeypair.generate(), NoiseKeypair.generate()
    victim = NoiseInitiator(NoiseKeypair.generate(), genuine.public)
    victim.write_message()  # message 1 goes to the impostor, who cannot read it
    # The impostor answers with a message 2 from a session it *can* run (its own key).
    accomplice = NoiseInitiator(NoiseKeypair.generate(), impostor.public)
    fake = NoiseResponder(impostor)
    fake.read_message(accomplice.write_message())
    with pytest.raises(HandshakeError):
        victim.read_message(fake.write_message())
    assert victim.closed and not victim.handshake_complete


@pytest.mark.parametrize("message", [1, 2, 3])
@pytest.mark.parametrize("damage", ["flip_first", "flip_last", "truncate", "extend"])
def test_damaged_handshake_message_is_rejected(message: int, damage: str) -> None:
    initiator, responder, _, _ = handshake_pair()
    steps = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for index, (sender, receiver) in enumerate(steps, start=1):
        frame = sender.write_message(b"payload")
        if index == message:
            frame = {
                "flip_first": _flip(frame, 0),
                "flip_last": _flip(frame, len(frame) - 1, 7),
                "truncate": frame[:-1],
                "extend": frame + b"\0",
            }[damage]
            with pytest.raises(HandshakeError):
                receiver.read_message(frame)
            assert receiver.closed
            with pytest.raises(HandshakeError):
                receiver.transport()
            return
        receiver.read_message(frame)


def test_replayed_message_three_is_rejected_by_a_new_session() -> None:
    initiator, responder, _, coordinator = handshake_pair()
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    message3 = initiator.write_message(b"credentials")
    responder.read_message(message3)
    # Replaying the captured message 3 into a fresh coordinator session (new ephemeral) fails.
    again = NoiseResponder(coordinator, b"fogmesh-test")
    again.read_message(
        NoiseInitiator(NoiseKeypair.generate(), coordinator.public, b"fogmesh-test").write_message()
    )
    again.write_message()
    with pytest.raises(HandshakeError):
        again.read_message(message3)
    assert again.closed


def test_oversized_handshake_frame_is_rejected() -> None:
    _, responder, _, _ = handshake_pair()
    with pytest.raises(HandshakeError, match="exceeds"):
        responder.read_message(bytes(MAX_FRAME + 1))
    assert responder.closed


def test_oversized_handshake_payload_is_refused() -> None:
    initiator, _, _, _ = handshake_pair()
    with pytest.raises(HandshakeError, match="exceed"):
        initiator.write_message(bytes(MAX_FRAME))
    assert initiator.closed


def test_messages_out_of_turn_are_refused() -> None:
    initiator, _, _, _ = handshake_pair()
    with pytest.raises(HandshakeError):
        initiator.read_message(bytes(48))  # the initiator must write first
    assert initiator.closed


def test_prologue_mismatch_fails() -> None:
    coordinator = NoiseKeypair.generate()
    initiator = NoiseInitiator(NoiseKeypair.generate(), coordinator.public, b"fogmesh/1")
    responder = NoiseResponder(coordinator, b"fogmesh/2")
    with pytest.raises(HandshakeError):
        responder.read_message(initiator.write_message())


def test_low_order_coordinator_key_is_refused() -> None:
    initiator = NoiseInitiator(NoiseKeypair.generate(), bytes(32))
    with pytest.raises(HandshakeError):
        initiator.write_message()
    assert initiator.closed


def test_bad_set_up_is_a_handshake_error() -> None:
    with pytest.raises(HandshakeError, match="unsupported"):
        NoiseResponder(NoiseKeypair.generate(), protocol="Noise_NN_25519_AESGCM_SHA256")
    with pytest.raises(HandshakeError, match="32 bytes"):
        NoiseInitiator(NoiseKeypair.generate(), b"short")
    with pytest.raises(HandshakeError):
        NoiseResponder(b"not a 32-byte key")


def test_transport_before_completion_and_use_after_completion() -> None:
    initiator, responder, _, _ = handshake_pair()
    with pytest.raises(HandshakeError, match="not complete"):
        initiator.transport()
    complete(initiator, responder)
    transport = initiator.transport()
    with pytest.raises(HandshakeError, match="already complete"):
        initiator.write_message()
    assert initiator.closed and transport.closed


# -- transport failures -----------------------------------------------------------------------


def test_tampered_frame_closes_the_session() -> None:
    device, coordinator = _sessions()
    frame = device.encrypt(b"set cpu limit 50")
    with pytest.raises(FrameError, match="authentication"):
        coordinator.decrypt(_flip(frame, 3))
    _assert_closed(coordinator)


@pytest.mark.parametrize("keep", [0, 1, 15, 16, 20])
def test_truncated_frame_closes_the_session(keep: int) -> None:
    device, coordinator = _sessions()
    frame = device.encrypt(b"a message of some twenty bytes")
    with pytest.raises(FrameError):
        coordinator.decrypt(frame[:keep])
    _assert_closed(coordinator)


def test_replayed_frame_closes_the_session() -> None:
    device, coordinator = _sessions()
    frame = device.encrypt(b"transfer 1")
    assert coordinator.decrypt(frame) == b"transfer 1"
    with pytest.raises(FrameError):
        coordinator.decrypt(frame)
    _assert_closed(coordinator)


def test_reordered_frames_close_the_session() -> None:
    device, coordinator = _sessions()
    first, second = device.encrypt(b"one"), device.encrypt(b"two")
    with pytest.raises(FrameError):
        coordinator.decrypt(second)
    _assert_closed(coordinator)
    assert first  # never delivered: the session is gone


def test_frame_from_the_other_direction_is_rejected() -> None:
    _, coordinator = _sessions()
    own = coordinator.encrypt(b"reflected")
    with pytest.raises(FrameError):
        coordinator.decrypt(own)  # a reflection of our own frame
    _assert_closed(coordinator)


def test_oversized_frame_closes_the_session() -> None:
    _, coordinator = _sessions()
    with pytest.raises(FrameError, match="exceeds"):
        coordinator.decrypt(bytes(MAX_FRAME + 1))
    _assert_closed(coordinator)


def test_oversized_plaintext_is_refused_and_closes() -> None:
    device, _ = _sessions()
    device.encrypt(bytes(MAX_PLAINTEXT))
    with pytest.raises(FrameError, match="exceeds"):
        device.encrypt(bytes(MAX_PLAINTEXT + 1))
    _assert_closed(device)


def test_counter_exhaustion_closes_the_session() -> None:
    device, coordinator = _sessions()
    device._tx_n = (1 << 64) - 2  # nearly exhausted, as after ~1.8e19 messages
    device.encrypt(b"last")
    with pytest.raises(FrameError, match="exhausted"):
        device.encrypt(b"one too many")
    _assert_closed(device)
    coordinator._rx_n = (1 << 64) - 1
    with pytest.raises(FrameError, match="exhausted"):
        coordinator.decrypt(bytes(32))
    _assert_closed(coordinator)


def test_closing_the_handshake_closes_its_transport() -> None:
    initiator, responder, _, _ = handshake_pair()
    complete(initiator, responder)
    transport = responder.transport()
    responder.close()
    _assert_closed(transport)
