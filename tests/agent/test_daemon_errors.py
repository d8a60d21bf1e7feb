"""An error inside the agent while it accepts or prepares a task is reported to the coordinator
as the lease's failure with its reason, and logged — never a lease left to hang until the
dispatch timeout. And a payload the agent does not take is refused at once, with its code, and
not offered to it again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from daemon_helpers import FakeRunner, eventually, join_token, running_coordinator

from fogmesh.agent.daemon import AgentConfig, AgentDaemon
from fogmesh.agent.runner import RunLimits, RunOutcome
from fogmesh.devices.emulated import EmulatedSensors, preset
from fogmesh.devices.model import Accepts
from fogmesh.errors import InvalidRequest
from fogmesh.fog.tasks import AttemptRecord, Task, TaskState
from fogmesh.server import CoordinatorService


@contextlib.asynccontextmanager
async def agent(data_dir: Path, token: str, runner: FakeRunner) -> AsyncIterator[AgentDaemon]:
    daemon = AgentDaemon(
        AgentConfig(data_dir=data_dir, join_token=token, heartbeat=0.3, backoff_initial=0.05),
        runner,
        sensors=EmulatedSensors(preset("desktop")),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    try:
        yield daemon
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await running


def _history(service: CoordinatorService, task_id: str) -> list[AttemptRecord]:
    status = service.coordinator.explain(task_id)
    return [msgspec.convert(h, AttemptRecord) for h in status["history"]]


async def test_an_error_while_preparing_a_task_is_reported_not_hung(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        service = await stack.enter_async_context(running_coordinator(tmp_path / "coord"))
        daemon = await stack.enter_async_context(
            agent(tmp_path / "a", join_token(service), FakeRunner())
        )
        await eventually(lambda: daemon.device_id in service.hub.sessions)

        def broken_cache(model_id: str) -> Path | None:
            # What a bad id from an older coordinator did: the cache refuses the name.
            raise InvalidRequest(f"model id {model_id!r} is not a safe file name")

        daemon.resolve_model = broken_cache  # type: ignore[method-assign]
        caplog.set_level(logging.INFO, logger="fogmesh.agent.daemon")
        task_id = await service.coordinator.submit_task(
            "inference",
            cpu_cores=0.5,
            estimated_duration=2,
            payload={"type": "model", "model_id": "tiny"},
        )
        # Reported within the test's wait, far inside the 5 s dispatch timeout's retries.
        done = await service.coordinator.wait_for(task_id, timeout=10)
        assert done.state is TaskState.FAILED
        assert done.error is not None and done.error["code"] == "agent_error"
        assert "is not a safe file name" in done.error["reason"]
        assert [h.outcome for h in done.history] == ["failed"]  # no lease timed out
        assert not daemon._running  # nothing left behind as "running"
    logged = [r for r in caplog.records if r.name == "fogmesh.agent.daemon"]
    assert any(task_id in r.getMessage() and r.exc_info for r in logged), logged


class RefusingRunner(FakeRunner):
    """An agent that says nothing of what it accepts (an older one, or one whose config changed
    since it registered) and whose runner refuses the module, as TaskRunner does."""

    async def run(self, task: Task, limits: RunLimits, **_: Any) -> RunOutcome:
        self.runs.append((task.id, task.attempt, limits))
        return RunOutcome(
            status="refused",
            error={"code": "not_allowed", "reason": "module 'mylab.train' is not allow-listed"},
        )


LAB_TASK: dict[str, Any] = {
    "cpu_cores": 0.5,
    "estimated_duration": 2,
    "payload": {"type": "python", "function": "mylab.train:step"},
    "max_attempts": 1,
}


async def test_a_device_that_advertises_no_such_module_is_not_offered_the_task(
    tmp_path: Path,
) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        strict = FakeRunner()
        strict.accepted = Accepts(python_modules=("fogmesh.agent.workloads",))
        async with agent(tmp_path / "strict", join_token(service), strict) as daemon:
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            await eventually(lambda: any(n.accepts for n in service.coordinator.nodes()))
            task_id = await service.coordinator.submit_task("inference", **LAB_TASK)
            await eventually(lambda: service.coordinator.explain(task_id)["decision"] is not None)
            why = service.coordinator.explain(task_id)
            assert why["state"] == "pending" and "allow-list" in why["text"], why["text"]
            lenient = FakeRunner()
            async with agent(tmp_path / "lenient", join_token(service), lenient) as other:
                done = await service.coordinator.wait_for(task_id, timeout=10)
                assert done.assigned_device == other.device_id
        assert done.state is TaskState.COMPLETED
        assert [h.outcome for h in done.history] == ["completed"]
        assert strict.runs == []


async def test_a_refusal_moves_the_task_on_uncharged_and_not_back(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        old = RefusingRunner()
        async with agent(tmp_path / "old", join_token(service), old) as daemon:
            await eventually(lambda: daemon.device_id in service.hub.sessions)
            task_id = await service.coordinator.submit_task("inference", **LAB_TASK)
            await eventually(lambda: len(_history(service, task_id)) == 1 and bool(old.runs))
            await eventually(lambda: _history(service, task_id)[0].outcome is not None)
            refused = _history(service, task_id)
            # max_attempts=1 and still pending: the refusal used up nothing.
            assert [(h.device_id, h.outcome) for h in refused] == [
                (daemon.device_id, "not_accepted")
            ]
            assert service.coordinator.get_task_status(task_id)["state"] == "pending"
            lenient = FakeRunner()
            async with agent(tmp_path / "lenient", join_token(service), lenient) as other:
                done = await service.coordinator.wait_for(task_id, timeout=10)
                assert done.assigned_device == other.device_id
            assert done.state is TaskState.COMPLETED
            assert [(h.device_id, h.outcome) for h in done.history] == [
                (daemon.device_id, "not_accepted"),
                (other.device_id, "completed"),
            ]
            assert len(old.runs) == 1  # offered once, never again: no refusal loop


class PreAcceptsRunner(FakeRunner):
    """An embedder's runner written before ``accepts()`` existed."""

    accepts = None  # type: ignore[assignment]


async def test_a_runner_without_accepts_still_serves_and_advertises_nothing(
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        service = await stack.enter_async_context(running_coordinator(tmp_path / "coord"))
        daemon = await stack.enter_async_context(
            agent(tmp_path / "a", join_token(service), PreAcceptsRunner())
        )
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        task_id = await service.coordinator.submit_task(
            "inference",
            cpu_cores=0.5,
            estimated_duration=2,
            payload={"type": "python", "function": "mylab.train:step"},
        )
        done = await service.coordinator.wait_for(task_id, timeout=10)
        assert done.state is TaskState.COMPLETED
        assert [n.accepts for n in service.coordinator.nodes()] == [None]
