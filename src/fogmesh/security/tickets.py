"""Access tickets: PASETO v4.public (Ed25519) with scopes, audience, validity window and ids.

v4.public has exactly one algorithm, so there is no algorithm field to confuse. The footer
carries the signing key's PASERK id (``k4.pid.…``); the verifier looks the key up by that id,
which is how key rotation works: a rotated-out key keeps verifying until it is retired.

Time comes from an injected Clock, never from pyseto (which would read the wall clock): claims
are parsed and checked here. One-shot tickets (enrolment) carry ``once: true``; their ``jti`` is
remembered in a SeenStore until the ticket could no longer verify anyway (expiry + skew).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import logging
import math
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fogmesh.clock import Clock
from fogmesh.errors import (
    ReplayError,
    TicketAudienceError,
    TicketError,
    TicketExpired,
    TicketNotYetValid,
    TicketScopeError,
)

__all__ = [
    "MemorySeenStore",
    "SeenStore",
    "Ticket",
    "TicketIssuer",
    "TicketKeyring",
    "TicketVerifier",
    "ticket_key_id",
]

_log = logging.getLogger(__name__)

SCOPES: Final = ("admin", "submit", "read", "agent", "enrol")
# An operator with admin may do what submit and read allow; device scopes (agent, enrol) are never
# implied, because they must stay tied to device identities.
_GRANTS: Final[dict[str, frozenset[str]]] = {
    "admin": frozenset({"admin", "submit", "read"}),
    "submit": frozenset({"submit"}),
    "read": frozenset({"read"}),
    "agent": frozenset({"agent"}),
    "enrol": frozenset({"enrol"}),
}
DEFAULT_SKEW: Final = 60.0
_HEADER: Final = "v4.public."
_MAX_TICKET: Final = 8192
_VERIFIED_KEPT: Final = 4096  # tickets whose signature verified, newest kept
_SIG: Final = 64


class _Claims(msgspec.Struct, frozen=True):
    sub: str
    aud: str
    jti: str
    iat: str
    nbf: str
    exp: str
    scope: list[str]
    once: bool = False


class _Footer(msgspec.Struct, frozen=True):
    kid: str


_claims_json = msgspec.json.Decoder(_Claims).decode
_footer_json = msgspec.json.Decoder(_Footer).decode
_to_json = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Ticket:
    """A verified ticket's claims (times in Unix seconds)."""

    subject: str
    audience: str
    scopes: tuple[str, ...]
    ticket_id: str
    issued_at: float
    not_before: float
    expires_at: float
    one_shot: bool
    key_id: str

    def allows(self, scope: str) -> bool:
        return any(scope in _GRANTS.get(granted, ()) for granted in self.scopes)


class SeenStore(Protocol):
    """Remembers one-shot ticket ids. A durable implementation must make ``remember`` atomic."""

    def remember(self, key: str, until: float, holder: str | None = None) -> bool:
        """Record ``key`` until Unix time ``until`` (spent by ``holder``, if given); False if it
        was already recorded — unless by this same, non-None ``holder``: a device may present
        its own join token again when the answer to its enrolment was lost."""
        ...


class MemorySeenStore:
    """In-process SeenStore; entries leave once their time has passed."""

    __slots__ = ("_clock", "_expiry", "_heap", "_holders")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._holders: dict[str, str] = {}
        self._heap: list[tuple[float, str]] = []

    def remember(self, key: str, until: float, holder: str | None = None) -> bool:
        now = self._clock.time()
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] < now:
            _, old = heapq.heappop(heap)
            expiry.pop(old, None)
            self._holders.pop(old, None)
        if key in expiry:
            return holder is not None and self._holders.get(key) == holder
        expiry[key] = until
        if holder is not None:
            self._holders[key] = holder
        heapq.heappush(heap, (until, key))
        return True

    def __len__(self) -> int:
        return len(self._expiry)


def _v4_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> Any:
    # pyseto (with pycryptodomex, argon2 and cffi) loads on first use: a device agent carries
    # tickets but never signs or verifies one, and would otherwise hold megabytes for it.
    from pyseto.versions.v4 import V4Public

    return V4Public(key)


def ticket_key_id(public_key: Ed25519PublicKey) -> str:
    """The PASERK id (``k4.pid.…``) of a ticket verification key."""
    kid: str = _v4_public(public_key).to_paserk_id()
    return kid


