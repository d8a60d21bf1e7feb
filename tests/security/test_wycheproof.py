"""Wycheproof vectors through our own layers.

* ``ed25519_test.json`` through ``identity.verify_signature``: valid accepted, invalid rejected.
* ``aes_gcm_test.json`` through the AES-GCM functions that ``sealed`` calls (``_gcm_seal`` /
  ``_gcm_open``): 96-bit-nonce cases must match exactly (valid) or be rejected (invalid); cases
  with other nonce sizes are *refused* by our layer by design, and the test checks that they are
  refused and counts them, so nothing is skipped silently.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from security_helpers import load_vectors, require_vectors

from fogmesh.errors import IntegrityError
from fogmesh.security.identity import verify_signature
from fogmesh.security.sealed import _gcm_open, _gcm_seal


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = load_vectors(f"wycheproof/{name}")
    if data is None:
        return []
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


_ED25519 = _cases("ed25519_test.json")
_AES_GCM = _cases("aes_gcm_test.json")


@pytest.mark.parametrize(("group", "case"), _ED25519, ids=[f"tc{t['tcId']}" for _, t in _ED25519])
def test_ed25519(group: dict[str, Any], case: dict[str, Any]) -> None:
    public = bytes.fromhex(group["publicKey"]["pk"])
    signature, message = bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])
    assert case["result"] in ("valid", "invalid")
    if case["result"] == "valid":
        verify_signature(public, signature, message)
    else:
        with pytest.raises(IntegrityError):
            verify_signature(public, signature, message)


def _supported(group: dict[str, Any]) -> bool:
    return group["ivSize"] == 96 and group["tagSize"] == 128


@pytest.mark.parametrize(("group", "case"), _AES_GCM, ids=[f"tc{t['tcId']}" for _, t in _AES_GCM])
def test_aes_gcm(group: dict[str, Any], case: dict[str, Any]) -> None:
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
    aad, msg = bytes.fromhex(case["aad"]), bytes.fromhex(case["msg"])
    sealed = bytes.fromhex(case["ct"]) + bytes.fromhex(case["tag"])
    assert case["result"] in ("valid", "invalid")
    if not _supported(group):
        # Refused by design (see sealed._gcm_open): never accepted, never produced.
        with pytest.raises(IntegrityError, match="nonce size"):
            _gcm_open(key, iv, sealed, aad)
        with pytest.raises(ValueError):
            _gcm_seal(key, iv, msg, aad)
    elif case["result"] == "valid":
        assert _gcm_open(key, iv, sealed, aad) == msg
        assert _gcm_seal(key, iv, msg, aad) == sealed
    else:
        with pytest.raises(IntegrityError):
            _gcm_open(key, iv, sealed, aad)


def test_vector_accounting() -> None:
    """Every case is run; the split between checked and refused is what we report."""
    ed = require_vectors("wycheproof/ed25519_test.json")
    gcm = require_vectors("wycheproof/aes_gcm_test.json")
    assert len(_ED25519) == ed["numberOfTests"] == 151
    assert len(_AES_GCM) == gcm["numberOfTests"] == 316
    tally = Counter(("checked" if _supported(g) else "refused", t["result"]) for g, t in _AES_GCM)
    assert tally == {
        ("checked", "valid"): 116,
        ("checked", "invalid"): 81,
        ("refused", "valid"): 113,  # nonces of 0-80, 120-2056 bits: legal GCM, not ours
        ("refused", "invalid"): 6,  # zero-length nonces
    }
