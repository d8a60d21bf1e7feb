"""The model registry: validated, content-addressed ONNX artefacts with fp32/int8 variants."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_models import ModelFactory

from fogmesh.edge.models import ModelRegistry
from fogmesh.edge.variants import Variant
from fogmesh.errors import IntegrityError, InvalidRequest, ModelNotFound


@pytest.fixture
def registry(home: Path) -> Iterator[ModelRegistry]:
    reg = ModelRegistry(home)
    yield reg
    reg.close()


def blobs(reg: ModelRegistry) -> list[str]:
    return sorted(p.name for p in reg.blobs.iterdir() if not p.name.startswith("."))


def test_add_records_hash_size_opset_and_signature(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    path = make_model(features=8, outputs=4)
    info = registry.add(path, "tiny", "fp32")
    data = path.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size_bytes == len(data)
    assert (info.opset, info.ir_version) == (17, 8)
    assert [(t.name, t.dtype, t.shape) for t in info.inputs] == [("x", "float32", ("n", 8))]
    assert [(t.name, t.dtype, t.shape) for t in info.outputs] == [("y", "float32", ("n", 4))]
    # stored under its own hash, byte for byte
    assert (registry.blobs / info.sha256).read_bytes() == data
    assert registry.get("tiny") == info
    assert registry.list() == [info]


def test_make_int8_adds_a_smaller_quantised_variant(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    # 64 × 64 float32 weights = 16 KiB: quantised weights are a quarter of that
    registry.add(make_model(features=64, outputs=64), "mid", make_int8=True)
    variants = registry.variants("mid")
    assert set(variants) == {Variant.FP32, Variant.INT8}
    assert variants[Variant.INT8].size_bytes < variants[Variant.FP32].size_bytes / 2
    assert variants[Variant.INT8].source == "quantized from fp32"
    assert len(blobs(registry)) == 2


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not a protobuf \x00\xff" * 10, b"\x08\x07\x12\x04junk"],
    ids=["empty", "garbage", "truncated-protobuf"],
)
def test_a_non_onnx_file_is_refused_and_nothing_is_stored(
    registry: ModelRegistry, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(InvalidRequest, match="not a valid ONNX model"):
        registry.add(bad, "bad")
    assert registry.list() == []
    assert blobs(registry) == []


def test_a_truncated_model_is_refused(
    registry: ModelRegistry, make_model: ModelFactory, tmp_path: Path
) -> None:
    data = make_model().read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidRequest):
        registry.add(cut, "cut")
    assert registry.list() == []


def test_same_bytes_share_one_blob_and_removal_collects_it(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    path = make_model()
    a = registry.add(path, "a")
    b = registry.add(path, "b")
    assert a.sha256 == b.sha256
    assert blobs(registry) == [a.sha256]
    registry.remove("a")
    assert blobs(registry) == [a.sha256]  # still named by "b"
    registry.remove("b")
    assert blobs(registry) == []
    with pytest.raises(ModelNotFound):
        registry.get("a")


def test_re_adding_a_variant_replaces_it_and_drops_the_old_blob(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    old = registry.add(make_model(seed=1), "m")
    new = registry.add(make_model(seed=2), "m")
    assert old.sha256 != new.sha256
    assert registry.get("m") == new
    assert blobs(registry) == [new.sha256]


def test_a_blob_whose_bytes_changed_is_detected(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    info = registry.add(make_model(), "m")
    registry.verify(info)
    blob = registry.blob_path(info)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="no longer matches"):
        registry.open_verified(info)
    blob.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        registry.verify(info)


def test_unknown_ids_variants_and_bad_input(
    registry: ModelRegistry, make_model: ModelFactory, tmp_path: Path
) -> None:
    with pytest.raises(ModelNotFound):
        registry.get("nope")
    registry.add(make_model(), "m")
    with pytest.raises(ModelNotFound, match="no int8 variant"):
        registry.get("m", "int8")
    with pytest.raises(InvalidRequest, match="unknown variant"):
        registry.add(make_model(), "m", "fp16")
    with pytest.raises(InvalidRequest, match="model id"):
        registry.add(make_model(), "../escape")
    with pytest.raises(InvalidRequest, match="no such model file"):
        registry.add(tmp_path / "absent.onnx", "m")
    with pytest.raises(InvalidRequest, match="make_int8"):
        registry.add(make_model(), "m", "int8", make_int8=True)


def test_the_registry_survives_a_reopen(home: Path, make_model: ModelFactory) -> None:
    first = ModelRegistry(home)
    info = first.add(make_model(), "kept")
    first.close()
    again = ModelRegistry(home)
    try:
        assert again.get("kept") == info
        again.verify(info)
    finally:
        again.close()
