"""The coordinator's long-lived keys, kept in its data directory.

Layout under ``<data dir>/keys/`` (directory 0700, every file 0600)::

    coordinator-noise.key        X25519 Noise static key (its public half goes into join tokens)
    ticket-signing.key           Ed25519 key that signs tickets now
    ticket-previous/<kid>.pub    public halves of rotated-out signing keys, verifying until retired

``fogmesh token create`` and the coordinator service both go through ``CoordinatorKeys``, so
they always agree on the keys.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fogmesh.clock import Clock
from fogmesh.errors import KeyFileError
from fogmesh.security.keyfile import read_key_file, write_key_file
from fogmesh.security.noise import NoiseKeypair
from fogmesh.security.tickets import (
    DEFAULT_SKEW,
    SeenStore,
    TicketIssuer,
    TicketKeyring,
    TicketVerifier,
    ticket_key_id,
)

__all__ = ["CoordinatorKeys", "coordinator_audience"]

KEYS_DIR: Final = "keys"
NOISE_KEY_FILE: Final = "coordinator-noise.key"
TICKET_KEY_FILE: Final = "ticket-signing.key"
PREVIOUS_DIR: Final = "ticket-previous"
_SIGNING_KIND: Final = "ed25519"
_PUBLIC_KIND: Final = "ed25519-public"
_KID = re.compile(r"k4\.pid\.[A-Za-z0-9_-]{44}")


def coordinator_audience(noise_public: bytes) -> str:
    """The ticket audience naming one coordinator, derived from its Noise public key.

    Derived from the key rather than the URL, because the URL of a home coordinator changes
    (new LAN address, tunnel) while its key does not.
    """
    digest = hashlib.sha256(b"fogmesh-coordinator:" + noise_public).digest()
    return "fogmesh-coordinator-" + base64.b32encode(digest[:20]).decode("ascii")[:26].lower()


def _load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        seed = read_key_file(path, _SIGNING_KIND)
    except FileNotFoundError:
        write_key_file(path, _SIGNING_KIND, Ed25519PrivateKey.generate().private_bytes_raw())
        seed = read_key_file(path, _SIGNING_KIND)
    if len(seed) != 32:
        raise KeyFileError(f"{path}: an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _load_previous(directory: Path) -> list[Ed25519PublicKey]:
    if not directory.is_dir():
        return []
    keys = []
    for path in sorted(directory.glob("*.pub")):
        raw = read_key_file(path, _PUBLIC_KIND)
        if len(raw) != 32:
            raise KeyFileError(f"{path}: an Ed25519 public key is 32 bytes")
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


class CoordinatorKeys:
    """The coordinator's Noise static key and ticket keyring, loaded from (or created in) disk."""

    __slots__ = ("directory", "keyring", "noise")

    def __init__(self, directory: Path, noise: NoiseKeypair, keyring: TicketKeyring) -> None:
        self.directory = directory
        self.noise = noise
        self.keyring = keyring

    @classmethod
    def load_or_create(cls, data_dir: Path) -> CoordinatorKeys:
        """Load ``<data_dir>/keys``; missing keys are created 0600 on first use."""
        directory = Path(data_dir) / KEYS_DIR
        noise = NoiseKeypair.load_or_create(directory / NOISE_KEY_FILE)
        signing = _load_signing_key(directory / TICKET_KEY_FILE)
        keyring = TicketKeyring(signing, verify_only=_load_previous(directory / PREVIOUS_DIR))
        return cls(directory, noise, keyring)

    @property
    def audience(self) -> str:
        return coordinator_audience(self.noise.public)

    def issuer(self, clock: Clock) -> TicketIssuer:
        return TicketIssuer(self.keyring, clock)

    def verifier(
        self, clock: Clock, *, seen: SeenStore | None = None, skew: float = DEFAULT_SKEW
    ) -> TicketVerifier:
        return TicketVerifier(self.keyring, clock, seen=seen, skew=skew)

    def rotate_ticket_key(self) -> str:
        """Start signing with a fresh key; the old one keeps verifying. Returns the new kid.

        The old public key is written to ``ticket-previous/`` before the signing key is replaced,
        so a crash in between leaves an extra verifying key, never a lost one.
        """
        old_path = self.directory / TICKET_KEY_FILE
        old = _load_signing_key(old_path).public_key()
        previous = self.directory / PREVIOUS_DIR / f"{ticket_key_id(old)}.pub"
        write_key_file(previous, _PUBLIC_KIND, old.public_bytes_raw(), replace=True)
        fresh = Ed25519PrivateKey.generate()
        write_key_file(old_path, _SIGNING_KIND, fresh.private_bytes_raw(), replace=True)
        return self.keyring.rotate(fresh)

    def retire_ticket_key(self, kid: str) -> None:
        """Stop accepting tickets signed by an old key ``kid``."""
        if not _KID.fullmatch(kid):
            raise KeyFileError("not a ticket key id (expected k4.pid.…)")
        self.keyring.retire(kid)
        (self.directory / PREVIOUS_DIR / f"{kid}.pub").unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"CoordinatorKeys({str(self.directory)!r}, audience={self.audience!r})"
