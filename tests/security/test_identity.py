"""Device identity keys, device ids, the Noise binding, and key-file handling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fogmesh.errors import IntegrityError, KeyFileError
from fogmesh.security.identity import (
    NOISE_BINDING_PREFIX,
    DeviceIdentity,
    device_id_from_public_key,
    verify_noise_binding,
    verify_signature,
)
from fogmesh.security.keyfile import read_key_file, write_key_file
from fogmesh.security.noise import NoiseKeypair


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_device_id_is_stable_and_derived_from_the_public_key(tmp_path: Path) -> None:
    identity = DeviceIdentity.generate()
    assert identity.device_id == device_id_from_public_key(identity.public_key)
    assert identity.device_id.startswith("dev-") and len(identity.device_id) == 30
    identity.save(tmp_path / "id.key")
    assert DeviceIdentity.load(tmp_path / "id.key").device_id == identity.device_id
    assert DeviceIdentity.generate().device_id != identity.device_id


def test_device_id_of_a_known_key_never_changes() -> None:
    # Ids are stored and shown to users, so the derivation is pinned: RFC 8032 test-1 public key,
    # "dev-" + lower-case base32 of SHA-256("fogmesh-device-id:" ‖ key), first 26 characters.
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert device_id_from_public_key(public) == "dev-cjelgp2lxza2mzynywdgyoy2t7"
    with pytest.raises(IntegrityError):
        device_id_from_public_key(public[:31])


def test_rfc8032_signature_through_our_verification() -> None:
    identity = DeviceIdentity.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert identity.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    signature = identity.sign(b"")
    assert signature.hex().startswith("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065")
    verify_signature(identity.public_key, signature, b"")


def test_binding_links_identity_and_noise_key() -> None:
    identity, noise = DeviceIdentity.generate(), NoiseKeypair.generate()
    binding = identity.bind_noise_key(noise.public)
    verify_noise_binding(identity.public_key, noise.public, binding)
    verify_signature(identity.public_key, binding, NOISE_BINDING_PREFIX + noise.public)
    with pytest.raises(IntegrityError):
        verify_noise_binding(identity.public_key, NoiseKeypair.generate().public, binding)
    with pytest.raises(IntegrityError):
        verify_noise_binding(DeviceIdentity.generate().public_key, noise.public, binding)
    # A plain signature over the bare key (no context prefix) is not a binding.
    with pytest.raises(IntegrityError):
        verify_noise_binding(identity.public_key, noise.public, identity.sign(noise.public))
    with pytest.raises(IntegrityError):
        identity.bind_noise_key(b"short")


@pytest.mark.parametrize(
    ("public", "signature"),
    [(b"\0" * 31, b"\0" * 64), (b"\0" * 32, b"\0" * 63), (b"\0" * 32, b"\0" * 65)],
)
def test_malformed_inputs_fail_like_forgeries(public: bytes, signature: bytes) -> None:
    with pytest.raises(IntegrityError):
        verify_signature(public, signature, b"m")


def test_key_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "identity.key"
    identity = DeviceIdentity.load_or_create(path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert DeviceIdentity.load_or_create(path).device_id == identity.device_id
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_key_file_is_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        NoiseKeypair.load_or_create(tmp_path / "noise.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "noise.key") == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_key_file_accessible_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "identity.key"
    DeviceIdentity.generate().save(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        DeviceIdentity.load(path)
    with pytest.raises(KeyFileError):
        DeviceIdentity.load_or_create(path)  # never silently replaced either


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    DeviceIdentity.generate().save(real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        DeviceIdentity.load(link)


def test_directory_instead_of_key_file(tmp_path: Path) -> None:
    (tmp_path / "dir.key").mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        DeviceIdentity.load(tmp_path / "dir.key")


def test_damaged_key_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    DeviceIdentity.generate().save(path)
    text = path.read_text()
    magic, kind, body, check = text.split()
    damaged = body[:5] + ("A" if body[5] != "A" else "B") + body[6:]
    path.write_text(f"{magic} {kind} {damaged} {check}\n")
    with pytest.raises(KeyFileError, match="checksum"):
        DeviceIdentity.load(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a fogmesh key file"),
        (b"\xff\xfe", "not a fogmesh key file"),
        (b"fogmesh-key/9 ed25519 AAAA 00000000\n", "unsupported"),
        (b"fogmesh-key/1 ed25519 !!!! 00000000\n", "base64url"),
        (b"x" * 5000, "too large"),
    ],
)
def test_unreadable_key_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=match):
        DeviceIdentity.load(path)


def test_wrong_kind_of_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "noise.key"
    NoiseKeypair.generate().save(path)
    with pytest.raises(KeyFileError, match="x25519"):
        DeviceIdentity.load(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        DeviceIdentity.load(tmp_path / "absent.key")
    with pytest.raises(FileNotFoundError):
        read_key_file(tmp_path / "absent.key", "ed25519")


def test_save_never_overwrites_by_accident(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    first = DeviceIdentity.generate()
    first.save(path)
    with pytest.raises(KeyFileError, match="already exists"):
        DeviceIdentity.generate().save(path)
    assert DeviceIdentity.load(path).device_id == first.device_id
    second = DeviceIdentity.generate()
    second.save(path, replace=True)
    assert DeviceIdentity.load(path).device_id == second.device_id


def test_first_writer_wins(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    assert write_key_file(path, "ed25519", b"a" * 32)
    assert not write_key_file(path, "ed25519", b"b" * 32)
    assert read_key_file(path, "ed25519") == b"a" * 32


def test_wrong_private_key_length() -> None:
    with pytest.raises(KeyFileError):
        DeviceIdentity.from_private_bytes(b"short")
    with pytest.raises(KeyFileError):
        NoiseKeypair.from_private_bytes(b"short")


def test_reprs_hide_private_keys() -> None:
    identity, noise = DeviceIdentity.generate(), NoiseKeypair.generate()
    for secret, text in (
        (identity.private_bytes(), repr(identity)),
        (noise.private_bytes(), repr(noise)),
    ):
        assert secret.hex() not in text and secret.hex()[:16] not in text
    assert identity.device_id in repr(identity)
