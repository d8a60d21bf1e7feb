"""Versioned agent-protocol messages (msgspec Structs, msgpack on the wire).

Every encoded message starts with one byte, the protocol version, followed by a msgpack map whose
``t`` field names the message (a msgspec tagged union). A peer refuses a version it does not
speak with a clear ``ProtocolError`` instead of misreading fields. Adding an optional field with a
default is compatible; renaming, removing or retyping one needs a new version.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fogmesh.errors import InvalidRequest
from fogmesh.fog.tasks import Task

__all__ = [
    "PROTOCOL_VERSION",
    "AgentMessage",
    "Assign",
    "Cancel",
    "CoordinatorMessage",
    "Enrolled",
    "ErrorMsg",
    "Goodbye",
    "Heartbeat",
    "HeartbeatAck",
    "Message",
    "ProtocolError",
    "Refused",
    "Register",
    "ResultAck",
    "ResultMsg",
    "RunningRef",
    "Started",
    "Welcome",
    "decode",
    "encode",
]

PROTOCOL_VERSION: Final = 1


class ProtocolError(InvalidRequest):
    """A message that is not valid in this protocol version."""

    code = "protocol_error"


class _Msg(msgspec.Struct, kw_only=True, tag_field="t", omit_defaults=True):
    pass


class RunningRef(msgspec.Struct, frozen=True, array_like=True):
    """A task lease the agent holds (running, or finished with its result not yet acknowledged)."""

    task_id: str
    attempt: int


# -- agent → coordinator ---------------------------------------------------------------------
class Register(_Msg, tag="register"):
    """First message of every session: the live profile and what the agent already holds."""

    profile: dict[str, Any]
    labels: dict[str, str] = {}
    capabilities: dict[str, Any] = {}
    holding: list[RunningRef] = []
    agent_version: str = ""


class Heartbeat(_Msg, tag="heartbeat"):
    seq: int
    profile: dict[str, Any]
    running: list[RunningRef] = []


class Started(_Msg, tag="started"):
    task_id: str
    attempt: int


class ResultMsg(_Msg, tag="result"):
    """How one attempt ended. ``status`` is the runner's: completed, failed, timeout, killed,
    cancelled or refused."""

    task_id: str
    attempt: int
    status: str
    result: Any = None
    error: dict[str, Any] | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float | None = None
    limiter: str = "none"


class Refused(_Msg, tag="refused"):
    task_id: str
    attempt: int
    reason: str


class Goodbye(_Msg, tag="goodbye"):
    """The agent is stopping: mark it offline and requeue what it still holds."""

    reason: str = ""


# -- coordinator → agent ---------------------------------------------------------------------
class Enrolled(_Msg, tag="enrolled"):
    """Sent once, right after a session authenticated by a one-shot enrolment ticket."""

    device_id: str
    ticket: str
    expires_at: float


class Welcome(_Msg, tag="welcome"):
    device_id: str
    server_time: float
    heartbeat_interval: float
    ticket: str | None = None  # a renewed agent ticket, when the current one is past half-life
    ticket_expires_at: float | None = None


class HeartbeatAck(_Msg, tag="heartbeat_ack"):
    seq: int
    status: str  # the device's status as the coordinator sees it: ready, draining, ...


class Assign(_Msg, tag="assign"):
    task: Task  # the leased task; task.attempt is the fencing token results must carry


class Cancel(_Msg, tag="cancel"):
    task_id: str
    attempt: int
    reason: str = ""


class ResultAck(_Msg, tag="result_ack"):
    """Answer to ``started``/``result``/``refused``: accepted, or refused with the reason (a stale
    attempt, an already finished task); either way the agent stops re-sending it."""

    task_id: str
    attempt: int
    accepted: bool
    code: str = ""
    reason: str = ""


class ErrorMsg(_Msg, tag="error"):
    code: str
    reason: str


AgentMessage = Register | Heartbeat | Started | ResultMsg | Refused | Goodbye
CoordinatorMessage = Enrolled | Welcome | HeartbeatAck | Assign | Cancel | ResultAck | ErrorMsg
Message = AgentMessage | CoordinatorMessage

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
_VERSION_BYTE: Final = bytes([PROTOCOL_VERSION])


def encode(message: Message) -> bytes:
    return _VERSION_BYTE + _encoder.encode(message)


def decode(data: bytes) -> Message:
    """Decode one message; ``ProtocolError`` for another version or a malformed body."""
    if not data:
        raise ProtocolError("empty message")
    if data[0] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {data[0]} is not supported (this side speaks {PROTOCOL_VERSION})"
        )
    try:
        return _decoder.decode(memoryview(data)[1:])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from exc
