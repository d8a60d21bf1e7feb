"""Helpers shared by the security tests (vectors, handshake set-up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fogmesh.security.noise import NoiseInitiator, NoiseKeypair, NoiseResponder

# The public vectors live beside the clone (<root>/../shared/vectors), never inside the project.
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def load_vectors(relative: str) -> Any:
    path = VECTORS / relative
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def require_vectors(relative: str) -> Any:
    data = load_vectors(relative)
    if data is None:
        pytest.skip(f"test vectors not found at {VECTORS / relative} (shared/ beside the clone)")
    return data


def handshake_pair(
    **kwargs: Any,
) -> tuple[NoiseInitiator, NoiseResponder, NoiseKeypair, NoiseKeypair]:
    """A device and a coordinator with fresh static keys, handshake not started."""
    device, coordinator = NoiseKeypair.generate(), NoiseKeypair.generate()
    initiator = NoiseInitiator(device, coordinator.public, b"fogmesh-test", **kwargs)
    responder = NoiseResponder(coordinator, b"fogmesh-test", **kwargs)
    return initiator, responder, device, coordinator


def complete(initiator: NoiseInitiator, responder: NoiseResponder, payload3: bytes = b"") -> bytes:
    """Run the three XK messages; returns what the responder read from message 3."""
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    return responder.read_message(initiator.write_message(payload3))
