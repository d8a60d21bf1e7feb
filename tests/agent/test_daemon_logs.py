"""A refusal is said at info level by the agent and by the coordinator, with its reason."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from daemon_helpers import eventually, join_token, running_coordinator
from test_daemon import PAYLOAD, agent

from fogmesh.devices.emulated import EmulatedSensors, preset


async def test_refusals_are_logged_with_their_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fogmesh")
    sensors = EmulatedSensors(preset("phone-charging"))
    async with (
        running_coordinator(tmp_path / "coord") as service,
        agent(tmp_path / "a", join_token(service), sensors=sensors) as (daemon, _),
    ):
        await eventually(lambda: daemon.device_id in service.hub.sessions)
        # Unplugged at 5 %: the coordinator has not heard yet, the device knows now.
        sensors.update(charging=False, battery_percent=5.0)
        task_id = await service.coordinator.submit_task(
            "inference", cpu_cores=1, estimated_duration=5, payload=PAYLOAD
        )

        def lines(logger: str) -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == logger and task_id in r.getMessage()
            ]

        await eventually(lambda: any("refused" in m for m in lines("fogmesh.agent.daemon")))
        await eventually(lambda: any("refused" in m for m in lines("fogmesh.fog.coordinator")))
    agent_line = next(m for m in lines("fogmesh.agent.daemon") if "refused" in m)
    assert "battery" in agent_line, agent_line
    coordinator_line = next(m for m in lines("fogmesh.fog.coordinator") if "refused" in m)
    assert "battery" in coordinator_line and daemon.device_id in coordinator_line
    record = next(r for r in caplog.records if r.getMessage() == agent_line)
    assert record.levelno == logging.INFO and record.__dict__["task_id"] == task_id
