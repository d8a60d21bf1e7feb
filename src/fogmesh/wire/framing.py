"""Split a message into Noise-sized frames and join them again.

A Noise transport message carries at most 65,519 bytes of plaintext, but a result may be up to
1 MiB. Each frame's plaintext is one flag byte (1 = more follow, 0 = last) and a slice of the
encoded message; frames of one message are sent back to back and the link is ordered, so no
sequence numbers are needed (Noise's implicit nonces already refuse reordering).
"""

from __future__ import annotations

from typing import Final

from fogmesh.security.noise import MAX_PLAINTEXT
from fogmesh.wire.messages import ProtocolError

__all__ = ["CHUNK", "MAX_MESSAGE", "FrameAssembler", "split_frames"]

CHUNK: Final = MAX_PLAINTEXT - 1
MAX_MESSAGE: Final = 4 << 20  # a 1 MiB result plus headroom; anything bigger is refused
_MORE: Final = b"\x01"
_LAST: Final = b"\x00"


def split_frames(data: bytes) -> list[bytes]:
    """Frame plaintexts for one encoded message."""
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    if len(data) <= CHUNK:
        return [_LAST + data]
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    return [_MORE + c for c in chunks[:-1]] + [_LAST + chunks[-1]]


class FrameAssembler:
    """Feed frame plaintexts in order; returns a whole message when its last frame arrives."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, plaintext: bytes) -> bytes | None:
        if not plaintext or plaintext[:1] not in (_MORE, _LAST):
            raise ProtocolError("frame has no valid continuation flag")
        self._size += len(plaintext) - 1
        if self._size > MAX_MESSAGE:
            raise ProtocolError(f"message exceeds {MAX_MESSAGE} bytes")
        self._parts.append(plaintext[1:])
        if plaintext[:1] == _MORE:
            return None
        whole = b"".join(self._parts)
        self._parts, self._size = [], 0
        return whole
