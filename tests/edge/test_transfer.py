"""Chunked transfer: chunk sizes from the policy and link, a strict receiver, verified install."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from edge_models import ModelFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogmesh.devices import preset
from fogmesh.edge.cache import ModelCache
from fogmesh.edge.models import ModelInfo, ModelRegistry
from fogmesh.edge.transfer import (
    INTERNET_CHUNK_MULTIPLIER,
    Link,
    ModelChunk,
    ModelReceiver,
    ModelSender,
    TransferOffer,
    chunk_size_for,
    link_for,
)
from fogmesh.errors import IntegrityError, InvalidRequest
from fogmesh.mobile import ResourcePolicy, evaluate


@pytest.fixture
def registry(home: Path) -> Iterator[ModelRegistry]:
    reg = ModelRegistry(home)
    yield reg
    reg.close()


@pytest.fixture
def cache(tmp_path: Path) -> ModelCache:
    return ModelCache(tmp_path / "device-cache")


@pytest.fixture
def info(registry: ModelRegistry, make_model: ModelFactory) -> ModelInfo:
    # 32 × 32 float32 weights ≈ 4.3 KB: several chunks at 512 B
    return registry.add(make_model(features=32, outputs=32), "m")


def incoming(cache: ModelCache) -> list[Path]:
    return list(cache.incoming.iterdir())


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("desktop", 2048),  # cool desktop on mains: the policy's ceiling
        ("phone-charging", 512),  # phones are capped at 512
        ("phone-critical-battery", 64),  # the floor
    ],
)
def test_chunk_size_is_the_policy_unit_on_the_mesh_and_a_multiple_over_the_internet(
    name: str, unit: int
) -> None:
    opt = evaluate(preset(name), ResourcePolicy())
    assert opt.chunking_config.effective_chunk_size() == unit
    assert chunk_size_for(opt, Link.MESH) == unit
    assert chunk_size_for(opt, Link.INTERNET) == unit * INTERNET_CHUNK_MULTIPLIER


def test_the_link_is_the_mesh_only_when_the_policy_allows_nothing_else() -> None:
    assert link_for(evaluate(preset("desktop"), ResourcePolicy())) is Link.INTERNET


def test_chunks_cover_the_file_and_travel_as_msgpack(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    sender = ModelSender(registry, info, 512)
    chunks = list(sender.chunks())
    assert len(chunks) == sender.offer.total_chunks == -(-info.size_bytes // 512)
    assert all(len(c.data) == 512 for c in chunks[:-1])
    assert b"".join(c.data for c in chunks) == registry.blob_path(info).read_bytes()
    assert [c.offset for c in chunks] == [i * 512 for i in range(len(chunks))]
    # plain values: they survive the wire format the agent link uses
    wire = msgspec.msgpack.encode(chunks[1])
    assert msgspec.msgpack.decode(wire, type=ModelChunk) == chunks[1]
    offer = msgspec.msgpack.decode(msgspec.msgpack.encode(sender.offer), type=TransferOffer)
    assert offer == sender.offer


def test_chunks_in_any_order_are_installed_after_the_hash_matches(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    sender = ModelSender(registry, info, 512)
    chunks = list(sender.chunks())
    random.Random(7).shuffle(chunks)
    receiver = ModelReceiver(sender.offer, cache)
    done = [receiver.accept(c) for c in chunks]
    assert done == [False] * (len(chunks) - 1) + [True]
    path = receiver.finish(now=1.0)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
    assert cache.resolve("m") == path
    assert incoming(cache) == []


def test_a_tampered_chunk_installs_nothing(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    sender = ModelSender(registry, info, 512)
    receiver = ModelReceiver(sender.offer, cache)
    for chunk in sender.chunks():
        if chunk.index == 2:
            flipped = bytes([chunk.data[0] ^ 0xFF]) + chunk.data[1:]
            chunk = msgspec.structs.replace(chunk, data=flipped)
        receiver.accept(chunk)
    with pytest.raises(IntegrityError, match="nothing installed"):
        receiver.finish(now=1.0)
    assert cache.resolve("m") is None
    assert cache.list() == []
    assert incoming(cache) == []
    assert list(cache.blobs.iterdir()) == []


def test_the_receiver_rejects_bad_chunks(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    sender = ModelSender(registry, info, 512)
    chunks = list(sender.chunks())
    receiver = ModelReceiver(sender.offer, cache)
    receiver.accept(chunks[0])
    replace = msgspec.structs.replace
    bad = {
        "already received": chunks[0],
        "out of range": replace(chunks[1], index=len(chunks), offset=len(chunks) * 512),
        "offset": replace(chunks[1], offset=3),
        "bytes, expected": replace(chunks[1], data=chunks[1].data + b"x"),
        "not this one": replace(chunks[1], transfer_id="xfer-other"),
        "disagrees": replace(chunks[1], sha256="0" * 64),
    }
    for message, chunk in bad.items():
        with pytest.raises(InvalidRequest, match=message):
            receiver.accept(chunk)
    with pytest.raises(InvalidRequest, match="incomplete"):
        receiver.finish(now=1.0)
    assert receiver.missing() == list(range(1, len(chunks)))
    receiver.abort()
    assert incoming(cache) == []


def test_a_dishonest_offer_is_refused(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    offer = ModelSender(registry, info, 512).offer
    replace = msgspec.structs.replace
    for message, bad in {
        "exceeds": replace(offer, total_bytes=10**12, total_chunks=-(-(10**12) // 512)),
        "chunk count": replace(offer, total_chunks=1),
        "chunk size": replace(offer, chunk_size=10**6),
        "sha256": replace(offer, sha256="xyz"),
        "model id": replace(offer, model_id="../../etc"),
    }.items():
        with pytest.raises(InvalidRequest, match=message):
            ModelReceiver(bad, cache)


def test_the_cache_notices_a_file_altered_after_install(
    registry: ModelRegistry, info: ModelInfo, cache: ModelCache
) -> None:
    sender = ModelSender(registry, info, 2048)
    receiver = ModelReceiver(sender.offer, cache)
    for chunk in sender.chunks():
        receiver.accept(chunk)
    path = receiver.finish(now=1.0)
    assert cache.resolve("m") == path
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    assert cache.resolve("m") is None
    with pytest.raises(IntegrityError):
        cache.verify("m")
    assert cache.resolve("absent") is None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk_size=st.integers(min_value=64, max_value=4096), seed=st.integers(0, 2**32 - 1))
def test_any_chunk_size_and_order_reassembles_the_same_bytes(
    registry: ModelRegistry, info: ModelInfo, tmp_path: Path, chunk_size: int, seed: int
) -> None:
    cache = ModelCache(tmp_path / f"cache-{chunk_size}-{seed}")
    sender = ModelSender(registry, info, chunk_size)
    chunks = list(sender.chunks())
    random.Random(seed).shuffle(chunks)
    receiver = ModelReceiver(sender.offer, cache)
    for chunk in chunks:
        receiver.accept(chunk)
    path = receiver.finish(now=1.0)
    assert path.read_bytes() == registry.blob_path(info).read_bytes()
