"""Shared fixtures for the security tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fogmesh.clock import ManualClock
from fogmesh.security.tickets import MemorySeenStore, TicketIssuer, TicketKeyring, TicketVerifier


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_700_000_000.0)


@pytest.fixture
def keyring() -> TicketKeyring:
    return TicketKeyring(Ed25519PrivateKey.generate())


@pytest.fixture
def issuer(keyring: TicketKeyring, clock: ManualClock) -> TicketIssuer:
    return TicketIssuer(keyring, clock)


@pytest.fixture
def seen(clock: ManualClock) -> MemorySeenStore:
    return MemorySeenStore(clock)


@pytest.fixture
def verifier(keyring: TicketKeyring, clock: ManualClock, seen: MemorySeenStore) -> TicketVerifier:
    return TicketVerifier(keyring, clock, seen=seen, skew=60.0)
