"""Mini-RAG: the twin's personal knowledge base, searched with BM25 as SQLite FTS5 scores it.

The index lives only in memory. It is rebuilt from the vault's sealed records when the twin is
unlocked (the concierge does it lazily on the first question), so no plaintext term list or
posting ever reaches the disk — an FTS5 table on disk would store every word in the clear.

Semantics follow FTS5's defaults: the ``unicode61`` tokenizer (case folded, diacritics removed,
letters and digits are token characters, everything else separates), ``bm25()`` with k1 = 1.2,
b = 0.75 and IDF ``log((N − n + 0.5) / (n + 0.5))`` floored at 1e-6. Query terms are OR-ed
(FTS5's ``a OR b``); higher scores are better (FTS5 returns the negation).

**Hybrid search** (optional): given an ``Embedder`` (``embeddings.py``) and one unit vector per
chunk, a query is answered by reciprocal rank fusion (Cormack, Clarke & Büttcher 2009) of two
ranked lists — BM25's top ``candidates`` and the top ``candidates`` by cosine similarity over
*all* chunks (exact, a matrix–vector product) — each chunk scoring ``Σ 1/(60 + rank)``. RRF needs
no score calibration between BM25 and cosine, and a chunk that shares no word with the query
(``automobile`` for ``car``) can still be found through the dense list. The vectors are kept in
memory like the postings; on disk they exist only sealed (``vault.py``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fogmesh.errors import TwinError
from fogmesh.twin.embeddings import Embedder

__all__ = ["RRF_K", "Chunk", "Hit", "KnowledgeBase", "rrf", "tokenize"]

_K1: Final = 1.2
_B: Final = 0.75
RRF_K: Final = 60  # the constant of Cormack et al.; damps the weight of the very first ranks
CANDIDATES: Final = 50
_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    if text.isascii():  # nothing to fold: skip the per-character pass (5x faster index builds)
        return _TOKEN.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return _TOKEN.findall(stripped)


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    source: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True, slots=True)
class Hit:
    """A result. ``score`` is BM25, or the fused RRF score in hybrid search, where ``bm25`` and
    ``cosine`` say what each side saw (``None``: not among that side's candidates)."""

    chunk: Chunk
    score: float
    bm25: float | None = None
    cosine: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.chunk.text,
            "source": self.chunk.source,
            "timestamp": self.chunk.timestamp,
            "score": round(self.score, 6),
        }
        if self.bm25 is not None or self.cosine is not None:
            out["bm25"] = None if self.bm25 is None else round(self.bm25, 6)
            out["cosine"] = None if self.cosine is None else round(self.cosine, 6)
        return out


