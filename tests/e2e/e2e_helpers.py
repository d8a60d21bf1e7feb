"""Real coordinator and agent processes on 127.0.0.1, always stopped by the fixture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fogmesh.cli.fogdemo import free_port
from fogmesh.cli.fogdemo import poll_until as wait_until

# The command module is loaded by path and run with typer: importing the fogmesh.cli package would
# also import every other command group's dependencies (seconds per process on a busy machine).
_CLI_DIR = Path(__file__).resolve().parents[2] / "src" / "fogmesh" / "cli"
_RUN = (
    "import importlib.util as u, sys, typer; "
    "s = u.spec_from_file_location('_fogmesh_cmd', sys.argv[1]); m = u.module_from_spec(s); "
    "s.loader.exec_module(m); f = getattr(m, sys.argv[2]); sys.argv[1:3] = []; typer.run(f)"
)


@dataclass
class Fog:
    root: Path
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def coord_dir(self) -> Path:
        return self.root / "coord"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("FOGMESH_PROFILE", None)
        command = [sys.executable, "-c", _RUN, str(_CLI_DIR / f"{args[0]}.py"), *args]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[name] = proc
        return proc

    def start_coordinator(self, *extra: str, heartbeat_interval: float = 1.0) -> None:
        self._spawn(
            "coordinator",
            [
                "coordinator",
                "--data-dir", str(self.coord_dir),
                "--port", str(self.port),
                "--heartbeat-interval", str(heartbeat_interval),
                "--scheduling-interval", "0.2",
                "--dispatch-timeout", "5",
                "--log-level", "warning",
                *extra,
            ],
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

    @property
    def admin(self) -> dict[str, str]:
        ticket = (self.coord_dir / "admin.ticket").read_text().strip()
        return {"Authorization": f"Bearer {ticket}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=self.admin, timeout=10, **kwargs)

    def token(self) -> str:
        r = self.api("POST", "/v1/tokens", json={"ttl": 600})
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def start_agent(
        self,
        name: str,
        *,
        profile: str = "desktop",
        join: bool = True,
        token: str | None = None,
        extra: list[str] = (),
        site: str | None = None,
        backoff_max: float = 1.0,
    ) -> None:
        args = [
            "agent",
            "--data-dir", str(self.root / name),
            "--profile", profile,
            "--heartbeat", "0.5",
            "--workers", "1",
            "--backoff-max", str(backoff_max),
            "--log-level", "warning",
        ]  # fmt: skip
        if site is not None:
            args += ["--label", f"site={site}"]
        if join:
            args += ["--join", token or self.token()]
        self._spawn(name, [*args, *extra])

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str, within: float = 20) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"{name} did not stop within {within} s of SIGTERM") from None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)
        self.procs.clear()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def devices(self) -> list[dict[str, Any]]:
        devices: list[dict[str, Any]] = self.api("GET", "/v1/devices").json()["devices"]
        return devices

    def submit(self, function: str, args: dict[str, Any], **extra: Any) -> str:
        body = {
            "type": "preprocessing",
            "cpu_cores": 0.5,
            "memory_mb": 128,
            "estimated_duration": 5,
            "payload": {"type": "python", "function": function, "args": args},
            **extra,
        }
        r = self.api("POST", "/v1/tasks", json=body)
        assert r.status_code == 201, r.text
        task_id: str = r.json()["task_id"]
        return task_id

    def task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.api("GET", f"/v1/tasks/{task_id}").json()
        return task
