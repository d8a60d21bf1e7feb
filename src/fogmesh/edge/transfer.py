"""Chunked, verified model transfer: a sender that yields chunks, a receiver that installs them.

Messages are plain msgspec Structs (``TransferOffer``, then ``ModelChunk``s) so the agent link can
carry the same values later; in embedded mode they are handed over in process.

Chunk size (``chunk_size_for``): the policy's ``ChunkingConfig`` gives 64–2048 B, a unit sized
for the low-power mesh (BitChat over Bluetooth LE). Over the mesh that is the chunk size. Over
the internet link (and the in-process link that stands in for it) the per-message cost is a
Noise frame and a round of the event loop, so chunks are ``INTERNET_CHUNK_MULTIPLIER`` (16) ×
the policy's unit: 1 KiB for the most pressured device up to 32 KiB for a cool desktop on mains.
The pressure ordering is kept (a hot phone still gets smaller chunks), and 32 KiB plus the
chunk's envelope stays under Noise's 65,535-byte message limit.

The receiver writes each chunk at its offset in a temporary file, accepts chunks in any order,
and rejects (``InvalidRequest``) chunks of another transfer, duplicate indices, indices or
offsets out of range and chunks of the wrong length. When every chunk is in, ``finish`` hashes
the whole file and compares it with the offer's SHA-256: a mismatch is ``IntegrityError`` and the
temporary file is deleted — nothing is installed. Only a verified file is renamed into the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import msgspec

from fogmesh.edge.cache import ModelCache
from fogmesh.edge.models import MAX_MODEL_BYTES, ModelInfo, ModelRegistry, check_model_id
from fogmesh.edge.variants import Variant
from fogmesh.errors import IntegrityError, InvalidRequest
from fogmesh.mobile.policy import ResourceOptimization
from fogmesh.mobile.transport import TransportPreference

__all__ = [
    "INTERNET_CHUNK_MULTIPLIER",
    "MAX_CHUNK_BYTES",
    "Link",
    "ModelChunk",
    "ModelReceiver",
    "ModelSender",
    "TransferOffer",
    "chunk_size_for",
    "link_for",
]

INTERNET_CHUNK_MULTIPLIER = 16
MAX_CHUNK_BYTES = 2048 * INTERNET_CHUNK_MULTIPLIER
_SHA256_HEX = 64


class Link(StrEnum):
    MESH = "mesh"  # BitChat-style low-power mesh
    INTERNET = "internet"  # the agent link (or the in-process link standing in for it)


def link_for(optimization: ResourceOptimization) -> Link:
    """The link a model goes over: the mesh only when the device's policy allows nothing else."""
    if optimization.transport_preference is TransportPreference.BITCHAT_ONLY:
        return Link.MESH
    return Link.INTERNET


def chunk_size_for(optimization: ResourceOptimization, link: Link | None = None) -> int:
    unit = optimization.chunking_config.effective_chunk_size()
    chosen = link if link is not None else link_for(optimization)
    size = unit if chosen is Link.MESH else unit * INTERNET_CHUNK_MULTIPLIER
    return min(size, MAX_CHUNK_BYTES)


class TransferOffer(msgspec.Struct, frozen=True, kw_only=True, tag="model_offer"):
    transfer_id: str
    model_id: str
    variant: Variant
    sha256: str  # of the whole file
    total_bytes: int
    chunk_size: int
    total_chunks: int


class ModelChunk(msgspec.Struct, frozen=True, kw_only=True, tag="model_chunk"):
    transfer_id: str
    index: int
    offset: int
    data: bytes
    total: int  # chunks in the transfer
    sha256: str  # of the whole file (repeated so a chunk is self-describing)


class ModelSender:
    """Reads a registered model's blob and yields it as chunks of ``chunk_size`` bytes."""

    def __init__(self, registry: ModelRegistry, info: ModelInfo, chunk_size: int) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_BYTES:
            raise InvalidRequest(f"chunk size must be 1–{MAX_CHUNK_BYTES} bytes, not {chunk_size}")
        self._registry = registry
        self.info = info
        total = max(1, math.ceil(info.size_bytes / chunk_size))
        self.offer = TransferOffer(
            transfer_id=f"xfer-{secrets.token_hex(8)}",
            model_id=info.model_id,
            variant=info.variant,
            sha256=info.sha256,
            total_bytes=info.size_bytes,
            chunk_size=chunk_size,
            total_chunks=total,
        )

    def chunks(self) -> Iterator[ModelChunk]:
        # The hash in the offer is the registry's, not one computed now: if the blob was altered
        # since it was registered, the receiver's check fails and nothing is installed.
        offer = self.offer
        for index, data in enumerate(self._registry.iter_blob(self.info, offer.chunk_size)):
            yield ModelChunk(
                transfer_id=offer.transfer_id,
                index=index,
                offset=index * offer.chunk_size,
                data=data,
                total=offer.total_chunks,
                sha256=offer.sha256,
            )


