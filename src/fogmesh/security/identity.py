"""Device identity: an Ed25519 key pair, a device id derived from it, and the Noise key binding.

The identity key never does Diffie-Hellman; the Noise static key (X25519) never signs. The
identity signs ``"fogmesh-noise-static:" ‖ noise_static_public`` once (libp2p's pattern), and a
peer that learns both keys during a handshake checks that signature, so the two stay separate
but provably belong to the same device.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fogmesh.errors import IntegrityError, KeyFileError
from fogmesh.security.keyfile import load_or_create_key_file, read_key_file, write_key_file

__all__ = [
    "DeviceIdentity",
    "device_id_from_public_key",
    "verify_noise_binding",
    "verify_signature",
]

NOISE_BINDING_PREFIX = b"fogmesh-noise-static:"
_KEY_KIND = "ed25519"
_ID_PREFIX = "dev-"


def device_id_from_public_key(public_key: bytes) -> str:
    """Stable, printable id of a device: ``dev-`` + 26 base32 chars of SHA-256(public key).

    130 bits of hash keep accidental collisions out of reach for any realistic fleet, and the id
    is not secret (anyone holding the public key can compute it).
    """
    if len(public_key) != 32:
        raise IntegrityError("an Ed25519 public key is 32 bytes")
    digest = hashlib.sha256(b"fogmesh-device-id:" + public_key).digest()
    # 26 base32 characters use the first 130 bits, so encoding 20 bytes gives the same prefix.
    return _ID_PREFIX + base64.b32encode(digest[:20]).decode("ascii")[:26].lower()


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature; raises IntegrityError on any failure (never returns False).

    Malformed keys and signatures of the wrong length fail like forged ones; the underlying
    library rejects non-canonical S (signature malleability) as RFC 8032 requires.
    """
    if len(public_key) != 32 or len(signature) != 64:
        raise IntegrityError("signature verification failed (malformed key or signature)")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError("signature verification failed") from exc


def verify_noise_binding(
    identity_public: bytes, noise_static_public: bytes, signature: bytes
) -> None:
    """Check that ``identity_public`` vouched for ``noise_static_public``; IntegrityError if not."""
    verify_signature(identity_public, signature, NOISE_BINDING_PREFIX + noise_static_public)


class DeviceIdentity:
    """An Ed25519 identity key. Its repr and str show the device id only."""

    __slots__ = ("_private", "device_id", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key: bytes = private_key.public_key().public_bytes_raw()
        self.device_id: str = device_id_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> DeviceIdentity:
        """From the 32-byte RFC 8032 private key (seed)."""
        if len(seed) != 32:
            raise KeyFileError("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load(cls, path: Path) -> DeviceIdentity:
        """Load from a key file; KeyFileError if missing, damaged or readable by others."""
        try:
            seed = read_key_file(path, _KEY_KIND)
        except FileNotFoundError:
            raise KeyFileError(f"{path}: identity key file does not exist") from None
        return cls.from_private_bytes(seed)

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceIdentity:
        """Load the identity at ``path``, creating it (0600) on first use."""
        return cls.from_private_bytes(
            load_or_create_key_file(path, _KEY_KIND, lambda: cls.generate().private_bytes())
        )

    def save(self, path: Path, *, replace: bool = False) -> None:
        if not write_key_file(path, _KEY_KIND, self.private_bytes(), replace=replace):
            raise KeyFileError(f"{path}: a key file already exists there")

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, for storing; never log it."""
        return self._private.private_bytes_raw()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def bind_noise_key(self, noise_static_public: bytes) -> bytes:
        """The binding signature over this device's Noise static public key."""
        if len(noise_static_public) != 32:
            raise IntegrityError("a Noise static public key is 32 bytes")
        return self._private.sign(NOISE_BINDING_PREFIX + noise_static_public)

    def __repr__(self) -> str:
        return f"DeviceIdentity(device_id={self.device_id!r})"
