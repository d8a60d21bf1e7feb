"""fogmesh.security: identities, Noise XK sessions, tickets, replay protection, sealed storage.

A library over byte frames; it knows nothing of WebSockets, radios or databases. See
docs/security.md for the threat model, the key inventory and the handshake. Constants (frame
limits, rekey bounds, scopes) live in their modules, e.g. ``fogmesh.security.noise.MAX_PLAINTEXT``.
"""

from __future__ import annotations

from fogmesh.security.handshake import AuthenticatedDevice, accept_device_hello, device_hello
from fogmesh.security.identity import (
    DeviceIdentity,
    device_id_from_public_key,
    verify_noise_binding,
    verify_signature,
)
from fogmesh.security.keys import CoordinatorKeys, coordinator_audience
from fogmesh.security.noise import (
    NoiseInitiator,
    NoiseKeypair,
    NoiseResponder,
    NoiseTransport,
)
from fogmesh.security.replay import ReplayWindow, SeenCache
from fogmesh.security.sealed import MasterKey, Sealer
from fogmesh.security.tickets import (
    MemorySeenStore,
    SeenStore,
    Ticket,
    TicketIssuer,
    TicketKeyring,
    TicketVerifier,
)
from fogmesh.security.tokens import JoinToken, create_join_token

__all__ = [
    "AuthenticatedDevice",
    "CoordinatorKeys",
    "DeviceIdentity",
    "JoinToken",
    "MasterKey",
    "MemorySeenStore",
    "NoiseInitiator",
    "NoiseKeypair",
    "NoiseResponder",
    "NoiseTransport",
    "ReplayWindow",
    "Sealer",
    "SeenCache",
    "SeenStore",
    "Ticket",
    "TicketIssuer",
    "TicketKeyring",
    "TicketVerifier",
    "accept_device_hello",
    "coordinator_audience",
    "create_join_token",
    "device_hello",
    "device_id_from_public_key",
    "verify_noise_binding",
    "verify_signature",
]
