"""Sealed storage: round trips, binding to record id and kind, every bit flip rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogmesh.errors import IntegrityError, KeyFileError
from fogmesh.security.sealed import ENVELOPE_VERSION, MasterKey, Sealer

_MASTER = MasterKey(bytes(range(32)))
_SEALER = Sealer(_MASTER)
_HEADER = 1 + 4 + 12
_TAG = 16


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4096), record_id=st.text(max_size=64), kind=st.text(max_size=32))
def test_round_trip(data: bytes, record_id: str, kind: str) -> None:
    envelope = _SEALER.seal(data, record_id=record_id, kind=kind)
    assert len(envelope) == _HEADER + len(data) + _TAG
    assert envelope[0] == ENVELOPE_VERSION
    assert _SEALER.unseal(envelope, record_id=record_id, kind=kind) == data


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=256),
    record_id=st.text(max_size=16),
    kind=st.text(max_size=8),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_any_single_bit_flip_is_rejected(
    data: bytes, record_id: str, kind: str, position: float
) -> None:
    envelope = bytearray(_SEALER.seal(data, record_id=record_id, kind=kind))
    bit = int(position * len(envelope) * 8)
    envelope[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        _SEALER.unseal(bytes(envelope), record_id=record_id, kind=kind)


def test_every_bit_of_a_small_envelope_is_protected() -> None:
    envelope = _SEALER.seal(b"heart rate 61 bpm", record_id="rec-7", kind="twin.event")
    for bit in range(len(envelope) * 8):
        damaged = bytearray(envelope)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(IntegrityError):
            _SEALER.unseal(bytes(damaged), record_id="rec-7", kind="twin.event")


@pytest.mark.parametrize(
    "change",
    ["truncate-1", "truncate-to-header", "empty", "append", "other-id", "other-kind", "swap"],
)
def test_damaged_or_misfiled_records_are_rejected(change: str) -> None:
    envelope = _SEALER.seal(b"secret note", record_id="a:b", kind="c")
    target = {"record_id": "a:b", "kind": "c"}
    if change == "truncate-1":
        envelope = envelope[:-1]
    elif change == "truncate-to-header":
        envelope = envelope[:_HEADER]
    elif change == "empty":
        envelope = b""
    elif change == "append":
        envelope += b"\0"
    elif change == "other-id":
        target["record_id"] = "a:c"
    elif change == "other-kind":
        target["kind"] = "d"
    elif change == "swap":  # same concatenation, different split: length prefixes tell them apart
        target = {"record_id": "b", "kind": "c:a"}
    with pytest.raises(IntegrityError):
        _SEALER.unseal(envelope, **target)


def test_nonces_are_fresh() -> None:
    first = _SEALER.seal(b"same", record_id="r", kind="k")
    second = _SEALER.seal(b"same", record_id="r", kind="k")
    assert first[5:_HEADER] != second[5:_HEADER]
    assert first != second


def test_per_object_keys_differ() -> None:
    assert _MASTER.derive("k", "r1") != _MASTER.derive("k", "r2")
    assert _MASTER.derive("k1", "r") != _MASTER.derive("k2", "r")
    assert _MASTER.derive("a:b", "c") != _MASTER.derive("a", "b:c")
    assert len(_MASTER.derive("k", "r")) == 32


def test_master_key_rotation() -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    sealed_before = Sealer(old).seal(b"v1", record_id="r", kind="k")
    rotated = Sealer(new, previous=[old])
    assert rotated.unseal(sealed_before, record_id="r", kind="k") == b"v1"
    assert rotated.seal(b"v2", record_id="r", kind="k")[1:5] == new.fingerprint
    with pytest.raises(IntegrityError, match="unknown master key"):
        Sealer(new).unseal(sealed_before, record_id="r", kind="k")


def test_unsupported_version_is_an_integrity_error() -> None:
    envelope = bytearray(_SEALER.seal(b"x", record_id="r", kind="k"))
    envelope[0] = 2
    with pytest.raises(IntegrityError, match="version"):
        _SEALER.unseal(bytes(envelope), record_id="r", kind="k")


def test_master_key_file_is_created_once_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    first = MasterKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    second = MasterKey.load_or_create(path)
    assert first.fingerprint == second.fingerprint
    envelope = Sealer(first).seal(b"kept", record_id="r", kind="k")
    assert Sealer(MasterKey.load(path)).unseal(envelope, record_id="r", kind="k") == b"kept"


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    MasterKey.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        MasterKey.load_or_create(path)
    with pytest.raises(KeyFileError, match="does not exist"):
        MasterKey.load(tmp_path / "absent.key")


def test_master_key_length() -> None:
    with pytest.raises(KeyFileError):
        MasterKey(b"short")
