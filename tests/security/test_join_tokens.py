"""Join tokens and the coordinator keys behind them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogmesh.clock import ManualClock
from fogmesh.errors import KeyFileError, ReplayError, TicketError, TokenError
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.tickets import MemorySeenStore
from fogmesh.security.tokens import JoinToken, create_join_token

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def keys(tmp_path: Path) -> CoordinatorKeys:
    return CoordinatorKeys.load_or_create(tmp_path / "coordinator")


@pytest.fixture
def token(keys: CoordinatorKeys, clock: ManualClock) -> str:
    join, _ = create_join_token(keys, url="https://fog.example:8700", ttl=3600, clock=clock)
    return join.encode()


def test_round_trip_and_the_ticket_enrols_once(
    keys: CoordinatorKeys, token: str, clock: ManualClock
) -> None:
    assert token.startswith("fmj1.")
    assert all(ch in _B64URL for ch in token[5:])  # copy-paste and shell safe
    join = JoinToken.parse(token)
    assert join.coordinator_url == "https://fog.example:8700"
    assert join.coordinator_key == keys.noise.public
    verifier = keys.verifier(clock, seen=MemorySeenStore(clock))
    ticket = verifier.verify(join.ticket, audience=keys.audience, scope="enrol")
    assert ticket.one_shot and ticket.scopes == ("enrol",)
    assert ticket.expires_at - ticket.issued_at == 3600
    with pytest.raises(ReplayError):
        verifier.verify(join.ticket, audience=keys.audience, scope="enrol")
    assert JoinToken.parse(token).encode() == token


def test_extra_scopes_ride_along(keys: CoordinatorKeys, clock: ManualClock) -> None:
    join, claims = create_join_token(
        keys, url="http://10.0.0.2:8700", ttl=60, clock=clock, extra_scopes=["submit"]
    )
    assert claims.scopes == ("enrol", "submit")
    assert JoinToken.parse(join.encode()).ticket == join.ticket


def test_line_wraps_and_spaces_from_copy_paste_are_ignored(token: str) -> None:
    wrapped = "\n".join(token[i : i + 60] for i in range(0, len(token), 60))
    assert JoinToken.parse(f"  {wrapped}\n") == JoinToken.parse(token)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "", "empty"),
        (lambda t: "   \n", "empty"),
        (lambda t: "hello" + t, "not a fogmesh join token"),
        (lambda t: t[5:], "not a fogmesh join token"),
        (lambda t: "fmj3." + t[5:], "version 3 is not supported"),
        (lambda t: "fmj2." + t[5:], "checksum"),
        (lambda t: t[:40] + "!" + t[41:], "position 40"),
        (lambda t: t[:40] + "=" + t[41:], "position 40"),
        (lambda t: t[:-1], "checksum|truncated"),
        (lambda t: t[:-7], "checksum|truncated"),
        (lambda t: t[:8], "checksum|truncated"),
        (lambda t: t[:6], "truncated"),
        (lambda t: t[:50] + t[51:], "checksum|truncated"),
        (lambda t: t + "AAAA", "checksum"),
        (lambda t: t[:60] + ("B" if t[60] == "A" else "A") + t[61:], "checksum"),
        (lambda t: "x" * 9000, "too long"),
    ],
)
def test_damage_is_named(token: str, mangle: object, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        JoinToken.parse(mangle(token))  # type: ignore[operator]


# The fixture is an immutable string, so sharing it across generated inputs is safe.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_character_change_is_caught_or_harmless(token: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=5, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from(_B64URL.replace(token[index], "")))
    damaged = token[:index] + replacement + token[index + 1 :]
    try:
        parsed = JoinToken.parse(damaged)
    except TokenError:
        return
    # Only the final character's unused low bits can change without changing any byte.
    assert parsed == JoinToken.parse(token)
    assert index == len(token) - 1


def test_fields_are_validated_even_with_a_good_checksum() -> None:
    good = "v4.public.AAAA.AAAA"
    with pytest.raises(TokenError, match="URL"):
        JoinToken("ftp://fog.example", bytes(32), good)
    with pytest.raises(TokenError, match="URL"):
        JoinToken("http://", bytes(32), good)
    with pytest.raises(TokenError, match="32 bytes"):
        JoinToken("http://fog", bytes(31), good)
    with pytest.raises(TokenError, match=r"v4\.public"):
        JoinToken("http://fog", bytes(32), "v2.local.AAAA")


def test_malformed_contents_behind_a_valid_checksum() -> None:
    packed = b"\x93\xa1x\xa1y\xa1z"  # three strings instead of [str, bytes, bytes, bytes]
    check = hashlib.sha256(b"fmj1." + packed).digest()[:4]
    text = "fmj1." + base64.urlsafe_b64encode(packed + check).decode().rstrip("=")
    with pytest.raises(TokenError, match="malformed"):
        JoinToken.parse(text)


def test_create_refuses_a_bad_url(keys: CoordinatorKeys, clock: ManualClock) -> None:
    with pytest.raises(TokenError, match="URL"):
        create_join_token(keys, url="not a url", ttl=60, clock=clock)


def test_repr_leaves_the_ticket_out(token: str) -> None:
    join = JoinToken.parse(token)
    assert join.ticket not in repr(join) and "v4.public" not in repr(join)


# -- CoordinatorKeys --------------------------------------------------------------------------


def test_coordinator_keys_persist(tmp_path: Path) -> None:
    first = CoordinatorKeys.load_or_create(tmp_path)
    second = CoordinatorKeys.load_or_create(tmp_path)
    assert first.noise.public == second.noise.public
    assert first.keyring.current_kid == second.keyring.current_kid
    assert first.audience == second.audience and first.audience.startswith("fogmesh-coordinator-")
    for path in (tmp_path / "keys").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_rotation_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    keys = CoordinatorKeys.load_or_create(tmp_path)
    old_ticket = keys.issuer(clock).issue(subject="op", audience="a", scopes=["read"], ttl=600)
    old_kid = keys.keyring.current_kid
    new_kid = keys.rotate_ticket_key()
    restarted = CoordinatorKeys.load_or_create(tmp_path)
    assert restarted.keyring.current_kid == new_kid
    verifier = restarted.verifier(clock)
    assert verifier.verify(old_ticket, audience="a", scope="read").key_id == old_kid
    restarted.retire_ticket_key(old_kid)
    with pytest.raises(TicketError, match="retired"):
        CoordinatorKeys.load_or_create(tmp_path).verifier(clock).verify(
            old_ticket, audience="a", scope="read"
        )
    with pytest.raises(KeyFileError):
        restarted.retire_ticket_key("../../etc/passwd")


def test_world_readable_coordinator_key_is_refused(tmp_path: Path) -> None:
    CoordinatorKeys.load_or_create(tmp_path)
    (tmp_path / "keys" / "coordinator-noise.key").chmod(0o644)
    with pytest.raises(KeyFileError):
        CoordinatorKeys.load_or_create(tmp_path)


# -- version 2: the coordinator's certificate fingerprint ------------------------------------


def test_a_pinned_token_is_version_2_and_carries_the_fingerprint(
    keys: CoordinatorKeys, clock: ManualClock, token: str
) -> None:
    pin = hashlib.sha256(b"certificate").digest()
    join, _ = create_join_token(
        keys, url="https://192.168.1.20:8700", ttl=60, clock=clock, tls_fingerprint=pin
    )
    text = join.encode()
    assert text.startswith("fmj2.")
    parsed = JoinToken.parse(text)
    assert parsed.tls_fingerprint == pin and parsed.encode() == text
    # A version-1 token (written before pinning existed) still reads, without a pin.
    assert token.startswith("fmj1.") and JoinToken.parse(token).tls_fingerprint is None
    # The version tag is part of the checksum: a v2 token relabelled v1 is refused, not misread.
    with pytest.raises(TokenError, match="checksum"):
        JoinToken.parse("fmj1." + text[5:])


def test_a_pin_needs_an_https_url(keys: CoordinatorKeys, clock: ManualClock) -> None:
    pin = bytes(32)
    with pytest.raises(TokenError, match="https://"):
        create_join_token(
            keys, url="http://10.0.0.2:8700", ttl=60, clock=clock, tls_fingerprint=pin
        )
    with pytest.raises(TokenError, match="32 bytes"):
        JoinToken("https://fog", bytes(32), "v4.public.AAAA.AAAA", bytes(31))
