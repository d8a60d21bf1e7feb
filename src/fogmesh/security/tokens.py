"""Join tokens: one copy-pasteable string that lets a device enrol with a coordinator.

Format: ``fmj1.`` + base64url( msgpack([url, coordinator Noise key, ticket body, ticket footer])
‖ check ), where ``check`` is 4 bytes of SHA-256 over the version tag and the packed fields. The
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

JOIN_TOKEN_VERSION: Final = 1
_PREFIX: Final = f"fmj{JOIN_TOKEN_VERSION}."
_CHECK: Final = 4
_MAX_TOKEN: Final = 8192
_URL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss"})
_HEAD = re.compile(r"fmj(\d+)\.")
_NOT_BASE64URL = re.compile(r"[^A-Za-z0-9_-]")
_WHITESPACE = re.compile(r"\s+")

_TICKET_HEADER: Final = "v4.public."

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(tuple[str, bytes, bytes, bytes]).decode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(packed: bytes) -> bytes:
    return hashlib.sha256(_PREFIX.encode("ascii") + packed).digest()[:_CHECK]


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
    """The decoded parts of a join token. Its repr leaves the ticket out."""

    coordinator_url: str
    coordinator_key: bytes
    ticket: str

    def __post_init__(self) -> None:
        problem = _validate_url(self.coordinator_url)
        if problem is not None:
            raise TokenError(f"coordinator URL {problem}")
        if len(self.coordinator_key) != 32:
            raise TokenError("coordinator Noise key must be 32 bytes")
        parts = self.ticket.split(".")
        if not self.ticket.startswith(_TICKET_HEADER) or len(parts) != 4:
            raise TokenError("enrolment ticket is not a v4.public ticket with a footer")

    def encode(self) -> str:
        _, _, body, footer = self.ticket.split(".")
        packed = _pack((self.coordinator_url, self.coordinator_key, _unb64(body), _unb64(footer)))
        return _PREFIX + _b64(packed + _check(packed))

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
        if int(head.group(1)) != JOIN_TOKEN_VERSION:
            raise TokenError(
                f"join token version {head.group(1)} is not supported "
                f"(this fogmesh reads version {JOIN_TOKEN_VERSION})"
            )
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
        if _check(packed) != check:
            raise TokenError(
                "join token checksum does not match: it was altered or cut short while copying"
            )
        try:
            url, key, ticket_body, ticket_footer = _unpack(packed)
        except msgspec.DecodeError as exc:
            raise TokenError("join token contents are malformed") from exc
        return cls(url, key, f"{_TICKET_HEADER}{_b64(ticket_body)}.{_b64(ticket_footer)}")

    def __repr__(self) -> str:
        return (
            f"JoinToken(coordinator_url={self.coordinator_url!r}, "
            f"coordinator_key={self.coordinator_key.hex()[:16]}…)"
        )


def create_join_token(
    keys: CoordinatorKeys,
    *,
    url: str,
    ttl: float,
    clock: Clock,
    extra_scopes: Iterable[str] = (),
) -> tuple[JoinToken, Ticket]:
    """A join token carrying a fresh one-shot enrolment ticket (``enrol`` plus ``extra_scopes``)."""
    problem = _validate_url(url)
    if problem is not None:
        raise TokenError(f"coordinator URL {problem}")
    ticket, claims = keys.issuer(clock).issue_with_claims(
        subject="enrol",
        audience=keys.audience,
        scopes=("enrol", *extra_scopes),
        ttl=ttl,
        one_shot=True,
    )
    return JoinToken(url, keys.noise.public, ticket), claims