class ModelReceiver:
    """The device side of one transfer, into ``cache``."""

    def __init__(
        self, offer: TransferOffer, cache: ModelCache, *, max_bytes: int = MAX_MODEL_BYTES
    ) -> None:
        check_model_id(offer.model_id)
        if not 1 <= offer.chunk_size <= MAX_CHUNK_BYTES:
            raise InvalidRequest(f"offered chunk size {offer.chunk_size} is out of range")
        if not 0 <= offer.total_bytes <= max_bytes:
            raise InvalidRequest(f"offered model of {offer.total_bytes} bytes exceeds {max_bytes}")
        if offer.total_chunks != max(1, math.ceil(offer.total_bytes / offer.chunk_size)):
            raise InvalidRequest("offered chunk count does not match size and chunk size")
        if len(offer.sha256) != _SHA256_HEX or any(
            c not in "0123456789abcdef" for c in offer.sha256
        ):
            raise InvalidRequest("offered sha256 is not 64 lowercase hex digits")
        self.offer = offer
        self._cache = cache
        self._part: Path | None = cache.new_incoming()
        # One descriptor for the whole transfer: opening the file per chunk halved throughput
        # at the mesh's small chunk sizes.
        self._fd: int | None = os.open(self._part, os.O_WRONLY)
        self._seen: set[int] = set()
        self.bytes_received = 0

    @property
    def complete(self) -> bool:
        return len(self._seen) == self.offer.total_chunks

    def _expected_length(self, index: int) -> int:
        offer = self.offer
        if index < offer.total_chunks - 1:
            return offer.chunk_size
        return offer.total_bytes - index * offer.chunk_size

    def accept(self, chunk: ModelChunk) -> bool:
        """Write one chunk; returns whether the transfer is now complete."""
        offer = self.offer
        if self._part is None or self._fd is None:
            raise InvalidRequest(f"transfer {offer.transfer_id} is closed")
        if chunk.transfer_id != offer.transfer_id:
            raise InvalidRequest(f"chunk of transfer {chunk.transfer_id!r}, not this one")
        if chunk.total != offer.total_chunks or chunk.sha256 != offer.sha256:
            raise InvalidRequest(f"chunk {chunk.index} disagrees with the offer")
        if not 0 <= chunk.index < offer.total_chunks:
            raise InvalidRequest(
                f"chunk index {chunk.index} is out of range 0–{offer.total_chunks - 1}"
            )
        if chunk.offset != chunk.index * offer.chunk_size:
            raise InvalidRequest(f"chunk {chunk.index} has offset {chunk.offset}")
        if len(chunk.data) != self._expected_length(chunk.index):
            raise InvalidRequest(
                f"chunk {chunk.index} is {len(chunk.data)} bytes, "
                f"expected {self._expected_length(chunk.index)}"
            )
        if chunk.index in self._seen:
            raise InvalidRequest(f"chunk {chunk.index} was already received")
        os.pwrite(self._fd, chunk.data, chunk.offset)
        self._seen.add(chunk.index)
        self.bytes_received += len(chunk.data)
        return self.complete

    def missing(self) -> list[int]:
        return [i for i in range(self.offer.total_chunks) if i not in self._seen]

    def finish(self, now: float) -> Path:
        """Verify the whole file and install it; returns its path in the cache."""
        offer = self.offer
        part = self._part
        if part is None:
            raise InvalidRequest(f"transfer {offer.transfer_id} is closed")
        if not self.complete:
            raise InvalidRequest(
                f"transfer {offer.transfer_id} is incomplete: {len(self.missing())} chunks missing"
            )
        digest = hashlib.sha256()
        with part.open("rb") as f:
            while block := f.read(1024 * 1024):
                digest.update(block)
            size = f.tell()
        if size != offer.total_bytes or digest.hexdigest() != offer.sha256:
            self.abort()
            raise IntegrityError(
                f"{offer.model_id}/{offer.variant.value}: received bytes do not match the "
                "offered SHA-256; nothing installed",
                model_id=offer.model_id,
            )
        self._close_fd(sync=True)
        self._part = None
        return self._cache.install(
            part, model_id=offer.model_id, variant=offer.variant, sha256=offer.sha256, now=now
        )

    def _close_fd(self, *, sync: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        """Drop the partial file (idempotent)."""
        self._close_fd(sync=False)
        if self._part is not None:
            with contextlib.suppress(FileNotFoundError):
                self._part.unlink()
            self._part = None
