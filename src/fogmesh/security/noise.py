"""Noise XK sessions over byte frames, behind our own small interface.

``Noise_XK_25519_AESGCM_SHA256``: the device (initiator) already knows the coordinator's static
key from its join token, so the pattern encrypts from the first message and authenticates the
coordinator before the device reveals anything; the device's own static key travels encrypted in
message 3. The ``noiseprotocol`` library runs the handshake state machine; after ``Split`` we keep
its two cipher states and drive them directly, so a transport message costs one AEAD call plus a
few integer operations (no per-message library objects).

Failure policy: any error closes the whole session (handshake and transport); every later call
raises. A peer that sent one bad frame is not given a second chance to probe us.

Transport framing: each frame is one Noise transport message, at most 65,535 bytes, so at most
65,519 bytes of plaintext. Nonces are implicit per-direction counters, so a replayed, dropped or
reordered frame fails authentication exactly like a tampered one.

Rekey bound: each direction calls Noise ``Rekey()`` after ``REKEY_AFTER_MESSAGES`` (2**20) messages
or ``REKEY_AFTER_BYTES`` (2**32) bytes of plaintext, whichever comes first. Why: the AES-GCM usage
limits (RFC 8446 §5.5, draft-irtf-cfrg-aead-limits) keep an attacker's advantage below 2**-57 only
up to about 2**34.5 16-byte blocks (~2**38.5 bytes) per key; 2**20 maximal frames are 2**36 bytes,
and the byte bound cuts that to 2**32, two orders of magnitude of margin. Rekeying is one-way, so
it also limits how much earlier traffic a key lifted from memory can decrypt. Both sides count the
same plaintext lengths in the same order, so they rekey at the same message without signalling.
A rekey costs one AES block operation and a key schedule (microseconds).
"""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.backends.default.keypairs import KeyPair25519
from noise.connection import Keypair, NoiseConnection

from fogmesh.errors import FrameError, HandshakeError, KeyFileError
from fogmesh.security.keyfile import load_or_create_key_file, read_key_file, write_key_file

__all__ = [
    "NoiseInitiator",
    "NoiseKeypair",
    "NoiseResponder",
    "NoiseTransport",
]

_log = logging.getLogger(__name__)

PROTOCOL: Final = "Noise_XK_25519_AESGCM_SHA256"
# fogmesh links use PROTOCOL only; the other XK/25519 suites the library implements are accepted
# so that every published XK vector can be run through this same code path.
SUPPORTED_PROTOCOLS: Final = frozenset(
    f"Noise_XK_25519_{cipher}_{digest}"
    for cipher in ("AESGCM", "ChaChaPoly")
    for digest in ("SHA256", "SHA512", "BLAKE2s", "BLAKE2b")
)
MAX_FRAME: Final = 65_535
_TAG: Final = 16
MAX_PLAINTEXT: Final = MAX_FRAME - _TAG
REKEY_AFTER_MESSAGES: Final = 1 << 20
REKEY_AFTER_BYTES: Final = 1 << 32
# Noise reserves nonce 2**64-1 for Rekey(); a direction that reaches it is finished.
_NONCE_LIMIT: Final = (1 << 64) - 1
_KEY_KIND = "x25519"
_CLOSED = "noise session is closed"


