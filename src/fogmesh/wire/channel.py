"""A message channel over an established Noise transport and any ordered byte-frame carrier.

Both ends use it: the coordinator over Starlette's WebSocket, the agent over ``websockets``. The
carrier is two coroutines (send one frame, receive one frame), so tests can run it over queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from fogmesh.security.noise import NoiseTransport
from fogmesh.wire.framing import FrameAssembler, split_frames
from fogmesh.wire.messages import Message, decode, encode

__all__ = ["PROLOGUE", "SecureChannel"]

# Mixed into both Noise transcripts: a session of another protocol (or version of this one)
# cannot complete a handshake with us.
PROLOGUE: Final = b"fogmesh-agent-link/1"

SendFrame = Callable[[bytes], Awaitable[None]]
RecvFrame = Callable[[], Awaitable[bytes]]


class SecureChannel:
    """Encrypts, frames and sends messages; receives and decrypts them, one at a time each way."""

    __slots__ = ("_assembler", "_recv", "_send", "_send_lock", "transport")

    def __init__(self, transport: NoiseTransport, send: SendFrame, recv: RecvFrame) -> None:
        self.transport = transport
        self._send = send
        self._recv = recv
        self._assembler = FrameAssembler()
        # Frames of one message must go out back to back and the Noise send counter must advance
        # in the order frames hit the carrier, so sending is serialised.
        self._send_lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        frames = split_frames(encode(message))
        async with self._send_lock:
            for plaintext in frames:
                await self._send(self.transport.encrypt(plaintext))

    async def recv(self) -> Message:
        while True:
            whole = self._assembler.feed(self.transport.decrypt(await self._recv()))
            if whole is not None:
                return decode(whole)
