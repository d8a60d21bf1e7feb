"""Sealed storage: records encrypted at rest with AES-256-GCM under per-object keys.

Envelope (version 1), all of it authenticated::

    version (1) | master-key fingerprint (4) | nonce (12) | ciphertext ‖ tag (16)

* Per-object key: HKDF-SHA256 over the master key with the record's kind and id as ``info``, so
  each record has its own key and the random-nonce collision bound (2**32 messages per key) is
  per record, not per database.
* Associated data: the envelope header plus the record's kind and id (length-prefixed, so
  ``("a:b", "c")`` and ``("a", "b:c")`` differ). Copying a sealed blob onto another record, or
  relabelling its kind, fails authentication.
* The fingerprint names which master key sealed the record (a keyed hash, not the key), so a
  Sealer can hold retired master keys for reading during a rotation and say clearly when none
  matches.

Every failure to open is an IntegrityError with no detail about the content.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fogmesh.errors import IntegrityError, KeyFileError
from fogmesh.security.keyfile import load_or_create_key_file, read_key_file

__all__ = ["MasterKey", "Sealer"]

ENVELOPE_VERSION: Final = 1
_NONCE: Final = 12
_TAG: Final = 16
_FINGERPRINT: Final = 4
_HEADER: Final = 1 + _FINGERPRINT + _NONCE
_KEY_KIND: Final = "aes256-master"
_SALT: Final = b"fogmesh-sealed-v1"


def _gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """The one place that encrypts with AES-GCM: 96-bit nonces, 128-bit tags only."""
    if len(nonce) != _NONCE:
        raise ValueError("AES-GCM nonces here are 96 bits")
    return AESGCM(key).encrypt(nonce, plaintext, associated_data)


def _gcm_open(key: bytes, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
    """The one place that decrypts with AES-GCM; refuses other nonce sizes and short input.

    Other nonce lengths are legal GCM but get GHASH-derived counters with weaker, less-studied
    bounds, so this layer never produces or accepts them.
    """
    if len(nonce) != _NONCE:
        raise IntegrityError("unsupported nonce size (only 96-bit nonces are accepted)")
    if len(data) < _TAG:
        raise IntegrityError("sealed data truncated")
    try:
        return AESGCM(key).decrypt(nonce, data, associated_data)
    except InvalidTag as exc:
        raise IntegrityError("sealed data failed authentication") from exc


def _prefixed(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


class MasterKey:
    """A 256-bit master key. Its repr shows the fingerprint only."""

    __slots__ = ("_key", "fingerprint")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KeyFileError("a sealed-storage master key is 32 bytes")
        self._key = bytes(key)
        self.fingerprint: bytes = hmac.new(
            self._key, b"fogmesh-sealed-fingerprint", hashlib.sha256
        ).digest()[:_FINGERPRINT]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32))

    @classmethod
    def load(cls, path: Path) -> MasterKey:
        try:
            return cls(read_key_file(path, _KEY_KIND))
        except FileNotFoundError:
            raise KeyFileError(f"{path}: master key file does not exist") from None

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        """Load the master key at ``path``, creating it (0600) on first use."""
        return cls(load_or_create_key_file(path, _KEY_KIND, lambda: os.urandom(32)))

    def derive(self, kind: str, record_id: str) -> bytes:
        """The per-object AES-256 key for one record."""
        info = _prefixed(kind) + _prefixed(record_id)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(self._key)

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint.hex()})"


class Sealer:
    """Seals with the current master key; opens with it or any ``previous`` (for rotation)."""

    __slots__ = ("_current", "_keys")

    def __init__(self, master: MasterKey, *, previous: Iterable[MasterKey] = ()) -> None:
        self._current = master
        self._keys = {key.fingerprint: key for key in previous}
        self._keys[master.fingerprint] = master

    @staticmethod
    def _associated_data(header: bytes, kind: str, record_id: str) -> bytes:
        return b"fogmesh-sealed\0" + header + _prefixed(kind) + _prefixed(record_id)

    def seal(self, plaintext: bytes, *, record_id: str, kind: str) -> bytes:
        nonce = os.urandom(_NONCE)
        header = bytes((ENVELOPE_VERSION,)) + self._current.fingerprint + nonce
        key = self._current.derive(kind, record_id)
        body = _gcm_seal(key, nonce, plaintext, self._associated_data(header[:5], kind, record_id))
        return header + body

    def unseal(self, envelope: bytes, *, record_id: str, kind: str) -> bytes:
        """The plaintext, or IntegrityError if the envelope is damaged, misfiled or foreign."""
        if len(envelope) < _HEADER + _TAG:
            raise IntegrityError("sealed record truncated")
        if envelope[0] != ENVELOPE_VERSION:
            raise IntegrityError("sealed record has an unsupported envelope version")
        master = self._keys.get(bytes(envelope[1:5]))
        if master is None:
            raise IntegrityError("sealed record was sealed under an unknown master key")
        nonce = bytes(envelope[5:_HEADER])
        key = master.derive(kind, record_id)
        ad = self._associated_data(bytes(envelope[:5]), kind, record_id)
        return _gcm_open(key, nonce, bytes(envelope[_HEADER:]), ad)

    def __repr__(self) -> str:
        return f"Sealer(current={self._current!r}, keys={len(self._keys)})"
