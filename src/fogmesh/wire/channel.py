"""A message channel over an established Noise transport and any ordered byte-frame carrier.

Both ends use it: the coordinator over Starlette's WebSocket, the agent over ``websockets``. The
carrier is two coroutines (send one frame, receive one frame), so tests can run it over queues.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import msgspec

from fogmesh.security.noise import NoiseTransport
from fogmesh.wire.framing import CHUNK, FrameAssembler, split_frames
from fogmesh.wire.messages import (
    Bundle,
    Message,
    ProtocolError,
    decode,
    decode_items,
    encode,
    encode_item,
)

__all__ = ["PROLOGUE", "SecureChannel"]

# Mixed into both Noise transcripts: a session of another protocol (or version of this one)
# cannot complete a handshake with us.
PROLOGUE: Final = b"fogmesh-agent-link/1"

# A bundle is kept to one Noise frame (the bundle's own header fits in the slack); a message too
# big for that goes on its own.
_BUNDLE_BUDGET: Final = CHUNK - 64

SendFrame = Callable[[bytes], Awaitable[None]]
RecvFrame = Callable[[], Awaitable[bytes]]


class SecureChannel:
    """Encrypts, frames and sends messages; receives and decrypts them, one at a time each way.

    ``bundling`` is set once the peer has said it reads bundles; ``send_many`` then packs what
    it is given into as few frames as fit. ``recv`` always unpacks bundles, so a caller sees
    single messages either way.
    """

    __slots__ = ("_assembler", "_ready", "_recv", "_send", "_send_lock", "bundling", "transport")

    def __init__(self, transport: NoiseTransport, send: SendFrame, recv: RecvFrame) -> None:
        self.transport = transport
        self._send = send
        self._recv = recv
        self._assembler = FrameAssembler()
        # Frames of one message must go out back to back and the Noise send counter must advance
        # in the order frames hit the carrier, so sending is serialised.
        self._send_lock = asyncio.Lock()
        self._ready: deque[Message] = deque()
        self.bundling = False

    async def send(self, message: Message) -> None:
        frames = split_frames(encode(message))
        async with self._send_lock:
            for plaintext in frames:
                await self._send(self.transport.encrypt(plaintext))

    async def send_many(self, messages: Sequence[Message]) -> None:
        """Send in order; several to a peer that reads bundles travel in one frame."""
        if not self.bundling or len(messages) < 2:
            for message in messages:
                await self.send(message)
            return
        async with self._send_lock:
            for payload in _pack(messages):
                for plaintext in split_frames(payload):
                    await self._send(self.transport.encrypt(plaintext))

    async def recv(self) -> Message:
        if self._ready:
            return self._ready.popleft()
        while True:
            whole = self._assembler.feed(self.transport.decrypt(await self._recv()))
            if whole is None:
                continue
            message = decode(whole)
            if not isinstance(message, Bundle):
                return message
            items = decode_items(message)
            if not items:
                raise ProtocolError("empty bundle")
            self._ready.extend(items[1:])
            return items[0]


def _pack(messages: Sequence[Message]) -> list[bytes]:
    """Encoded payloads for ``messages``, in order: runs of small ones as bundles, big ones
    (and runs of one) as plain messages."""
    out: list[bytes] = []
    run: list[tuple[Message, bytes]] = []
    size = 0
    for message in messages:
        item = encode_item(message)
        if run and size + len(item) > _BUNDLE_BUDGET:
            out.append(_encode_run(run))
            run, size = [], 0
        run.append((message, item))
        size += len(item)
    if run:
        out.append(_encode_run(run))
    return out


def _encode_run(run: list[tuple[Message, bytes]]) -> bytes:
    if len(run) == 1:
        return encode(run[0][0])
    return encode(Bundle(items=[msgspec.Raw(item) for _, item in run]))