class NoiseKeypair:
    """An X25519 static key pair for Noise. Its repr shows the public key only."""

    __slots__ = ("_library", "_private", "public")

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._private = private_key
        self.public: bytes = private_key.public_key().public_bytes_raw()
        # The library's key-pair object, built once: loading a private key from bytes costs
        # ~50 µs (it derives the public key), a large share of a whole handshake.
        self._library: Any = KeyPair25519(
            private=private_key, public=private_key.public_key(), public_bytes=self.public
        )

    @classmethod
    def generate(cls) -> NoiseKeypair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, private: bytes) -> NoiseKeypair:
        if len(private) != 32:
            raise KeyFileError("an X25519 private key is 32 bytes")
        return cls(X25519PrivateKey.from_private_bytes(private))

    @classmethod
    def load(cls, path: Path) -> NoiseKeypair:
        try:
            return cls.from_private_bytes(read_key_file(path, _KEY_KIND))
        except FileNotFoundError:
            raise KeyFileError(f"{path}: Noise key file does not exist") from None

    @classmethod
    def load_or_create(cls, path: Path) -> NoiseKeypair:
        """Load the key at ``path``, creating it (0600) on first use."""
        return cls.from_private_bytes(
            load_or_create_key_file(path, _KEY_KIND, lambda: cls.generate().private_bytes())
        )

    def save(self, path: Path, *, replace: bool = False) -> None:
        if not write_key_file(path, _KEY_KIND, self.private_bytes(), replace=replace):
            raise KeyFileError(f"{path}: a key file already exists there")

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, for storing; never log it."""
        return self._private.private_bytes_raw()

    def __repr__(self) -> str:
        return f"NoiseKeypair(public={self.public.hex()[:16]}…)"


class NoiseTransport:
    """The transport phase of a finished handshake: ``encrypt``/``decrypt`` whole frames.

    Not thread-safe: one sender and one receiver task, as on a WebSocket.
    """

    __slots__ = (
        "_closed",
        "_pack",
        "_rekey_bytes",
        "_rekey_messages",
        "_rx_aead",
        "_rx_bytes",
        "_rx_n",
        "_rx_next_bytes",
        "_rx_next_n",
        "_rx_state",
        "_tx_aead",
        "_tx_bytes",
        "_tx_n",
        "_tx_next_bytes",
        "_tx_next_n",
        "_tx_state",
        "handshake_hash",
        "remote_static",
    )

    def __init__(
        self,
        send_state: Any,
        receive_state: Any,
        *,
        big_endian_nonce: bool,
        handshake_hash: bytes,
        remote_static: bytes,
        rekey_after_messages: int = REKEY_AFTER_MESSAGES,
        rekey_after_bytes: int = REKEY_AFTER_BYTES,
    ) -> None:
        # send_state/receive_state are the library's CipherState objects from Split().
        if rekey_after_messages < 1 or rekey_after_bytes < 1:
            raise ValueError("rekey bounds must be positive")
        self._pack: Callable[[int], bytes] = struct.Struct(
            ">4xQ" if big_endian_nonce else "<4xQ"
        ).pack
        self._rekey_messages = rekey_after_messages
        self._rekey_bytes = rekey_after_bytes
        self._tx_state = send_state
        self._rx_state = receive_state
        self._tx_aead: Any = send_state.cipher.cipher
        self._rx_aead: Any = receive_state.cipher.cipher
        self._tx_n = self._rx_n = 0
        self._tx_bytes = self._rx_bytes = 0
        self._tx_next_n = self._rx_next_n = rekey_after_messages
        self._tx_next_bytes = self._rx_next_bytes = rekey_after_bytes
        self._closed = False
        self.handshake_hash: bytes = handshake_hash
        self.remote_static: bytes = remote_static

    # -- the hot path -------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one message (≤ 65,519 bytes) into one frame."""
        if self._closed:
            raise FrameError(_CLOSED)
        size = len(plaintext)
        n = self._tx_n
        if size > MAX_PLAINTEXT:
            raise self._fail(FrameError(f"plaintext of {size} bytes exceeds {MAX_PLAINTEXT}"))
        if n >= _NONCE_LIMIT:
            raise self._fail(FrameError("send counter exhausted"))
        frame: bytes = self._tx_aead.encrypt(self._pack(n), plaintext, None)
        n += 1
        self._tx_n = n
        total = self._tx_bytes + size
        self._tx_bytes = total
        if n >= self._tx_next_n or total >= self._tx_next_bytes:
            self._rekey_send()
        return frame

    def decrypt(self, frame: bytes) -> bytes:
        """Authenticate and decrypt the next frame from the peer."""
        if self._closed:
            raise FrameError(_CLOSED)
        size = len(frame)
        n = self._rx_n
        if size > MAX_FRAME:
            raise self._fail(FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}"))
        if size < _TAG:
            raise self._fail(FrameError("frame truncated (shorter than its tag)"))
        if n >= _NONCE_LIMIT:
            raise self._fail(FrameError("receive counter exhausted"))
        try:
            plaintext: bytes = self._rx_aead.decrypt(self._pack(n), frame, None)
        except InvalidTag as exc:
            raise self._fail(
                FrameError(
                    "frame failed authentication (tampered, truncated, replayed or reordered)"
                )
            ) from exc
        n += 1
        self._rx_n = n
        total = self._rx_bytes + size - _TAG
        self._rx_bytes = total
        if n >= self._rx_next_n or total >= self._rx_next_bytes:
            self._rekey_receive()
        return plaintext

    # -- state ------------------------------------------------------------------------------------

    def _rekey_send(self) -> None:
        self._tx_state.rekey()
        self._tx_aead = self._tx_state.cipher.cipher
        self._tx_next_n = self._tx_n + self._rekey_messages
        self._tx_next_bytes = self._tx_bytes + self._rekey_bytes

    def _rekey_receive(self) -> None:
        self._rx_state.rekey()
        self._rx_aead = self._rx_state.cipher.cipher
        self._rx_next_n = self._rx_n + self._rekey_messages
        self._rx_next_bytes = self._rx_bytes + self._rekey_bytes

    def _fail(self, error: FrameError) -> FrameError:
        self.close()
        _log.debug("noise transport closed: %s", error.reason)
        return error

    def close(self) -> None:
        """Forget the keys; every later call raises FrameError."""
        self._closed = True
        self._tx_aead = self._rx_aead = None
        self._tx_state = self._rx_state = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def messages_sent(self) -> int:
        return self._tx_n

    @property
    def messages_received(self) -> int:
        return self._rx_n

    @property
    def bytes_sent(self) -> int:
        """Plaintext bytes sent (the quantity the rekey bound counts)."""
        return self._tx_bytes

    @property
    def bytes_received(self) -> int:
        return self._rx_bytes

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"NoiseTransport({state}, sent={self._tx_n}, received={self._rx_n})"


