"""Join tokens: one copy-pasteable string that lets a device enrol with a coordinator.

Format: ``fmj1.`` + base64url( msgpack([url, coordinator Noise key, ticket body, ticket footer])
‖ check ), where ``check`` is 4 bytes of SHA-256 over the version tag and the packed fields.
Version 2 (``fmj2.``) appends a fifth field, the SHA-256 fingerprint of the coordinator's
self-signed HTTPS certificate, which the device pins. A token without a fingerprint is still
written as version 1, so devices running an older fogmesh can use it; both versions are read. The
ticket travels as its two decoded binary parts (re-encoded on parsing), which keeps the token a
quarter shorter than nesting one base64 text inside another. The check is
for damage (a character lost or changed in copy-paste), not for attackers: the ticket inside is
signed, and the token as a whole must reach the device over a channel the operator trusts,
because the coordinator key in it is the device's root of trust (as with kubeadm/Tailscale).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import msgspec

from fogmesh.clock import Clock
from fogmesh.errors import TokenError

if TYPE_CHECKING:  # parsing a token (what a device does) needs neither
    from fogmesh.security.keys import CoordinatorKeys
    from fogmesh.security.tickets import Ticket

__all__ = ["JoinToken", "create_join_token"]

JOIN_TOKEN_VERSION: Final = 2  # the newest version written; every version up to it is read
_PREFIX: Final = "fmj1."  # version 1: no certificate fingerprint
_PREFIX_PINNED: Final = "fmj2."
_FINGERPRINT: Final = 32
_CHECK: Final = 4
_MAX_TOKEN: Final = 8192
_URL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss"})
_HEAD = re.compile(r"fmj(\d+)\.")
_NOT_BASE64URL = re.compile(r"[^A-Za-z0-9_-]")
_WHITESPACE = re.compile(r"\s+")

_TICKET_HEADER: Final = "v4.public."

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(tuple[str, bytes, bytes, bytes]).decode
_unpack_pinned = msgspec.msgpack.Decoder(tuple[str, bytes, bytes, bytes, bytes]).decode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(packed: bytes, prefix: str = _PREFIX) -> bytes:
    return hashlib.sha256(prefix.encode("ascii") + packed).digest()[:_CHECK]


def _validate_url(url: str) -> str | None:
    """What is wrong with ``url``, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "cannot be parsed"
    if parts.scheme not in _URL_SCHEMES:
        return f"scheme must be one of {sorted(_URL_SCHEMES)}"
    if not parts.hostname:
        return "has no host"
    if any(ch.isspace() for ch in url):
        return "contains whitespace"
    return None


