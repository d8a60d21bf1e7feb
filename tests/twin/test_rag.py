"""Mini-RAG: BM25 scores equal SQLite FTS5's bm25() (run in memory here, never on disk)."""

from __future__ import annotations

import random
import sqlite3

import pytest

from fogmesh.twin import Chunk, KnowledgeBase
from fogmesh.twin.rag import tokenize

WORDS = [
    "coffee",
    "tea",
    "train",
    "ticket",
    "gym",
    "class",
    "dinner",
    "noodle",
    "bar",
    "friday",
    "saturday",
    "milk",
    "bread",
    "park",
    "plumber",
    "thursday",
    "morning",
    "slides",
    "project",
    "sync",
    "birthday",
    "drinks",
    "weekend",
    "café",
    "naïve",
]


def _corpus(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(n)]


def test_tokenizer_matches_unicode61() -> None:
    assert tokenize("Café-au-lait, NAÏVE_user 42x!") == [
        "cafe",
        "au",
        "lait",
        "naive",
        "user",
        "42x",
    ]


@pytest.mark.parametrize("query", ["coffee", "gym class", "noodle bar friday", "cafe naive", "x"])
def test_scores_and_order_match_fts5(query: str) -> None:
    texts = _corpus(400)
    kb = KnowledgeBase(Chunk(t) for t in texts)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
    db.executemany("INSERT INTO docs (rowid, body) VALUES (?, ?)", enumerate(texts))
    fts_query = " OR ".join(tokenize(query))
    expected = db.execute(
        "SELECT rowid, -bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs)",
        (fts_query,),
    ).fetchall()
    hits = kb.search(query, k=len(texts))
    assert [h.score for h in hits] == pytest.approx([score for _, score in expected], rel=1e-9)
    by_text = sorted((round(h.score, 9), h.chunk.text) for h in hits)
    assert by_text == sorted((round(score, 9), texts[rowid]) for rowid, score in expected)
    if expected:
        top = kb.search(query, k=3)
        assert [h.score for h in top] == pytest.approx([s for _, s in expected[:3]], rel=1e-9)


def test_empty_base_and_unknown_terms() -> None:
    assert KnowledgeBase().search("coffee") == []
    kb = KnowledgeBase([Chunk("coffee at the corner cafe")])
    assert kb.search("zebra") == []
    assert kb.search("coffee")[0].chunk.text == "coffee at the corner cafe"
