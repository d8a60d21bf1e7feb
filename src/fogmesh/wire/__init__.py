"""The agent ↔ coordinator protocol: versioned msgspec messages, msgpack-encoded, in Noise frames.

See docs/protocol.md for every message and field.
"""

from __future__ import annotations

from fogmesh.wire.framing import MAX_MESSAGE, FrameAssembler, split_frames
from fogmesh.wire.messages import (
    PROTOCOL_VERSION,
    AgentMessage,
    Assign,
    Bundle,
    Cancel,
    CoordinatorMessage,
    Enrolled,
    ErrorMsg,
    Goodbye,
    Heartbeat,
    HeartbeatAck,
    Message,
    Refused,
    Register,
    ResultAck,
    ResultMsg,
    RunningRef,
    Started,
    Welcome,
    decode,
    encode,
)

__all__ = [
    "MAX_MESSAGE",
    "PROTOCOL_VERSION",
    "AgentMessage",
    "Assign",
    "Bundle",
    "Cancel",
    "CoordinatorMessage",
    "Enrolled",
    "ErrorMsg",
    "FrameAssembler",
    "Goodbye",
    "Heartbeat",
    "HeartbeatAck",
    "Message",
    "Refused",
    "Register",
    "ResultAck",
    "ResultMsg",
    "RunningRef",
    "Started",
    "Welcome",
    "decode",
    "encode",
    "split_frames",
]
