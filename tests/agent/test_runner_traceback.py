"""A python task that raises reports its traceback (what `fogmesh task ID` shows)."""

from __future__ import annotations

import pytest

from fogmesh.agent import RunLimits, RunnerConfig, TaskRunner
from fogmesh.fog.tasks import PythonPayload, Task, TaskType

LIMITS = RunLimits(cpu_cores=1.0, memory_mb=None, timeout_s=10.0)


@pytest.mark.asyncio
async def test_task_error_carries_the_tasks_own_traceback() -> None:
    task = Task(
        id="tb1",
        type=TaskType.VALIDATION,
        payload=PythonPayload(function="json:loads", args={"s": "{broken"}),
    )
    async with TaskRunner(RunnerConfig(workers=1, allowed_modules=("json",))) as runner:
        out = await runner.run(task, LIMITS)
    assert out.status == "failed" and out.error is not None
    assert out.error["code"] == "task_error"
    assert out.error["reason"].startswith("JSONDecodeError: ")
    assert "Traceback" not in out.error["reason"]
    trace = out.error["traceback"]
    assert trace.startswith("Traceback (most recent call last)")
    assert "json/__init__.py" in trace and trace.rstrip().endswith(out.error["reason"])
    assert "_taskproc.py" not in trace  # the agent's own frames are not the user's business
