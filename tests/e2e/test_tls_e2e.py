"""A real coordinator process serving HTTPS with its self-signed certificate (on 127.0.0.1 with
--tls), a CLI client and an agent process that pin its fingerprint, and both refusing a wrong
one before sending their ticket."""

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
from typer.testing import CliRunner

from fogmesh.cli.fogdemo import free_port
from fogmesh.cli.fogdemo import poll_until as wait_until
from fogmesh.cli.token import app as token_app
from fogmesh.client import FogClient, connect
from fogmesh.errors import TLSError
from fogmesh.security.keyfile import read_private_file
from fogmesh.security.tls import parse_fingerprint
from fogmesh.security.tokens import JoinToken

pytestmark = pytest.mark.slow

_CLI_DIR = Path(__file__).resolve().parents[2] / "src" / "fogmesh" / "cli"
_RUN = (
    "import importlib.util as u, sys, typer; "
    "s = u.spec_from_file_location('_fogmesh_cmd', sys.argv[1]); m = u.module_from_spec(s); "
    "s.loader.exec_module(m); f = getattr(m, sys.argv[2]); sys.argv[1:3] = []; typer.run(f)"
)


class Procs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in ("FOGMESH_PROFILE", "FOGMESH_FINGERPRINT", "FOGMESH_COORDINATOR"):
            env.pop(var, None)
        command = [sys.executable, "-c", _RUN, str(_CLI_DIR / f"{args[0]}.py"), *args]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)


@pytest.fixture
def procs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Procs]:
    for var in ("FOGMESH_FINGERPRINT", "FOGMESH_COORDINATOR", "FOGMESH_TICKET"):
        monkeypatch.delenv(var, raising=False)
    running = Procs(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def _agent_args(data_dir: Path, token: str) -> list[str]:
    return [
        "agent",
        "--join", token,
        "--data-dir", str(data_dir),
        "--profile", "desktop",
        "--heartbeat", "0.5",
        "--workers", "1",
        "--backoff-max", "1",
        "--log-level", "info",
    ]  # fmt: skip


def test_agent_and_client_pin_a_self_signed_coordinator(procs: Procs, tmp_path: Path) -> None:
    port = free_port()
    coord = tmp_path / "coord"
    procs.spawn(
        "coordinator",
        [
            "coordinator",
            "--data-dir", str(coord),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--tls",
            "--heartbeat-interval", "1",
            "--scheduling-interval", "0.2",
            "--log-level", "warning",
        ],
    )  # fmt: skip

    def runtime() -> dict[str, Any] | None:
        if procs.procs["coordinator"].poll() is not None:
            raise AssertionError(f"coordinator exited: {procs.log('coordinator')}")
        try:
            info: dict[str, Any] = json.loads(read_private_file(coord / "coordinator.json"))
        except FileNotFoundError:
            return None
        return info

    info = wait_until(runtime, 60, "the coordinator to write coordinator.json")
    url, fingerprint = info["url"], info["fingerprint"]
    assert url == f"https://127.0.0.1:{port}" and info["self_signed"] is True
    assert fingerprint in procs.log("coordinator")  # printed for the operator
    admin = (coord / "admin.ticket").read_text().strip()

    # HTTPS only: a plain-HTTP request gets no answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    # The CLI on this machine finds the URL, ticket and pin in the data directory ...
    with connect(data_dir=coord) as client:
        assert client.status()["agents_connected"] == 0
    # ... a remote client passes the fingerprint; a wrong one fails clearly.
    with FogClient(url, admin, fingerprint=fingerprint) as client:
        client.devices()
    mispinned = FogClient(url, admin, fingerprint="sha256:" + "0" * 64)
    with mispinned, pytest.raises(TLSError, match=r"fingerprint mismatch.*nothing was sent"):
        mispinned.devices()

    result = CliRunner().invoke(
        token_app, ["create", "--data-dir", str(coord), "--url", url, "--ttl", "10m"]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    join = JoinToken.parse(token)
    assert token.startswith("fmj2.") and join.tls_fingerprint == parse_fingerprint(fingerprint)

    # An agent whose token pins another certificate stops with a clear error and does not send
    # its enrolment ticket: the same one-shot ticket enrols the real agent afterwards.
    wrong = JoinToken(join.coordinator_url, join.coordinator_key, join.ticket, bytes(32))
    impostor = procs.spawn("impostor", _agent_args(tmp_path / "impostor", wrong.encode()))
    wait_until(lambda: impostor.poll() is not None, 60, "the mis-pinned agent to stop")
    assert impostor.returncode != 0
    assert "fingerprint mismatch" in procs.log("impostor")

    procs.spawn("agent", _agent_args(tmp_path / "agent", token))

    def connected() -> list[dict[str, Any]] | None:
        if procs.procs["agent"].poll() is not None:
            raise AssertionError(f"agent exited: {procs.log('agent')}")
        with connect(data_dir=coord) as client:
            devices = client.devices()
        return [d for d in devices if d.get("connected")] or None

    devices = wait_until(connected, 60, "the agent to enrol over wss://")
    assert len(devices) == 1
    state = json.loads(read_private_file(tmp_path / "agent" / "agent" / "agent.json"))
    assert state["tls_fingerprint"] == parse_fingerprint(fingerprint).hex()

    with connect(data_dir=coord) as client:
        task_id = client.submit(
            "preprocessing",
            cpu_cores=0.5,
            memory_mb=128,
            estimated_duration=5,
            payload={"type": "python", "function": "fogmesh.agent.workloads:echo", "args": {}},
        )["task_id"]
        done = client.wait(task_id, timeout=60)
    assert done["state"] == "completed", done
