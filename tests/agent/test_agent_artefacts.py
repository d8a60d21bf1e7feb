"""A result over the inline limit goes up as artefact chunks before its result message; a
damaged upload fails the attempt (to be retried), never completes it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from daemon_helpers import FakeRunner, eventually, join_token, running_coordinator

from fogmesh.agent import daemon as daemon_module
from fogmesh.agent.daemon import AgentConfig, AgentDaemon
from fogmesh.agent.runner import RunLimits, RunOutcome
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.fog.tasks import Task, TaskState

PAYLOAD = {"type": "python", "function": "fogmesh.agent.workloads:blob"}
BIG = json.dumps({"data": "x" * (3 << 20)}).encode()


class BigRunner(FakeRunner):
    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome:
        if on_start is not None:
            on_start()
        return RunOutcome(status="completed", artefact=BIG, wall_s=0.01)


async def _run(tmp_path: Path) -> tuple[TaskState, object, bytes | None]:
    async with running_coordinator(tmp_path / "coord") as service:
        daemon = AgentDaemon(
            AgentConfig(data_dir=tmp_path / "a", join_token=join_token(service), heartbeat=0.3),
            BigRunner(),
            sensors=EmulatedSensors(preset("desktop")),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await service.coordinator.submit_task(
                "inference", cpu_cores=0.5, estimated_duration=5, payload=PAYLOAD, max_attempts=1
            )
            done = await service.coordinator.wait_for(task_id, timeout=20)
            stored: bytes | None = None
            if done.state is TaskState.COMPLETED:
                assert service.artefacts is not None
                stored = service.artefacts.path(task_id).read_bytes()
            return done.state, done.result if done.result is not None else done.error, stored
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await running


async def test_a_big_result_arrives_as_an_artefact(tmp_path: Path) -> None:
    state, result, stored = await _run(tmp_path)
    assert state is TaskState.COMPLETED
    assert stored == BIG
    assert isinstance(result, dict)
    assert result["artefact"]["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert result["artefact"]["bytes"] == len(BIG)


async def test_a_damaged_upload_fails_the_attempt(tmp_path: Path, monkeypatch: object) -> None:
    original = daemon_module.ArtefactChunk

    def damaged(**fields: object) -> object:
        data = fields["data"]
        assert isinstance(data, bytes)
        if fields["offset"] == 0:
            fields["data"] = b"y" + data[1:]  # one flipped byte in the first chunk
        return original(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(daemon_module, "ArtefactChunk", damaged)  # type: ignore[attr-defined]
    state, error, stored = await _run(tmp_path)
    assert state is TaskState.FAILED and stored is None
    assert "does not match its SHA-256" in json.dumps(error)  # retried until attempts ran out