class TicketKeyring:
    """The current signing key plus older keys that still verify until retired."""

    __slots__ = ("_current_kid", "_signer", "_verifiers")

    def __init__(
        self,
        signing_key: Ed25519PrivateKey,
        verify_only: Iterable[Ed25519PublicKey] = (),
    ) -> None:
        self._verifiers: dict[str, Any] = {}
        for public in verify_only:
            self._verifiers[ticket_key_id(public)] = _v4_public(public)
        self._signer: Any = None
        self._current_kid = ""
        self._install(signing_key)

    def _install(self, signing_key: Ed25519PrivateKey) -> None:
        public = signing_key.public_key()
        self._current_kid = ticket_key_id(public)
        self._signer = _v4_public(signing_key)
        self._verifiers[self._current_kid] = _v4_public(public)

    def rotate(self, new_signing_key: Ed25519PrivateKey) -> str:
        """Sign with ``new_signing_key`` from now on; old keys still verify. Returns the new kid."""
        self._install(new_signing_key)
        return self._current_kid

    def retire(self, kid: str) -> None:
        """Stop accepting tickets signed by ``kid`` (not the current key)."""
        if kid == self._current_kid:
            raise TicketError("cannot retire the current signing key; rotate first")
        self._verifiers.pop(kid, None)

    @property
    def current_kid(self) -> str:
        return self._current_kid

    def kids(self) -> tuple[str, ...]:
        return tuple(self._verifiers)

    def signer(self) -> tuple[str, Any]:
        return self._current_kid, self._signer

    def verifier(self, kid: str) -> Any:
        return self._verifiers.get(kid)

    def __repr__(self) -> str:
        return f"TicketKeyring(current={self._current_kid!r}, keys={len(self._verifiers)})"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _epoch(value: str) -> float:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive time")
    return moment.timestamp()