class _NoiseHandshake:
    """Shared machinery of both roles; use NoiseInitiator or NoiseResponder."""

    _INITIATOR = True

    def __init__(
        self,
        static_key: bytes | NoiseKeypair,
        remote_static: bytes | None,
        prologue: bytes,
        protocol: str,
        ephemeral_key: bytes | None,
        rekey_after_messages: int,
        rekey_after_bytes: int,
    ) -> None:
        if protocol not in SUPPORTED_PROTOCOLS:
            raise HandshakeError(f"unsupported Noise protocol {protocol!r}")
        self._protocol = protocol
        self._closed = False
        self._transport: NoiseTransport | None = None
        self._handshake_hash: bytes | None = None
        self._remote_static = bytes(remote_static) if remote_static is not None else None
        self._rekey = (rekey_after_messages, rekey_after_bytes)
        try:
            conn = NoiseConnection.from_name(protocol.encode("ascii"))
            conn.set_prologue(bytes(prologue))
            if self._INITIATOR:
                conn.set_as_initiator()
            else:
                conn.set_as_responder()
            if isinstance(static_key, NoiseKeypair):
                conn.noise_protocol.keypairs["s"] = static_key._library
            else:
                conn.set_keypair_from_private_bytes(Keypair.STATIC, bytes(static_key))
            if remote_static is not None:
                conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, bytes(remote_static))
            if ephemeral_key is None:
                conn.start_handshake()
            else:
                conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, bytes(ephemeral_key))
                # The library warns about fixed ephemerals; the caller asked for one (vectors).
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    conn.start_handshake()
        except Exception as exc:  # the library raises assorted unrelated exception types
            self._closed = True
            raise HandshakeError("cannot set up the Noise handshake (bad key material?)") from exc
        self._conn: Any = conn
        # Split() deletes the library's handshake state; keep it to read the peer's static key.
        self._state: Any = conn.noise_protocol.handshake_state

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce the next handshake message carrying ``payload`` (encrypted when keys allow)."""
        self._check_open()
        try:
            message = bytes(self._conn.write_message(bytes(payload)))
        except Exception as exc:  # the library raises assorted unrelated exception types
            raise self._fail("cannot write this handshake message now") from exc
        if len(message) > MAX_FRAME:
            raise self._fail(f"handshake message would exceed {MAX_FRAME} bytes")
        self._after_step()
        return message

    def read_message(self, frame: bytes) -> bytes:
        """Consume the peer's next handshake message; returns its payload."""
        self._check_open()
        if len(frame) > MAX_FRAME:
            raise self._fail(f"handshake message of {len(frame)} bytes exceeds {MAX_FRAME}")
        try:
            payload = bytes(self._conn.read_message(bytes(frame)))
        except Exception as exc:  # the library raises assorted unrelated exception types
            raise self._fail(
                "handshake message rejected (wrong static key, tampered, truncated or out of order)"
            ) from exc
        self._after_step()
        return payload

    def _after_step(self) -> None:
        conn = self._conn
        if not conn.handshake_finished:
            return
        proto = conn.noise_protocol
        self._handshake_hash = bytes(proto.handshake_hash)
        self._remote_static = bytes(self._state.rs.public_bytes)
        self._transport = NoiseTransport(
            proto.cipher_state_encrypt,
            proto.cipher_state_decrypt,
            big_endian_nonce="_AESGCM_" in self._protocol,
            handshake_hash=self._handshake_hash,
            remote_static=self._remote_static,
            rekey_after_messages=self._rekey[0],
            rekey_after_bytes=self._rekey[1],
        )
        self._conn = self._state = None

    def _check_open(self) -> None:
        if self._closed:
            raise HandshakeError(_CLOSED)
        if self._transport is not None:
            raise self._fail("handshake already complete; use transport()")

    def _fail(self, reason: str) -> HandshakeError:
        self.close()
        _log.debug("noise handshake closed: %s", reason)
        return HandshakeError(reason)

    def fail(self, reason: str) -> HandshakeError:
        """Close the session because a layer above rejected it; returns the error to raise."""
        return self._fail(reason)

    def close(self) -> None:
        """Abandon the session (and its transport, if the handshake had finished)."""
        self._closed = True
        self._conn = self._state = None
        if self._transport is not None:
            self._transport.close()

    def transport(self) -> NoiseTransport:
        """The transport of the finished handshake (HandshakeError before that)."""
        if self._closed:
            raise HandshakeError(_CLOSED)
        if self._transport is None:
            raise HandshakeError("handshake not complete yet")
        return self._transport

    @property
    def handshake_complete(self) -> bool:
        return self._transport is not None and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def handshake_hash(self) -> bytes | None:
        """Channel-binding value, known once the handshake is complete."""
        return self._handshake_hash

    @property
    def remote_static(self) -> bytes | None:
        """The peer's Noise static public key (a responder learns it from message 3)."""
        return self._remote_static

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._transport is not None:
            state = "complete"
        else:
            state = "in progress"
        return f"{type(self).__name__}({self._protocol}, {state})"


