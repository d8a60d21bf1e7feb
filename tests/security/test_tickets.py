"""PASETO v4.public tickets: claims, validity window, audience, scopes, one-shot use, rotation."""

from __future__ import annotations

import base64
import json

import pyseto
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fogmesh.clock import ManualClock
from fogmesh.errors import (
    ReplayError,
    TicketAudienceError,
    TicketError,
    TicketExpired,
    TicketNotYetValid,
    TicketScopeError,
)
from fogmesh.security.tickets import (
    MemorySeenStore,
    TicketIssuer,
    TicketKeyring,
    TicketVerifier,
    ticket_key_id,
)

AUD = "fogmesh-coordinator-test"


def _issue(issuer: TicketIssuer, **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "subject": "alice",
        "audience": AUD,
        "scopes": ["submit"],
        "ttl": 600,
    }
    kwargs.update(overrides)
    return issuer.issue(**kwargs)  # type: ignore[arg-type]


def test_round_trip_returns_the_claims(
    issuer: TicketIssuer, verifier: TicketVerifier, keyring: TicketKeyring
) -> None:
    token, issued = issuer.issue_with_claims(
        subject="alice", audience=AUD, scopes=["submit", "read"], ttl=600, ticket_id="t-1"
    )
    ticket = verifier.verify(token, audience=AUD, scope="read")
    assert ticket == issued
    assert ticket.subject == "alice" and ticket.ticket_id == "t-1"
    assert ticket.scopes == ("submit", "read")
    assert ticket.expires_at - ticket.issued_at == 600
    assert ticket.key_id == keyring.current_kid and ticket.key_id.startswith("k4.pid.")
    assert not ticket.one_shot


def test_tickets_are_standard_paseto(clock: ManualClock) -> None:
    signing = Ed25519PrivateKey.generate()
    keyring = TicketKeyring(signing)
    token = _issue(TicketIssuer(keyring, clock))
    pem = signing.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public = pyseto.Key.new(4, "public", pem)
    decoded = pyseto.decode(public, token)  # the library's own verification path
    claims = json.loads(decoded.payload)
    assert claims["aud"] == AUD and claims["sub"] == "alice"
    assert json.loads(decoded.footer) == {"kid": public.to_paserk_id()}
    assert keyring.current_kid == public.to_paserk_id()


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        (["admin"], "admin", True),
        (["admin"], "submit", True),  # admin implies the operator scopes
        (["admin"], "read", True),
        (["admin"], "agent", False),  # ...but never a device scope
        (["admin"], "enrol", False),
        (["read"], "submit", False),
        (["submit"], "read", False),
        (["agent"], "agent", True),
        (["enrol"], "agent", False),
        (["read", "agent"], "agent", True),
    ],
)
def test_scopes(
    issuer: TicketIssuer,
    verifier: TicketVerifier,
    granted: list[str],
    required: str,
    allowed: bool,
) -> None:
    token = _issue(issuer, scopes=granted)
    if allowed:
        assert verifier.verify(token, audience=AUD, scope=required).allows(required)
    else:
        with pytest.raises(TicketScopeError):
            verifier.verify(token, audience=AUD, scope=required)


def test_wrong_audience(issuer: TicketIssuer, verifier: TicketVerifier) -> None:
    with pytest.raises(TicketAudienceError):
        verifier.verify(_issue(issuer), audience="fogmesh-coordinator-other", scope="submit")


def test_expiry_with_skew(
    issuer: TicketIssuer, verifier: TicketVerifier, clock: ManualClock
) -> None:
    token = _issue(issuer, ttl=600)
    clock.advance(600 + 60)  # exactly at exp + skew: still accepted
    verifier.verify(token, audience=AUD, scope="submit")
    clock.advance(1)
    with pytest.raises(TicketExpired):
        verifier.verify(token, audience=AUD, scope="submit")


def test_not_yet_valid_with_skew(
    issuer: TicketIssuer, verifier: TicketVerifier, clock: ManualClock
) -> None:
    start = clock.time() + 1000
    token = _issue(issuer, not_before=start)
    with pytest.raises(TicketNotYetValid):
        verifier.verify(token, audience=AUD, scope="submit")
    clock.advance(1000 - 60)  # exactly nbf - skew: accepted
    verifier.verify(token, audience=AUD, scope="submit")


