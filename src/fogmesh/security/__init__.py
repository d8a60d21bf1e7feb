"""fogmesh.security: identities, Noise XK sessions, tickets, replay protection, sealed storage.

A library over byte frames; it knows nothing of WebSockets, radios or databases. See
docs/security.md for the threat model, the key inventory and the handshake. Constants (frame
limits, rekey bounds, scopes) live in their modules, e.g. ``fogmesh.security.noise.MAX_PLAINTEXT``.

The names below load on first use (PEP 562): a device agent imports only the modules its link
needs (``fogmesh.security.noise``, ``.handshake``, ``.identity``, ``.tokens``), not sealed storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh._lazy import lazy_exports

if TYPE_CHECKING:
    from fogmesh.security.handshake import (
        AuthenticatedDevice,
        accept_device_hello,
        device_hello,
    )
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

_HOME = {
    "AuthenticatedDevice": "fogmesh.security.handshake",
    "CoordinatorKeys": "fogmesh.security.keys",
    "DeviceIdentity": "fogmesh.security.identity",
    "JoinToken": "fogmesh.security.tokens",
    "MasterKey": "fogmesh.security.sealed",
    "MemorySeenStore": "fogmesh.security.tickets",
    "NoiseInitiator": "fogmesh.security.noise",
    "NoiseKeypair": "fogmesh.security.noise",
    "NoiseResponder": "fogmesh.security.noise",
    "NoiseTransport": "fogmesh.security.noise",
    "ReplayWindow": "fogmesh.security.replay",
    "Sealer": "fogmesh.security.sealed",
    "SeenCache": "fogmesh.security.replay",
    "SeenStore": "fogmesh.security.tickets",
    "Ticket": "fogmesh.security.tickets",
    "TicketIssuer": "fogmesh.security.tickets",
    "TicketKeyring": "fogmesh.security.tickets",
    "TicketVerifier": "fogmesh.security.tickets",
    "accept_device_hello": "fogmesh.security.handshake",
    "coordinator_audience": "fogmesh.security.keys",
    "create_join_token": "fogmesh.security.tokens",
    "device_hello": "fogmesh.security.handshake",
    "device_id_from_public_key": "fogmesh.security.identity",
    "verify_noise_binding": "fogmesh.security.identity",
    "verify_signature": "fogmesh.security.identity",
}


__getattr__, __dir__ = lazy_exports(globals(), _HOME, __all__)
