"""A python task that raises reports its traceback (what `fogmesh task ID` shows)."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.asyncio
async def test_a_failed_task_reports_the_tail_of_what_it_printed(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "for i in range(2000):\n    print('progress', i)\nraise ValueError('gave up at the end')\n"
    )
    quiet = tmp_path / "quiet.py"
    quiet.write_text("raise KeyError('nothing printed')\n")

    def run_path(path: Path, task_id: str) -> Task:
        payload = PythonPayload(function="runpy:run_path", args={"path_name": str(path)})
        return Task(id=task_id, type=TaskType.VALIDATION, payload=payload)

    async with TaskRunner(RunnerConfig(workers=1, allowed_modules=("runpy",))) as runner:
        loud = await runner.run(run_path(script, "out1"), LIMITS)
        silent = await runner.run(run_path(quiet, "out2"), LIMITS)
    assert loud.status == "failed" and loud.error is not None
    printed = loud.error["stdout"]
    assert printed.startswith("…") and printed.rstrip().endswith("progress 1999")
    assert len(printed) <= 4001
    assert 'job.py", line 3' in loud.error["traceback"]
    # The next task in the same kept process starts with an empty stdout.
    assert silent.status == "failed" and silent.error is not None
    assert "stdout" not in silent.error
