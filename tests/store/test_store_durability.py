"""An acknowledged submit survives ``kill -9``: a real process submits, we kill it mid-stream,
reopen the database and look for every id it acknowledged."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from fogmesh.errors import TaskNotFound

pytestmark = pytest.mark.slow

# The child submits from many coroutines at once (so acks come from group commits) and prints
# each id only after add_task returned. It never stops by itself.
CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from fogmesh.fog.tasks import Task, TaskIdFactory, TaskType
    from fogmesh.store import SqlStore

    async def main(url, schema):
        store = await SqlStore.open(url, schema=schema or None)
        ids = TaskIdFactory()
        print("ready", flush=True)

        async def submitter():
            while True:
                task = Task(id=ids.new(time.time()), type=TaskType.INFERENCE)
                await store.add_task(task)
                sys.stdout.write(task.id + "\\n")
                sys.stdout.flush()

        await asyncio.gather(*(submitter() for _ in range(32)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)
WANT_ACKS = 2000
DEADLINE_S = 120.0


def submit_then_kill(script: Path, url: str, schema: str, errors: Path) -> list[str]:
    """Run the child until it acknowledged ``WANT_ACKS`` submits, SIGKILL it, and return every
    id it acknowledged. Plain ``subprocess`` (run in a thread by the test): asyncio's child
    watcher can lose a SIGKILLed child's exit status."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), url, schema], stdout=subprocess.PIPE, stderr=err, env=env
        )
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + DEADLINE_S
        buffer = b""
        lines: list[bytes] = []
        while len(lines) < WANT_ACKS + 1:  # + the "ready" line
            remaining = deadline - time.monotonic()
            assert remaining > 0, "child did not acknowledge enough submits in time"
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            assert chunk, f"child exited early: {errors.read_text()[-2000:]}"
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines.extend(complete)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        # Lines still in the pipe were printed after their ack, so they count too; a torn last
        # line (no newline) does not.
        buffer += proc.stdout.read()
        lines.extend(buffer.split(b"\n")[:-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
    assert lines[0] == b"ready", lines[:3]
    return [line.decode() for line in lines[1:]]


async def test_acknowledged_submits_survive_kill_9(sql_backend: Any, tmp_path: Path) -> None:
    if sql_backend.kind == "sqlite":
        url, schema = f"sqlite:///{sql_backend.path}", ""
    else:
        url, schema = sql_backend.pg.url, sql_backend.pg.name
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    acked = await asyncio.to_thread(submit_then_kill, script, url, schema, tmp_path / "child.err")
    assert len(acked) >= WANT_ACKS

    store = await sql_backend.open()
    missing = []
    for task_id in acked:
        try:
            await store.get_task(task_id)
        except TaskNotFound:
            missing.append(task_id)
    assert missing == [], f"{len(missing)} of {len(acked)} acknowledged submits were lost"
    assert sum((await store.count_by_state()).values()) >= len(acked)