def _b64url(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class TicketIssuer:
    """Signs tickets with the keyring's current key."""

    __slots__ = ("_clock", "_keyring")

    def __init__(self, keyring: TicketKeyring, clock: Clock) -> None:
        self._keyring = keyring
        self._clock = clock

    def issue(
        self,
        *,
        subject: str,
        audience: str,
        scopes: Iterable[str],
        ttl: float,
        not_before: float | None = None,
        one_shot: bool = False,
        ticket_id: str | None = None,
    ) -> str:
        """A signed ticket valid from ``not_before`` (default now) for ``ttl`` seconds."""
        token, _ = self.issue_with_claims(
            subject=subject,
            audience=audience,
            scopes=scopes,
            ttl=ttl,
            not_before=not_before,
            one_shot=one_shot,
            ticket_id=ticket_id,
        )
        return token

    def issue_with_claims(
        self,
        *,
        subject: str,
        audience: str,
        scopes: Iterable[str],
        ttl: float,
        not_before: float | None = None,
        one_shot: bool = False,
        ticket_id: str | None = None,
    ) -> tuple[str, Ticket]:
        """Like ``issue``, also returning the claims as the verifier will see them."""
        granted = list(dict.fromkeys(scopes))
        unknown = [s for s in granted if s not in _GRANTS]
        if unknown or not granted:
            raise TicketScopeError(f"unknown or missing scope {unknown!r}; choose from {SCOPES}")
        if not ttl > 0:
            raise TicketError("ticket lifetime must be positive")
        now = math.floor(self._clock.time())
        start = now if not_before is None else math.floor(not_before)
        end = start + math.ceil(ttl)
        # Hex, not base64url: an id that starts with "-" reads as an option on a command line
        # (`fogmesh token revoke -x…`), one id in 32.
        jti = ticket_id or secrets.token_hex(16)
        claims = _Claims(
            sub=subject,
            aud=audience,
            jti=jti,
            iat=_iso(now),
            nbf=_iso(start),
            exp=_iso(end),
            scope=granted,
            once=one_shot,
        )
        from pyseto import encode as paseto_encode  # loaded already: the keyring made the signer

        kid, signer = self._keyring.signer()
        token: bytes = paseto_encode(signer, _to_json(claims), _to_json(_Footer(kid)))
        ticket = Ticket(
            subject=subject,
            audience=audience,
            scopes=tuple(granted),
            ticket_id=jti,
            issued_at=float(now),
            not_before=float(start),
            expires_at=float(end),
            one_shot=one_shot,
            key_id=kid,
        )
        return token.decode("ascii"), ticket


class TicketVerifier:
    """Checks signature, validity window (± skew), audience, scope and one-shot use."""

    __slots__ = ("_clock", "_keyring", "_seen", "_skew", "_verified")

    def __init__(
        self,
        keyring: TicketKeyring,
        clock: Clock,
        *,
        seen: SeenStore | None = None,
        skew: float = DEFAULT_SKEW,
    ) -> None:
        if skew < 0:
            raise ValueError("skew must be >= 0")
        self._keyring = keyring
        self._clock = clock
        self._seen = seen
        self._skew = skew
        # Signature checks are the expensive part (Ed25519) and a client sends the same ticket
        # with every request: remember tickets whose signature verified, keyed by the exact
        # string. Every other check (window, audience, scope, one-shot, retired key) still runs.
        self._verified: OrderedDict[str, tuple[str, _Claims, float, float, float]] = OrderedDict()

    def verify(
        self,
        token: str,
        *,
        audience: str,
        scope: str,
        subject: str | None = None,
        holder: str | None = None,
    ) -> Ticket:
        """The ticket's claims if every check passes; a TicketError subclass or ReplayError if not.

        Checks run cheapest-safe first, and a one-shot id is consumed only after all others pass,
        so a ticket rejected for scope or audience is not burnt. ``holder`` (an authenticated
        device id) spends a one-shot ticket in that holder's name: the same holder may present
        it again, nobody else may.
        """
        try:
            return self._verify(token, audience, scope, subject, holder)
        except (TicketError, ReplayError) as exc:
            _log.debug("ticket rejected: %s", exc.reason)
            raise

    def _verify(
        self, token: str, audience: str, scope: str, subject: str | None, holder: str | None
    ) -> Ticket:
        cached = self._verified.get(token) if isinstance(token, str) else None
        if cached is not None and self._keyring.verifier(cached[0]) is not None:
            self._verified.move_to_end(token)
            kid, claims, issued, start, end = cached
        else:
            kid, claims, issued, start, end = self._check_signature(token)
            self._verified[token] = (kid, claims, issued, start, end)
            if len(self._verified) > _VERIFIED_KEPT:
                self._verified.popitem(last=False)

        now = self._clock.time()
        if now > end + self._skew:
            raise TicketExpired("ticket has expired")
        if now < start - self._skew:
            raise TicketNotYetValid("ticket is not valid yet")
        if claims.aud != audience:
            raise TicketAudienceError("ticket is for a different audience")
        if not any(scope in _GRANTS.get(granted, ()) for granted in claims.scope):
            raise TicketScopeError(f"ticket does not grant the {scope!r} scope")
        if subject is not None and claims.sub != subject:
            raise TicketError("ticket was issued to a different subject")
        if claims.once:
            if self._seen is None:
                raise TicketError("one-shot ticket cannot be accepted without a seen-store")
            if not self._seen.remember(claims.jti, end + self._skew, holder):
                raise ReplayError("one-shot ticket has already been used")
        return Ticket(
            subject=claims.sub,
            audience=claims.aud,
            scopes=tuple(claims.scope),
            ticket_id=claims.jti,
            issued_at=issued,
            not_before=start,
            expires_at=end,
            one_shot=claims.once,
            key_id=kid,
        )

    def _check_signature(self, token: str) -> tuple[str, _Claims, float, float, float]:
        if not isinstance(token, str) or len(token) > _MAX_TICKET:
            raise TicketError("ticket is not a string of plausible size")
        if not token.startswith(_HEADER):
            raise TicketError("not a v4.public ticket")
        parts = token.split(".")
        if len(parts) != 4:
            raise TicketError("ticket has no key-id footer or is malformed")
        try:
            signed = _b64url(parts[2])
            footer = _b64url(parts[3])
            kid = _footer_json(footer).kid
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise TicketError("ticket encoding is damaged") from exc
        key = self._keyring.verifier(kid)
        if key is None:
            raise TicketError("ticket signed by an unknown or retired key")
        if len(signed) <= _SIG:
            raise TicketError("ticket is truncated")
        try:
            body: bytes = key.verify(signed, footer, b"")
        except Exception as exc:  # pyseto wraps failures in its own VerifyError/ValueError
            raise TicketError("ticket signature does not verify (tampered or forged)") from exc
        try:
            claims = _claims_json(body)
            issued, start, end = _epoch(claims.iat), _epoch(claims.nbf), _epoch(claims.exp)
        except (msgspec.DecodeError, ValueError) as exc:
            raise TicketError("ticket claims are malformed") from exc
        return kid, claims, issued, start, end
