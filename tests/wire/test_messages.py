"""Wire messages: round trips, version refusal, framing of large messages through Noise."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from fogmesh.fog.tasks import PythonPayload, Task, TaskType
from fogmesh.security.noise import MAX_PLAINTEXT, NoiseInitiator, NoiseKeypair, NoiseResponder
from fogmesh.wire import (
    PROTOCOL_VERSION,
    Assign,
    Bundle,
    FrameAssembler,
    Goodbye,
    Heartbeat,
    Register,
    ResultMsg,
    RunningRef,
    Started,
    decode,
    encode,
    split_frames,
)
from fogmesh.wire.channel import SecureChannel
from fogmesh.wire.framing import MAX_MESSAGE
from fogmesh.wire.messages import STORE_UNAVAILABLE, ProtocolError, ResultAck

TASK = Task(id="01J", type=TaskType.TRAINING, attempt=3, payload=PythonPayload("m:f", {"a": [1]}))

MESSAGES = [
    Register(
        profile={"device_type": "laptop"}, labels={"site": "home"}, holding=[RunningRef("t", 2)]
    ),
    Heartbeat(seq=7, profile={}, running=[RunningRef("t", 2)]),
    Assign(task=TASK),
    ResultMsg(task_id="t", attempt=2, status="completed", result={"x": [1, 2.5, None]}),
    Goodbye(reason="agent stopped"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    data = encode(message)  # type: ignore[arg-type]
    assert data[0] == PROTOCOL_VERSION
    assert decode(data) == message


def test_assign_keeps_the_fencing_attempt() -> None:
    decoded = decode(encode(Assign(task=TASK)))
    assert isinstance(decoded, Assign) and decoded.task.attempt == 3


def test_a_report_the_store_could_not_take_is_not_a_refusal() -> None:
    deferred = ResultAck(
        task_id="t", attempt=2, accepted=False, code=STORE_UNAVAILABLE, reason="disk full",
        retry_after=1.0,
    )  # fmt: skip
    assert decode(encode(deferred)) == deferred
    # Compatible within version 1: an older coordinator's refusal has no retry_after (0), and an
    # older agent reading a newer ack finds every field it knew.
    refusal = msgspec.msgpack.encode(
        {"t": "result_ack", "task_id": "t", "attempt": 2, "accepted": False, "code": "stale"}
    )
    decoded = decode(bytes([PROTOCOL_VERSION]) + refusal)
    assert isinstance(decoded, ResultAck) and decoded.retry_after == 0.0


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (bytes([PROTOCOL_VERSION + 1]) + encode(MESSAGES[1])[1:], "version 2 is not supported"),
        (bytes([PROTOCOL_VERSION]) + b"\x81\xa1t\xa4nope", "malformed"),
        (bytes([PROTOCOL_VERSION]) + b"\xc1", "malformed"),
        (encode(MESSAGES[1])[:-3], "malformed"),
    ],
)
def test_bad_messages_are_protocol_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment):
        decode(data)


def test_framing_splits_and_joins() -> None:
    data = bytes(range(256)) * 2000  # 512 000 bytes: 8 frames
    frames = split_frames(data)
    assert len(frames) == 8 and all(len(f) <= MAX_PLAINTEXT for f in frames)
    assembler = FrameAssembler()
    assert [assembler.feed(f) for f in frames[:-1]] == [None] * 7
    assert assembler.feed(frames[-1]) == data
    with pytest.raises(ProtocolError):
        split_frames(b"x" * (MAX_MESSAGE + 1))
    with pytest.raises(ProtocolError, match="flag"):
        FrameAssembler().feed(b"\x07abc")


def _channels() -> tuple[SecureChannel, SecureChannel, asyncio.Queue[bytes]]:
    """An agent and a coordinator channel over queues; also the agent → coordinator queue."""
    device, coordinator = NoiseKeypair.generate(), NoiseKeypair.generate()
    initiator = NoiseInitiator(device, coordinator.public, b"t")
    responder = NoiseResponder(coordinator, b"t")
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message(b""))
    a_to_b: asyncio.Queue[bytes] = asyncio.Queue()
    b_to_a: asyncio.Queue[bytes] = asyncio.Queue()
    agent = SecureChannel(initiator.transport(), a_to_b.put, b_to_a.get)
    server = SecureChannel(responder.transport(), b_to_a.put, a_to_b.get)
    return agent, server, a_to_b


async def test_send_many_bundles_small_messages_into_one_frame_in_order() -> None:
    agent, server, wire = _channels()
    agent.bundling = True
    sent = [Started(task_id=f"t{i}", attempt=1) for i in range(50)]
    sent.append(ResultMsg(task_id="t0", attempt=1, status="completed", result={"x": 1}))
    await agent.send_many(sent)
    assert wire.qsize() == 1
    assert [await server.recv() for _ in sent] == sent
    assert wire.empty()


async def test_send_many_without_bundling_sends_one_frame_per_message() -> None:
    agent, server, wire = _channels()  # the peer never said it reads bundles
    sent = [Started(task_id=f"t{i}", attempt=1) for i in range(3)]
    await agent.send_many(sent)
    assert wire.qsize() == 3
    assert [await server.recv() for _ in sent] == sent


async def test_a_big_message_travels_alone_between_bundles() -> None:
    agent, server, wire = _channels()
    agent.bundling = True
    big = ResultMsg(task_id="b", attempt=1, status="completed", result="y" * 200_000)
    sent = [Started(task_id="a", attempt=1), Started(task_id="c", attempt=1), big]
    sent += [Started(task_id="d", attempt=1), Started(task_id="e", attempt=1)]
    await agent.send_many(sent)
    assert 1 + 4 + 1 <= wire.qsize() <= 1 + 5 + 1  # a bundle, the big one's frames, a bundle
    assert [await server.recv() for _ in sent] == sent


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([], "empty bundle"),
        (
            [msgspec.Raw(encode(Goodbye(reason="x"))[1:]), msgspec.Raw(b"\x81\xa1t\xa4nope")],
            "in a bundle",
        ),
        ([msgspec.Raw(encode(Bundle(items=[]))[1:])], "in a bundle"),  # no nesting
    ],
)
async def test_bad_bundles_are_protocol_errors(items: list[msgspec.Raw], fragment: str) -> None:
    agent, server, _ = _channels()
    await agent._send(agent.transport.encrypt(b"\x00" + encode(Bundle(items=items))))
    with pytest.raises(ProtocolError, match=fragment):
        await server.recv()


async def test_channel_carries_a_large_result_over_noise() -> None:
    agent, server, a_to_b = _channels()
    big = ResultMsg(task_id="t", attempt=1, status="completed", result="y" * 900_000)
    await agent.send(big)
    assert a_to_b.qsize() > 1  # really split across several Noise frames
    assert await server.recv() == big
    await server.send(Assign(task=TASK))
    assert await agent.recv() == Assign(task=TASK)
