"""The published Noise_XK_25519_* vectors (snow), byte for byte, through *our* interface.

Handshake messages go through NoiseInitiator/NoiseResponder.write_message/read_message, transport
messages through NoiseTransport.encrypt/decrypt, in both directions.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from security_helpers import load_vectors, require_vectors

from fogmesh.security.noise import (
    PROTOCOL,
    SUPPORTED_PROTOCOLS,
    NoiseInitiator,
    NoiseResponder,
)

_FILE = "noise/snow_XK_25519.json"
_DATA = load_vectors(_FILE)
_VECTORS: list[dict[str, Any]] = _DATA["vectors"] if _DATA else []
_HANDSHAKE_MESSAGES = 3  # XK: -> e, es / <- e, ee / -> s, se


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_the_vector_file_holds_all_eight_xk_25519_suites() -> None:
    data = require_vectors(_FILE)
    names = {v["protocol_name"] for v in data["vectors"]}
    assert names == set(SUPPORTED_PROTOCOLS)
    assert len(data["vectors"]) == 8
    assert PROTOCOL in names


@pytest.mark.parametrize("vector", _VECTORS, ids=[v["protocol_name"] for v in _VECTORS])
def test_vector_reproduced_byte_for_byte(vector: dict[str, Any]) -> None:
    assert not vector["init_psks"] and not vector["resp_psks"]
    initiator = NoiseInitiator(
        _h(vector["init_static"]),
        _h(vector["init_remote_static"]),
        _h(vector["init_prologue"]),
        protocol=vector["protocol_name"],
        ephemeral_key=_h(vector["init_ephemeral"]),
    )
    responder = NoiseResponder(
        _h(vector["resp_static"]),
        _h(vector["resp_prologue"]),
        protocol=vector["protocol_name"],
        ephemeral_key=_h(vector["resp_ephemeral"]),
    )
    messages = vector["messages"]
    assert len(messages) > _HANDSHAKE_MESSAGES  # the vector exercises the transport phase too
    directions_in_transport = set()
    for index, message in enumerate(messages):
        payload, expected = _h(message["payload"]), _h(message["ciphertext"])
        from_initiator = index % 2 == 0
        sender, receiver = (initiator, responder) if from_initiator else (responder, initiator)
        if index < _HANDSHAKE_MESSAGES:
            assert not sender.handshake_complete
            produced = sender.write_message(payload)
            assert produced == expected, f"handshake message {index}"
            assert receiver.read_message(produced) == payload
        else:
            directions_in_transport.add(from_initiator)
            produced = sender.transport().encrypt(payload)
            assert produced == expected, f"transport message {index}"
            assert receiver.transport().decrypt(produced) == payload
        if index == _HANDSHAKE_MESSAGES - 1:
            assert initiator.handshake_complete and responder.handshake_complete
    assert directions_in_transport == {True, False}
    # The responder learned exactly the initiator's static key, and both agree on the transcript.
    init_public = X25519PrivateKey.from_private_bytes(_h(vector["init_static"])).public_key()
    assert responder.remote_static == init_public.public_bytes_raw()
    assert initiator.handshake_hash == responder.handshake_hash is not None