class NoiseInitiator(_NoiseHandshake):
    """The device side: knows the coordinator's static key before it starts.

    Sequence: ``write_message()`` (msg 1, send no meaningful payload: it can be replayed),
    ``read_message(msg2)``, ``write_message(credentials)`` (msg 3), then ``transport()``.
    ``ephemeral_key`` exists for test vectors only: a fixed ephemeral voids forward secrecy.
    """

    _INITIATOR = True

    def __init__(
        self,
        static_key: bytes | NoiseKeypair,
        remote_static: bytes,
        prologue: bytes = b"",
        *,
        protocol: str = PROTOCOL,
        ephemeral_key: bytes | None = None,
        rekey_after_messages: int = REKEY_AFTER_MESSAGES,
        rekey_after_bytes: int = REKEY_AFTER_BYTES,
    ) -> None:
        if len(remote_static) != 32:
            raise HandshakeError("the coordinator's Noise key must be 32 bytes")
        super().__init__(
            static_key,
            remote_static,
            prologue,
            protocol,
            ephemeral_key,
            rekey_after_messages,
            rekey_after_bytes,
        )


class NoiseResponder(_NoiseHandshake):
    """The coordinator side: learns (and authenticates) the device's static key in message 3.

    Sequence: ``read_message(msg1)`` (ignore its payload), ``write_message()`` (msg 2),
    ``read_message(msg3)`` → credentials, then ``transport()``.
    """

    _INITIATOR = False

    def __init__(
        self,
        static_key: bytes | NoiseKeypair,
        prologue: bytes = b"",
        *,
        protocol: str = PROTOCOL,
        ephemeral_key: bytes | None = None,
        rekey_after_messages: int = REKEY_AFTER_MESSAGES,
        rekey_after_bytes: int = REKEY_AFTER_BYTES,
    ) -> None:
        super().__init__(
            static_key,
            None,
            prologue,
            protocol,
            ephemeral_key,
            rekey_after_messages,
            rekey_after_bytes,
        )