def test_issuer_clock_ahead_within_skew_is_tolerated(keyring: TicketKeyring) -> None:
    coordinator_clock = ManualClock(start=1_700_000_030.0)  # 30 s ahead of the verifier
    verifier_clock = ManualClock(start=1_700_000_000.0)
    token = _issue(TicketIssuer(keyring, coordinator_clock))
    verifier = TicketVerifier(keyring, verifier_clock, skew=60)
    assert verifier.verify(token, audience=AUD, scope="submit").subject == "alice"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_claims_are_rejected(issuer: TicketIssuer, verifier: TicketVerifier) -> None:
    header, version, body, footer = _issue(issuer, scopes=["read"]).split(".")
    raw = _unb64(body)
    claims, signature = raw[:-64], raw[-64:]
    forged = claims.replace(b'"read"', b'"admn"')
    assert forged != claims
    token = ".".join([header, version, _b64(forged + signature), footer])
    with pytest.raises(TicketError, match="signature"):
        verifier.verify(token, audience=AUD, scope="read")


@pytest.mark.parametrize("position", [12, 100, 300, -70])
def test_any_changed_character_in_the_signed_part_is_rejected(
    issuer: TicketIssuer, verifier: TicketVerifier, position: int
) -> None:
    token = _issue(issuer)
    _, _, body, _ = token.split(".")
    assert len(body) > 300
    index = position % len(token) if position >= 0 else token.rindex(".") + position
    replacement = "A" if token[index] != "A" else "B"
    damaged = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(TicketError):
        verifier.verify(damaged, audience=AUD, scope="submit")


def test_forged_with_another_key_under_our_kid(
    keyring: TicketKeyring, verifier: TicketVerifier, clock: ManualClock
) -> None:
    attacker = TicketKeyring(Ed25519PrivateKey.generate())
    token = _issue(TicketIssuer(attacker, clock), scopes=["admin"])
    header, version, body, _ = token.split(".")
    footer = _b64(json.dumps({"kid": keyring.current_kid}).encode())
    with pytest.raises(TicketError, match="signature"):
        verifier.verify(".".join([header, version, body, footer]), audience=AUD, scope="admin")


def test_unknown_key_id(verifier: TicketVerifier, clock: ManualClock) -> None:
    other = TicketIssuer(TicketKeyring(Ed25519PrivateKey.generate()), clock)
    with pytest.raises(TicketError, match="unknown or retired"):
        verifier.verify(_issue(other), audience=AUD, scope="submit")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v4.local.abc.def",
        "v2.public.abc",
        "v4.public.",
        "v4.public.abc",
        "v4.public.!!!.eyJraWQiOiJ4In0",
        "v4.public.AAAA.AAAA",
        "v4.public." + "A" * 9000,
    ],
)
def test_malformed_tickets(verifier: TicketVerifier, token: str) -> None:
    with pytest.raises(TicketError):
        verifier.verify(token, audience=AUD, scope="submit")


def test_truncated_ticket(issuer: TicketIssuer, verifier: TicketVerifier) -> None:
    token = _issue(issuer)
    header, version, body, footer = token.split(".")
    for cut in (body[:10], body[:-1], body[:-30]):
        with pytest.raises(TicketError):
            verifier.verify(".".join([header, version, cut, footer]), audience=AUD, scope="submit")


def test_one_shot_ticket_is_accepted_once(
    issuer: TicketIssuer, verifier: TicketVerifier, seen: MemorySeenStore
) -> None:
    token = _issue(issuer, scopes=["enrol"], one_shot=True)
    assert verifier.verify(token, audience=AUD, scope="enrol").one_shot
    with pytest.raises(ReplayError):
        verifier.verify(token, audience=AUD, scope="enrol")
    assert len(seen) == 1


def test_one_shot_id_is_remembered_until_expiry_then_forgotten(
    issuer: TicketIssuer, verifier: TicketVerifier, seen: MemorySeenStore, clock: ManualClock
) -> None:
    token = _issue(issuer, scopes=["enrol"], one_shot=True, ttl=300)
    verifier.verify(token, audience=AUD, scope="enrol")
    clock.advance(300 + 60)  # last second it could verify: still remembered
    with pytest.raises(ReplayError):
        verifier.verify(token, audience=AUD, scope="enrol")
    clock.advance(1)
    with pytest.raises(TicketExpired):  # expired now, so forgetting its id is safe
        verifier.verify(token, audience=AUD, scope="enrol")
    assert seen.remember("another", clock.time() + 10)  # each use prunes what has expired
    assert len(seen) == 1


