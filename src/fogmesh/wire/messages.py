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
    "STORE_UNAVAILABLE",
    "AgentMessage",
    "ArtefactChunk",
    "ArtefactRef",
    "Assign",
    "Bundle",
    "Cancel",
    "CoordinatorMessage",
    "Enrolled",
    "ErrorMsg",
    "Goodbye",
    "Heartbeat",
    "HeartbeatAck",
    "Message",
    "ModelData",
    "ModelFetch",
    "ModelOffer",
    "ModelUnavailable",
    "ProtocolError",
    "Refused",
    "Register",
    "ResultAck",
    "ResultMsg",
    "RunningRef",
    "Started",
    "Welcome",
    "decode",
    "decode_items",
    "encode",
    "encode_item",
]

PROTOCOL_VERSION: Final = 1
# ``result_ack.code`` of a report the coordinator could not store now (its database failed):
# not refused, the agent keeps it and sends it again after ``retry_after``.
STORE_UNAVAILABLE: Final = "store_unavailable"


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
    """First message of every session: the live profile and what the agent already holds.

    The profile (here and in every ``heartbeat``) may carry ``accepts`` — the payloads the agent
    runs (``devices.model.Accepts``: python module prefixes, commands, models) — which the
    scheduler places by. Optional: a profile without it is from an agent that did not say."""

    profile: dict[str, Any]
    labels: dict[str, str] = {}
    capabilities: dict[str, Any] = {}
    holding: list[RunningRef] = []
    agent_version: str = ""
    bundles: bool = False  # this agent reads ``bundle`` messages


class Heartbeat(_Msg, tag="heartbeat"):
    seq: int
    profile: dict[str, Any]
    running: list[RunningRef] = []


class Started(_Msg, tag="started"):
    task_id: str
    attempt: int


class ArtefactRef(msgspec.Struct, frozen=True, kw_only=True):
    """A result too big to travel inline: its JSON bytes went ahead as ``artefact_chunk``s."""

    sha256: str  # hex digest of the whole artefact
    size: int  # bytes


class ArtefactChunk(_Msg, tag="artefact_chunk"):
    """A slice of a completed task's result that is larger than the inline limit (1 MiB). The
    chunks of one attempt go in order, offsets contiguous, before its ``result``."""

    task_id: str
    attempt: int
    offset: int
    total: int  # size of the whole artefact
    data: bytes


class ResultMsg(_Msg, tag="result"):
    """How one attempt ended. ``status`` is the runner's: completed, failed, timeout, killed,
    cancelled or refused. A completed result too large to carry inline comes as ``artefact``
    (sent before as chunks) with ``result`` unset."""

    task_id: str
    attempt: int
    status: str
    result: Any = None
    artefact: ArtefactRef | None = None
    error: dict[str, Any] | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float | None = None
    limiter: str = "none"


class ModelFetch(_Msg, tag="model_fetch"):
    """The agent was given a ``model`` task for a model it does not hold: send it over."""

    model_id: str


class Refused(_Msg, tag="refused"):
    """The agent will not run this lease. ``code`` (optional; agents before it sent none) says
    which kind: one of ``fog.tasks.NOT_ACCEPTED_CODES`` when the device does not take the
    payload at all (the task is not offered to it again), else "not now" (policy, busy,
    stopping)."""

    task_id: str
    attempt: int
    reason: str
    code: str = ""


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
    bundles: bool = False  # this coordinator reads ``bundle`` messages


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
    attempt, an already finished task) and the agent stops sending it — unless ``retry_after``
    is set (code ``store_unavailable``): the coordinator could not store it now, and the agent
    keeps it and sends it again after at least that many seconds. (An older agent ignores the
    field and drops the report, as before.)"""

    task_id: str
    attempt: int
    accepted: bool
    code: str = ""
    reason: str = ""
    retry_after: float = 0.0


class ModelOffer(_Msg, tag="model_offer"):
    """A model transfer begins (``edge.transfer.TransferOffer``'s fields): the variant chosen for
    this device, chunked at the size its policy and the link allow."""

    transfer_id: str
    model_id: str
    variant: str  # fp32 | int8
    sha256: str
    total_bytes: int
    chunk_size: int
    total_chunks: int


class ModelData(_Msg, tag="model_data"):
    """One chunk of an offered model (``edge.transfer.ModelChunk``'s fields)."""

    transfer_id: str
    index: int
    offset: int
    data: bytes
    total: int
    sha256: str


class ModelUnavailable(_Msg, tag="model_unavailable"):
    model_id: str
    reason: str


class ErrorMsg(_Msg, tag="error"):
    code: str
    reason: str


AgentMessage = (
    Register | Heartbeat | Started | ArtefactChunk | ResultMsg | Refused | ModelFetch | Goodbye
)
CoordinatorMessage = (
    Enrolled
    | Welcome
    | HeartbeatAck
    | Assign
    | Cancel
    | ResultAck
    | ModelOffer
    | ModelData
    | ModelUnavailable
    | ErrorMsg
)
Message = AgentMessage | CoordinatorMessage


class Bundle(_Msg, tag="bundle"):
    """Several messages in one frame, each an encoded message without its version byte, applied
    in order. Sent only to a peer that said it reads them (``Register.bundles`` /
    ``Welcome.bundles``): under load a coordinator has many assignments and acknowledgements
    queued for one agent, and one frame costs one encryption, one WebSocket frame and one system
    call instead of one each. Bundles do not nest."""

    items: list[msgspec.Raw]


_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message | Bundle] = msgspec.msgpack.Decoder(Message | Bundle)
_item_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
_VERSION_BYTE: Final = bytes([PROTOCOL_VERSION])


def encode(message: Message | Bundle) -> bytes:
    return _VERSION_BYTE + _encoder.encode(message)


def encode_item(message: Message) -> bytes:
    """A message as it travels inside a ``Bundle`` (no version byte: the bundle carries it)."""
    return _encoder.encode(message)


def decode_items(bundle: Bundle) -> list[Message]:
    """A bundle's messages; ``ProtocolError`` if one is malformed (or is itself a bundle)."""
    try:
        return [_item_decoder.decode(item) for item in bundle.items]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"malformed message in a bundle: {exc}") from exc


def decode(data: bytes) -> Message | Bundle:
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