@dataclass(frozen=True, slots=True)
class JoinToken:
    """The decoded parts of a join token. Its repr leaves the ticket out.

    ``tls_fingerprint`` is the SHA-256 of the coordinator's self-signed certificate, or None
    (plain HTTP on loopback, or a certificate a CA vouches for).
    """

    coordinator_url: str
    coordinator_key: bytes
    ticket: str
    tls_fingerprint: bytes | None = None

    def __post_init__(self) -> None:
        problem = _validate_url(self.coordinator_url)
        if problem is not None:
            raise TokenError(f"coordinator URL {problem}")
        if len(self.coordinator_key) != 32:
            raise TokenError("coordinator Noise key must be 32 bytes")
        parts = self.ticket.split(".")
        if not self.ticket.startswith(_TICKET_HEADER) or len(parts) != 4:
            raise TokenError("enrolment ticket is not a v4.public ticket with a footer")
        if self.tls_fingerprint is not None:
            if len(self.tls_fingerprint) != _FINGERPRINT:
                raise TokenError("certificate fingerprint must be 32 bytes (SHA-256)")
            if urlsplit(self.coordinator_url).scheme not in ("https", "wss"):
                raise TokenError(
                    "a token pinning a certificate needs an https:// coordinator URL "
                    f"(got {self.coordinator_url!r})"
                )

    def encode(self) -> str:
        _, _, body, footer = self.ticket.split(".")
        fields: tuple[object, ...] = (
            self.coordinator_url,
            self.coordinator_key,
            _unb64(body),
            _unb64(footer),
        )
        prefix = _PREFIX
        if self.tls_fingerprint is not None:
            fields, prefix = (*fields, self.tls_fingerprint), _PREFIX_PINNED
        packed = _pack(fields)
        return prefix + _b64(packed + _check(packed, prefix))

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        """Decode a token; TokenError names the damaged part. Whitespace (line wraps) is ignored."""
        compact = _WHITESPACE.sub("", text or "")
        if not compact:
            raise TokenError("join token is empty")
        if len(compact) > _MAX_TOKEN:
            raise TokenError("join token is far too long to be one")
        head = _HEAD.match(compact)
        if head is None:
            raise TokenError(f"not a fogmesh join token (it should start with {_PREFIX!r})")
        version = int(head.group(1))
        if not 1 <= version <= JOIN_TOKEN_VERSION:
            raise TokenError(
                f"join token version {head.group(1)} is not supported "
                f"(this fogmesh reads versions 1 to {JOIN_TOKEN_VERSION}; upgrade fogmesh)"
            )
        prefix = head.group(0)
        body = compact[head.end() :]
        bad = _NOT_BASE64URL.search(body)
        if bad is not None:
            raise TokenError(
                f"join token has a character that does not belong at position "
                f"{head.end() + bad.start()} (damaged while copying?)"
            )
        if len(body) % 4 == 1:
            raise TokenError("join token is truncated (its length is impossible)")
        try:
            raw = _unb64(body)
        except (binascii.Error, ValueError) as exc:
            raise TokenError("join token body is not valid base64url") from exc
        if len(raw) <= _CHECK:
            raise TokenError("join token is truncated")
        packed, check = raw[:-_CHECK], raw[-_CHECK:]
        if _check(packed, prefix) != check:
            raise TokenError(
                "join token checksum does not match: it was altered or cut short while copying"
            )
        fingerprint: bytes | None = None
        try:
            if version == 1:
                url, key, ticket_body, ticket_footer = _unpack(packed)
            else:
                url, key, ticket_body, ticket_footer, fingerprint = _unpack_pinned(packed)
        except msgspec.DecodeError as exc:
            raise TokenError("join token contents are malformed") from exc
        ticket = f"{_TICKET_HEADER}{_b64(ticket_body)}.{_b64(ticket_footer)}"
        return cls(url, key, ticket, fingerprint)

    def __repr__(self) -> str:
        pin = (
            f", tls_fingerprint={self.tls_fingerprint.hex()[:16]}…" if self.tls_fingerprint else ""
        )
        return (
            f"JoinToken(coordinator_url={self.coordinator_url!r}, "
            f"coordinator_key={self.coordinator_key.hex()[:16]}…{pin})"
        )


def create_join_token(
    keys: CoordinatorKeys,
    *,
    url: str,
    ttl: float,
    clock: Clock,
    extra_scopes: Iterable[str] = (),
    tls_fingerprint: bytes | None = None,
) -> tuple[JoinToken, Ticket]:
    """A join token carrying a fresh one-shot enrolment ticket (``enrol`` plus ``extra_scopes``),
    pinning the coordinator's certificate when ``tls_fingerprint`` is given."""
    problem = _validate_url(url)
    if problem is not None:
        raise TokenError(f"coordinator URL {problem}")
    if tls_fingerprint is not None and urlsplit(url).scheme not in ("https", "wss"):
        raise TokenError(
            f"the coordinator serves HTTPS: the URL in the token must be https:// (got {url!r})"
        )
    ticket, claims = keys.issuer(clock).issue_with_claims(
        subject="enrol",
        audience=keys.audience,
        scopes=("enrol", *extra_scopes),
        ttl=ttl,
        one_shot=True,
    )
    return JoinToken(url, keys.noise.public, ticket, tls_fingerprint), claims