def test_rejected_one_shot_ticket_is_not_burnt(
    issuer: TicketIssuer, verifier: TicketVerifier
) -> None:
    token = _issue(issuer, scopes=["enrol"], one_shot=True)
    with pytest.raises(TicketAudienceError):
        verifier.verify(token, audience="elsewhere", scope="enrol")
    with pytest.raises(TicketScopeError):
        verifier.verify(token, audience=AUD, scope="agent")
    with pytest.raises(TicketError, match="subject"):
        verifier.verify(token, audience=AUD, scope="enrol", subject="dev-other")
    verifier.verify(token, audience=AUD, scope="enrol")


def test_one_shot_ticket_needs_a_seen_store(
    issuer: TicketIssuer, keyring: TicketKeyring, clock: ManualClock
) -> None:
    token = _issue(issuer, scopes=["enrol"], one_shot=True)
    with pytest.raises(TicketError, match="seen-store"):
        TicketVerifier(keyring, clock).verify(token, audience=AUD, scope="enrol")


def test_key_rotation_keeps_old_tickets_valid_until_retired(
    issuer: TicketIssuer, verifier: TicketVerifier, keyring: TicketKeyring
) -> None:
    old_kid = keyring.current_kid
    old_token = _issue(issuer)
    new_kid = keyring.rotate(Ed25519PrivateKey.generate())
    assert new_kid != old_kid and set(keyring.kids()) == {old_kid, new_kid}
    new_token = _issue(issuer)
    assert verifier.verify(new_token, audience=AUD, scope="submit").key_id == new_kid
    assert verifier.verify(old_token, audience=AUD, scope="submit").key_id == old_kid
    keyring.retire(old_kid)
    with pytest.raises(TicketError, match="retired"):
        verifier.verify(old_token, audience=AUD, scope="submit")
    verifier.verify(new_token, audience=AUD, scope="submit")
    with pytest.raises(TicketError):
        keyring.retire(new_kid)


def test_verify_only_keys_and_key_ids(clock: ManualClock) -> None:
    old = Ed25519PrivateKey.generate()
    old_token = _issue(TicketIssuer(TicketKeyring(old), clock))
    keyring = TicketKeyring(Ed25519PrivateKey.generate(), verify_only=[old.public_key()])
    assert ticket_key_id(old.public_key()) in keyring.kids()
    assert TicketVerifier(keyring, clock).verify(old_token, audience=AUD, scope="submit")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scopes": ["root"]}, TicketScopeError),
        ({"scopes": []}, TicketScopeError),
        ({"ttl": 0}, TicketError),
        ({"ttl": -5}, TicketError),
    ],
)
def test_issue_refuses_bad_requests(
    issuer: TicketIssuer, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _issue(issuer, **kwargs)


def test_each_ticket_gets_a_fresh_id(issuer: TicketIssuer, verifier: TicketVerifier) -> None:
    ids = {
        verifier.verify(_issue(issuer), audience=AUD, scope="submit").ticket_id for _ in range(50)
    }
    assert len(ids) == 50


def test_negative_skew_is_refused(keyring: TicketKeyring, clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        TicketVerifier(keyring, clock, skew=-1)


def test_a_one_shot_ticket_spent_by_a_holder_is_accepted_again_only_from_that_holder(
    issuer: TicketIssuer, verifier: TicketVerifier, clock: ManualClock
) -> None:
    token = _issue(issuer, scopes=["enrol"], one_shot=True, ttl=300)
    verifier.verify(token, audience=AUD, scope="enrol", holder="dev-a")
    # dev-a never got its answer and asks again: accepted, as often as it needs.
    verifier.verify(token, audience=AUD, scope="enrol", holder="dev-a")
    verifier.verify(token, audience=AUD, scope="enrol", holder="dev-a")
    for other in ("dev-b", None):
        with pytest.raises(ReplayError):
            verifier.verify(token, audience=AUD, scope="enrol", holder=other)
    # Spent without a holder: refused to everyone, whoever asks.
    anonymous = _issue(issuer, scopes=["enrol"], one_shot=True)
    verifier.verify(anonymous, audience=AUD, scope="enrol")
    with pytest.raises(ReplayError):
        verifier.verify(anonymous, audience=AUD, scope="enrol", holder="dev-a")


def test_ticket_ids_never_read_as_command_line_options(issuer: TicketIssuer) -> None:
    # `fogmesh token revoke ID` takes the id as an argument: one starting with "-" was an error.
    for _ in range(300):
        _, ticket = issuer.issue_with_claims(subject="s", audience=AUD, scopes=["read"], ttl=60)
        assert ticket.ticket_id[0].isalnum()
