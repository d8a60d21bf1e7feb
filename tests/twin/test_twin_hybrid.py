"""Hybrid mini-RAG: reciprocal rank fusion of BM25 and cosine, with a deterministic embedder;
vectors stored sealed and deleted with their records. Runs everywhere (no extra needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from twin_helpers import START, disk_bytes

from fogmesh.clock import ManualClock
from fogmesh.errors import ConfigError, TwinError
from fogmesh.twin import (
    Chunk,
    DataSource,
    DigitalTwinConcierge,
    Embedder,
    KnowledgeBase,
    Record,
    UserPreferences,
)
from fogmesh.twin import embeddings as embeddings_module
from fogmesh.twin.rag import RRF_K, rrf, tokenize

# Words of one concept share a dimension, so "automobile" is near "car" with no word in common.
_CONCEPTS = {
    "car": 0, "automobile": 0, "vehicle": 0, "tyres": 0, "garage": 0,
    "dinner": 1, "noodle": 1, "ramen": 1, "food": 1, "lunch": 1,
    "bank": 2, "money": 2, "transfer": 2, "rent": 2,
    "gym": 3, "run": 3, "fitness": 3,
    "train": 4, "tickets": 4, "station": 4,
}  # fmt: skip


class ConceptEmbedder:
    """A deterministic test embedder: bag of concepts plus a small hashed bag of other words."""

    name = "test-concepts"
    dim = 16

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokenize(text):
                if word in _CONCEPTS:
                    out[i, _CONCEPTS[word]] += 3.0
                else:
                    out[i, 8 + sum(map(ord, word)) % 8] += 0.5
            norm = float(np.linalg.norm(out[i]))
            if norm:
                out[i] /= norm
        return out


TEXTS = [
    "the car needs new tyres before winter",
    "dinner at the noodle bar on friday",
    "rent transfer to the bank is done",
    "gym class moved to half past six",
    "did you book the train tickets",
    "the garage called about the vehicle",
    "ramen or noodle soup for lunch",
    "friday drinks at the park",
]


def test_protocol_and_rrf_arithmetic() -> None:
    assert isinstance(ConceptEmbedder(), Embedder)
    fused = rrf([1, 2, 3], [3, 1])
    assert [item for item, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert rrf() == [] and rrf([], [5]) == [(5, 1 / (RRF_K + 1))]


def test_dense_side_finds_what_shares_no_word() -> None:
    chunks = [Chunk(t) for t in TEXTS]
    plain = KnowledgeBase(chunks)
    hybrid = KnowledgeBase(chunks, embedder=ConceptEmbedder())
    assert plain.search("automobile") == []
    hits = hybrid.search("automobile", k=2)
    assert {h.chunk.text for h in hits} == {TEXTS[0], TEXTS[5]}
    assert all(h.bm25 is None and h.cosine is not None and h.cosine > 0.5 for h in hits)
    assert set(hits[0].to_dict()) >= {"text", "score", "bm25", "cosine"}


def test_hybrid_ranking_is_rrf_of_both_rankings() -> None:
    rng = np.random.default_rng(3)
    words = [w for w in _CONCEPTS] + ["alpha", "beta", "gamma", "delta", "the", "at"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) for _ in range(300)]
    embedder = ConceptEmbedder()
    chunks = [Chunk(t) for t in texts]
    plain = KnowledgeBase(chunks)
    hybrid = KnowledgeBase(chunks, embedder=embedder)
    assert hybrid.vectors is not None
    for query in ("noodle dinner", "bank gamma", "car station alpha", "zzz automobile"):
        # BM25's ranking, independently
        bm25 = plain.search(query, k=20)
        index = {id(c): i for i, c in enumerate(chunks)}
        lexical = [index[id(h.chunk)] for h in bm25]
        # cosine's ranking, independently
        cos = hybrid.vectors @ embedder.embed([query])[0]
        positive = np.flatnonzero(cos > 0)
        dense = positive[np.argsort(-cos[positive], kind="stable")][:20].tolist()
        expected = rrf(lexical, dense)[:5]
        got = hybrid.search(query, k=5, candidates=20)
        assert [h.score for h in got] == pytest.approx([s for _, s in expected])
        expected_scores = {d: s for d, s in rrf(lexical, dense)}
        for hit in got:
            assert expected_scores[index[id(hit.chunk)]] == pytest.approx(hit.score)
    # a chunk both sides rank first beats one only BM25 likes
    top = hybrid.search("noodle", k=1)[0]
    assert top.bm25 is not None and top.cosine is not None


def test_vectors_must_match_the_chunks() -> None:
    chunks = [Chunk(t) for t in TEXTS]
    with pytest.raises(TwinError, match="expected 8 vectors of 16 dimensions"):
        KnowledgeBase(chunks, embedder=ConceptEmbedder(), vectors=np.zeros((3, 16), np.float32))
    with pytest.raises(TwinError, match="without an embedder"):
        KnowledgeBase(chunks).set_vectors(np.zeros((8, 16), np.float32))
    assert KnowledgeBase(chunks, embedder=ConceptEmbedder()).search("noodle", k=0) == []


def _chats(n: int = len(TEXTS)) -> list[Record]:
    return [
        Record(DataSource.CONVERSATIONS, START + i, {"sender": "Sam", "text": t})
        for i, t in enumerate(TEXTS[:n])
    ]


def test_concierge_stores_vectors_sealed_and_reuses_them(
    tmp_path: Path, clock: ManualClock
) -> None:
    prefs = UserPreferences(enabled_sources=set(DataSource), max_data_retention_hours=1)
    embedder = ConceptEmbedder()
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock, embedder=embedder)
    twin.ingest("conversations", _chats())
    hits = twin.ask("automobile", k=2)
    assert {h.chunk.text for h in hits} == {f"Sam: {TEXTS[0]}", f"Sam: {TEXTS[5]}"}
    assert twin.vault.vector_count() == len(TEXTS)
    assert twin.status()["search"].startswith("hybrid")
    vectors = embedder.embed([f"Sam: {t}" for t in TEXTS])
    raw = disk_bytes(tmp_path / "t" / "twin.db")
    for text, vector in zip(TEXTS, vectors, strict=True):
        assert text.encode() not in raw
        assert vector.astype("<f4").tobytes() not in raw  # vectors are sealed, not raw floats
    twin.close()
    # the next unlock embeds only the question, not the chunks again
    counting = ConceptEmbedder()
    again = DigitalTwinConcierge(tmp_path / "t", clock=clock, embedder=counting)
    assert again.ask("automobile", k=2) == hits
    assert counting.embedded == ["automobile"]
    # a new record is embedded alone
    again.ingest("conversations", [Record(DataSource.CONVERSATIONS, START, {"text": "bus"})])
    again.ask("car")
    assert counting.embedded[1:] == [": bus", "car"]
    # revoking consent deletes the vectors with the records
    again.revoke_consent("conversations")
    assert again.vault.vector_count() == 0
    again.close()


def test_vectors_expire_with_their_records_and_other_models_are_dropped(
    tmp_path: Path, clock: ManualClock
) -> None:
    prefs = UserPreferences(enabled_sources=set(DataSource), max_data_retention_hours=1)
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock, embedder=ConceptEmbedder())
    twin.ingest("conversations", _chats(4))
    twin.ask("car")
    assert twin.vault.vector_count() == 4
    twin.close()

    class Other(ConceptEmbedder):
        name = "other-model"

    other = Other()
    twin = DigitalTwinConcierge(tmp_path / "t", clock=clock, embedder=other)
    twin.ask("car")
    assert len(other.embedded) == 5 and twin.vault.vector_count() == 4  # re-embedded, replaced
    clock.advance(3601)
    assert twin.purge_expired() == 4 and twin.vault.vector_count() == 0
    twin.close()


def test_embeddings_preference_without_the_extra_is_a_clear_error(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings_module, "_default", None)
    monkeypatch.setattr(embeddings_module.importlib.util, "find_spec", lambda name: None)
    prefs = UserPreferences(enabled_sources=set(DataSource), embeddings=True)
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=clock)
    twin.ingest("conversations", _chats(2))
    with pytest.raises(ConfigError, match=r"embeddings.*extra"):
        twin.ask("car")
    twin.close()


def test_safetensors_reader_and_a_missing_model_are_clear(tmp_path: Path) -> None:
    import json as _json

    from fogmesh.errors import IntegrityError
    from fogmesh.twin.embeddings import MiniLMEmbedder, read_safetensors

    weight = np.arange(6, dtype="<f4").reshape(2, 3)
    ids = np.arange(3, dtype="<i8")
    header = {
        "bert.a.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "position_ids": {"dtype": "I64", "shape": [3], "data_offsets": [24, 48]},
        "__metadata__": {"format": "pt"},
    }
    raw = _json.dumps(header).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + weight.tobytes() + ids.tobytes())
    tensors = read_safetensors(path)
    assert list(tensors) == ["a.weight"] and np.array_equal(tensors["a.weight"], weight)
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{nope")
    with pytest.raises(IntegrityError, match="not a readable safetensors"):
        read_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(ConfigError, match="embeddings"):
        MiniLMEmbedder(tmp_path / "no-model-here")