def rrf(*rankings: Sequence[int], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: ``(item, Σ 1/(k + rank))`` best first, rank counted from 1.
    Ties keep the order in which items were first seen (the first ranking's first)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


class KnowledgeBase:
    """An in-memory inverted index; build once, query many times. With an ``embedder``, also
    one vector per chunk (``vectors``, or computed here) and hybrid search."""

    def __init__(
        self,
        chunks: Iterable[Chunk] = (),
        *,
        embedder: Embedder | None = None,
        vectors: npt.NDArray[np.float32] | None = None,
    ) -> None:
        self.chunks: list[Chunk] = []
        self._postings: dict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]] = {}
        self.embedder = embedder
        self.vectors: npt.NDArray[np.float32] | None = None
        self.build(chunks)
        if embedder is not None:
            if vectors is None:
                vectors = embedder.embed([c.text for c in self.chunks])
            self.set_vectors(vectors)

    def set_vectors(self, vectors: npt.NDArray[np.float32]) -> None:
        if self.embedder is None:
            raise TwinError("vectors without an embedder cannot be searched")
        array = np.asarray(vectors, dtype=np.float32)
        if array.shape != (len(self.chunks), self.embedder.dim):
            raise TwinError(
                f"expected {len(self.chunks)} vectors of {self.embedder.dim} dimensions "
                f"({self.embedder.name}), got shape {array.shape}"
            )
        self.vectors = np.ascontiguousarray(array)

    @property
    def hybrid(self) -> bool:
        return self.embedder is not None and self.vectors is not None

    def build(self, chunks: Iterable[Chunk]) -> None:
        self.chunks = list(chunks)
        n = len(self.chunks)
        vocab: dict[str, int] = {}
        ids: list[int] = []
        lengths = np.zeros(n, dtype=np.int64)
        for doc, chunk in enumerate(self.chunks):
            tokens = tokenize(chunk.text)
            lengths[doc] = len(tokens)
            ids.extend([vocab.setdefault(t, len(vocab)) for t in tokens])
        avgdl = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        norm = _K1 * (1 - _B + _B * lengths / avgdl)
        # Postings by sorting (term, doc) keys: numpy does the grouping that a per-token dict
        # update would do in Python, about 5x faster on 100k chunks.
        docs_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys, tf = np.unique(
            np.array(ids, dtype=np.int64) * max(n, 1) + docs_of, return_counts=True
        )
        terms = keys // max(n, 1)
        docs = (keys % max(n, 1)).astype(np.int32)
        freq = tf.astype(np.float64)
        # A posting's BM25 factor depends only on its tf and its document's length, so it is
        # computed once here; a query then only scales by IDF and adds.
        weight = freq * (_K1 + 1) / (freq + norm[docs])
        bounds = np.searchsorted(terms, np.arange(len(vocab) + 1))
        self._postings = {
            term: (docs[bounds[i] : bounds[i + 1]], weight[bounds[i] : bounds[i + 1]])
            for term, i in vocab.items()
        }

    def __len__(self) -> int:
        return len(self.chunks)

    def search(self, query: str, k: int = 5, *, candidates: int = CANDIDATES) -> list[Hit]:
        """The ``k`` best chunks: BM25, or hybrid (RRF of BM25 and cosine) with vectors."""
        if k <= 0:
            return []
        if not self.hybrid:
            order, scores = self._bm25(query, k)
            return [Hit(self.chunks[i], float(scores[i])) for i in order]
        assert self.embedder is not None and self.vectors is not None
        depth = max(k, candidates)
        lexical, scores = self._bm25(query, depth)
        qv = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        dense: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        cosine: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        if len(self.chunks) and float(np.abs(qv).sum()) > 0:
            cosine = self.vectors @ qv
            top = np.flatnonzero(cosine > 0)  # an opposite vector is no evidence of relevance
            if len(top) > depth:
                # The depth best; ties at the cut go to the earlier chunk, so the ranking is
                # deterministic (argpartition alone would pick among equal cosines arbitrarily).
                kth = np.partition(-cosine[top], depth - 1)[depth - 1]
                better = top[-cosine[top] < kth]
                ties = top[-cosine[top] == kth][: depth - len(better)]
                top = np.concatenate([better, ties])
            dense = top[np.lexsort((top, -cosine[top]))]
        lexical_set = set(lexical.tolist())
        dense_set = set(dense.tolist())
        hits = []
        for doc, fused in rrf(lexical.tolist(), dense.tolist())[:k]:
            hits.append(
                Hit(
                    self.chunks[doc],
                    fused,
                    bm25=float(scores[doc]) if doc in lexical_set else None,
                    cosine=float(cosine[doc]) if doc in dense_set else None,
                )
            )
        return hits

    def _bm25(self, query: str, k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(the ``k`` best documents by BM25, best first; the score array)."""
        n = len(self.chunks)
        terms = dict.fromkeys(tokenize(query))
        found = [self._postings[t] for t in terms if t in self._postings]
        if not n or not found:
            return np.zeros(0, dtype=np.int64), np.zeros(n)
        scores = np.zeros(n)
        for docs, weight in found:
            idf = math.log((n - len(docs) + 0.5) / (len(docs) + 0.5))
            idf = idf if idf > 0 else 1e-6
            scores[docs] += idf * weight
        if sum(len(docs) for docs, _ in found) > n // 8:
            # Every matching document scores > 0 (IDF is floored above zero), so with long
            # posting lists one pass over the score array beats merging the lists.
            candidates = np.flatnonzero(scores)
        else:
            candidates = np.unique(np.concatenate([docs for docs, _ in found]))
        if len(candidates) > k:
            part = np.argpartition(-scores[candidates], k - 1)[:k]
            candidates = candidates[part]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return order.astype(np.int64), scores

    def texts(self) -> Sequence[str]:
        return [c.text for c in self.chunks]
