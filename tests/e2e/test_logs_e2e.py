"""What a real coordinator and agent say in their logs (issue 14 §6: "agents say what they do").

Each test runs ``fogmesh coordinator`` and ``fogmesh agent`` as processes on 127.0.0.1 with their
stderr (the log) kept apart from stdout, drives a task through them and reads the logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import _CLI_DIR, _RUN, wait_until

from fogmesh.cli.fogdemo import free_port

ECHO = "fogmesh.agent.workloads:echo"


class Procs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        for key in ("FOGMESH_PROFILE", "FOGMESH_LOG_LEVEL", "FOGMESH_LOG_FORMAT"):
            if key not in env:
                full_env.pop(key, None)
        command = [sys.executable, "-c", _RUN, str(_CLI_DIR / f"{args[0]}.py"), *args]
        with (
            (self.root / f"{name}.out").open("ab") as out,
            (self.root / f"{name}.err").open("ab") as err,
        ):
            self.procs[name] = subprocess.Popen(command, stdout=out, stderr=err, env=full_env)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.err").read_text(errors="replace")

    def coordinator(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.spawn(
            "coordinator",
            [
                "coordinator", "--data-dir", str(self.root / "coord"), "--port", str(self.port),
                "--heartbeat-interval", "1", "--scheduling-interval", "0.2", *extra,
            ],
            env or {},
        )  # fmt: skip

        def up() -> bool:
            proc = self.procs["coordinator"]
            if proc.poll() is not None:
                raise AssertionError(f"coordinator exited: {self.log('coordinator')}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "the coordinator to answer /healthz")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        ticket = (self.root / "coord" / "admin.ticket").read_text().strip()
        headers = {"Authorization": f"Bearer {ticket}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def agent(self, *extra: str, env: dict[str, str] | None = None) -> None:
        token = self.api("POST", "/v1/tokens", json={"ttl": 600}).json()["token"]
        self.spawn(
            "agent",
            [
                "agent", "--data-dir", str(self.root / "agent"), "--profile", "desktop",
                "--heartbeat", "0.5", "--workers", "1", "--backoff-max", "0.5",
                "--join", token, *extra,
            ],
            env or {},
        )  # fmt: skip
        wait_until(
            lambda: any(d["connected"] for d in self.api("GET", "/v1/devices").json()["devices"]),
            30,
            "the agent to connect",
        )

    def run(self, function: str, **extra: Any) -> dict[str, Any]:
        body = {
            "type": "preprocessing",
            "cpu_cores": 0.5,
            "memory_mb": 128,
            "estimated_duration": 5,
            "payload": {"type": "python", "function": function, "args": {}},
            **extra,
        }
        reply = self.api("POST", "/v1/tasks", json=body)
        assert reply.status_code == 201, reply.text
        task_id = reply.json()["task_id"]
        final: dict[str, Any] = {}

        def ended() -> bool:
            final.update(self.api("GET", f"/v1/tasks/{task_id}").json())
            return final["state"] in ("completed", "failed", "cancelled")

        wait_until(ended, 30, f"task {task_id} to end")
        return final

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def test_info_lines_say_what_happens_to_a_task(procs: Procs) -> None:
    procs.coordinator()
    procs.agent("--name", "desk-1")
    done = procs.run(ECHO)
    assert done["state"] == "completed"
    task_id = done["id"]
    # (Refusals, with their reasons, are checked in tests/agent/test_daemon_logs.py: a refusal
    # needs a device whose policy changed after its last heartbeat.)

    def said(name: str, *parts: str) -> bool:
        return any(all(p in line for p in parts) for line in procs.log(name).splitlines())

    wait_until(lambda: said("agent", task_id, "completed in"), 10, "the agent's task line")
    coord = procs.log("coordinator")
    for expected in (
        (task_id, "submitted"),
        (task_id, "placed on"),
        (task_id, "completed on"),
        ("agent", "connected"),
    ):
        assert said("coordinator", *expected), (expected, coord[-3000:])
    # uvicorn's lines come out in our format, not uvicorn's own ("INFO:     …").
    assert " INFO uvicorn." in coord, coord[-3000:]
    assert "INFO:     " not in coord
    agent = procs.log("agent")
    for expected in (
        ("connected to", procs.url),
        (task_id, "started", "echo"),
        (task_id, "completed in"),
    ):
        assert said("agent", *expected), (expected, agent[-3000:])
    # The coordinator goes away and comes back: the agent says it reconnected.
    procs.stop("coordinator")
    procs.coordinator()
    wait_until(lambda: said("agent", "reconnected to", procs.url), 30, "a reconnected line")


def test_json_log_format_is_one_object_per_line_for_every_logger(procs: Procs) -> None:
    procs.coordinator("--log-format", "json")
    procs.agent(env={"FOGMESH_LOG_FORMAT": "json"})
    done = procs.run(ECHO)
    procs.stop("agent")
    procs.stop("coordinator")
    loggers: dict[str, set[str]] = {}
    for name in ("coordinator", "agent"):
        text = procs.log(name)
        assert text.strip(), f"{name} logged nothing"
        for line in text.splitlines():
            entry = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
            loggers.setdefault(name, set()).add(entry["logger"])
    coord = [json.loads(line) for line in procs.log("coordinator").splitlines()]
    assert any(e.get("task_id") == done["id"] and e.get("event") == "completed" for e in coord), (
        coord[-20:]
    )
    assert any(n.startswith("uvicorn") for n in loggers["coordinator"]), loggers
    # A fresh SQLite store is created by an Alembic migration: its lines go through ours too.
    assert any(n.startswith("alembic") for n in loggers["coordinator"]), loggers
    agent = [json.loads(line) for line in procs.log("agent").splitlines()]
    assert any(e.get("task_id") == done["id"] and e.get("event") == "started" for e in agent)


def test_log_level_from_the_environment_silences_info(procs: Procs) -> None:
    quiet = {"FOGMESH_LOG_LEVEL": "warning"}
    procs.coordinator(env=quiet)
    procs.agent(env=quiet)
    assert procs.run(ECHO)["state"] == "completed"
    procs.stop("agent")
    procs.stop("coordinator")
    for name in ("coordinator", "agent"):
        text = procs.log(name)
        assert " INFO " not in text, text[-3000:]
        assert "INFO:" not in text, text[-3000:]
