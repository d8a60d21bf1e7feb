"""``EdgeManager`` as a client of a running coordinator (``coordinator_url`` / FOGMESH_COORDINATOR).

A real coordinator serves on 127.0.0.1: uvicorn on a thread for the in-process tests, the
``fogmesh coordinator`` command in a subprocess for the README example.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from fogmesh.edge import DeploymentNotFound, EdgeManager
from fogmesh.errors import (
    ConfigError,
    DeviceNotFound,
    IllegalTransition,
    InvalidRequest,
    ModelNotFound,
    TicketError,
    TicketScopeError,
    TransportError,
)
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.server import CoordinatorService, ServerConfig, create_app

README = Path(__file__).resolve().parents[2] / "README.md"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Live:
    url: str
    admin: str
    data_dir: Path
    service: CoordinatorService

    def ticket(self, *scopes: str) -> str:
        return self.service.issuer.issue(
            subject="tester", audience=self.service.keys.audience, scopes=scopes, ttl=600
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("edge-coordinator")
    config = ServerConfig(
        data_dir=data_dir,
        db_url="memory",
        port=0,
        coordinator=CoordinatorConfig(scheduling_interval=0.5),
    )
    service = CoordinatorService(config)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            await service.start()
            server = _Server(
                uvicorn.Config(
                    create_app(config, service=service),
                    host="127.0.0.1",
                    port=0,
                    log_level="warning",
                    lifespan="off",
                )
            )
            box["server"] = server
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():  # noqa: ASYNC110 - a flag only
                await asyncio.sleep(0.01)
            box["port"] = server.servers[0].sockets[0].getsockname()[1]
            ready.set()
            await serving
        finally:
            ready.set()
            await service.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="edge-live", daemon=True)
    thread.start()
    assert ready.wait(30) and "port" in box, "coordinator did not start"
    try:
        yield Live(f"http://127.0.0.1:{box['port']}", service.admin_ticket, data_dir, service)
    finally:
        box["server"].should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "coordinator thread did not stop"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_the_readme_calls_in_client_mode(live: Live, home: Path) -> None:
    manager = EdgeManager(coordinator_url=live.url, ticket=live.admin, monitor=False)
    async with manager:
        assert manager.is_client
        device = await manager.register_device(
            device_id="my_device", device_name="Mobile Device", auto_detect=True
        )
        assert device.device_id == "my_device"
        assert device.device_name == "Mobile Device"
        assert device.capabilities.cpu_cores_logical  # this machine, read here
        assert device.status == "online"
        deployment_id = await manager.deploy_workload(
            device_id=device.device_id, model_id="tutor_agent_v1", deployment_type="inference"
        )
        assert isinstance(deployment_id, str) and deployment_id.startswith("dep-")
        status = manager.get_device_status(device.device_id)
        assert status["device_id"] == "my_device" and status["status"] == "online"
        assert status["deployments"][0]["deployment_id"] == deployment_id
        assert status["deployments"][0]["state"] == "ready"
        assert manager.get_deployment(deployment_id)["state"] == "ready"
        system = manager.get_system_status()
        assert system["devices"]["total"] >= 1 and system["models"] >= 1
        # The model reached the device's cache on the coordinator's side, not here.
        assert live.service.edge.model_cache("my_device").resolve("tutor_agent_v1") is not None
        removed = await manager.undeploy(deployment_id)
        assert removed["state"] == "removed"
        with pytest.raises(IllegalTransition):
            await manager.undeploy(deployment_id)
    assert not (home / "edge").exists()  # client mode keeps nothing locally


async def test_embedded_only_parts_say_so_in_client_mode(live: Live) -> None:
    async with EdgeManager(coordinator_url=live.url, ticket=live.admin, monitor=False) as m:
        for get in (lambda: m.registry, lambda: m.deployments, lambda: m.coordinator):
            with pytest.raises(InvalidRequest, match="lives on the coordinator"):
                get()
        with pytest.raises(InvalidRequest, match="lives on the coordinator"):
            m.model_cache("my_device")
    with pytest.raises(InvalidRequest, match="not both"):
        EdgeManager(FogCoordinator(run_loop=False), coordinator_url=live.url, ticket="t")


async def test_the_environment_selects_client_mode(
    live: Live, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOGMESH_COORDINATOR", live.url)
    monkeypatch.setenv("FOGMESH_TICKET", live.admin)
    async with EdgeManager(monitor=False) as manager:
        assert manager.is_client and manager.coordinator_url == live.url
        assert "devices" in manager.get_system_status()
    # Without FOGMESH_TICKET the ticket is the data directory's admin.ticket (as for FogClient).
    monkeypatch.delenv("FOGMESH_TICKET")
    async with EdgeManager(data_dir=live.data_dir, monitor=False) as manager:
        assert manager.is_client
        assert "devices" in manager.get_system_status()
    with pytest.raises(TicketError, match="no ticket"):
        EdgeManager(monitor=False)  # FOGMESH_HOME has no admin.ticket
    # An explicit coordinator is embedded whatever the environment says.
    fog = FogCoordinator(data_dir=home, run_loop=False)
    async with EdgeManager(fog, data_dir=home, monitor=False) as manager:
        assert not manager.is_client
    await fog.close()
    monkeypatch.delenv("FOGMESH_COORDINATOR")
    async with EdgeManager(monitor=False) as manager:
        assert not manager.is_client
        assert manager.registry.root.is_relative_to(home)


async def test_errors_come_back_as_their_own_types(live: Live) -> None:
    async with EdgeManager(coordinator_url=live.url, ticket=live.admin, monitor=False) as m:
        await m.register_device("errs", "E", auto_detect=True, profile="desktop")
        with pytest.raises(DeviceNotFound, match="ghost"):
            m.get_device_status("ghost")
        with pytest.raises(DeploymentNotFound, match="dep-ghost"):
            m.get_deployment("dep-ghost")
        with pytest.raises(DeploymentNotFound):
            await m.undeploy("dep-ghost")
        with pytest.raises(ModelNotFound, match="nope"):
            await m.deploy_workload("errs", "nope")
        with pytest.raises(DeviceNotFound):
            await m.deploy_workload("ghost", "tutor_agent_v1")
        with pytest.raises(InvalidRequest, match="deployment_type"):
            await m.deploy_workload("errs", "tutor_agent_v1", "juggling")
        with pytest.raises(InvalidRequest, match="device id"):
            await m.register_device("bad id!", "x", auto_detect=True, profile="desktop")
        with pytest.raises(InvalidRequest, match="cannot be empty"):
            m.get_device_status("")
        assert m.get_device_status("errs")["deployments"] == []

    reader = EdgeManager(coordinator_url=live.url, ticket=live.ticket("read"), monitor=False)
    async with reader:
        assert reader.get_device_status("errs")["device_id"] == "errs"
        with pytest.raises(TicketScopeError):
            await reader.register_device("other", "x", auto_detect=True, profile="desktop")
    async with EdgeManager(coordinator_url=live.url, ticket="forged", monitor=False) as forged:
        with pytest.raises(TicketError):
            forged.get_system_status()
    nowhere = f"http://127.0.0.1:{_free_port()}"
    async with EdgeManager(coordinator_url=nowhere, ticket="t", monitor=False) as m:
        with pytest.raises(TransportError, match="no coordinator at"):
            await m.register_device("x", "x", auto_detect=True, profile="desktop")
        with pytest.raises(TransportError, match="no coordinator at"):
            m.get_system_status()
    for bad in ("ftp://example.org", "not a url", "http://"):
        with pytest.raises(ConfigError):
            EdgeManager(coordinator_url=bad, ticket="t")
    with pytest.raises(DeviceNotFound):
        live.service.edge.get_device_status("other")  # nothing changed


async def test_readings_reach_the_coordinator(live: Live) -> None:
    async with EdgeManager(coordinator_url=live.url, ticket=live.admin, monitor=False) as m:
        device = await m.register_device(
            "phone-1", "Phone", auto_detect=True, profile="phone-charging"
        )
        assert "preset phone-charging" in device.classification
        assert device.source is not None  # read here; the monitoring loop sends the readings
        before = m.get_device_status("phone-1")["last_seen"]
        await asyncio.sleep(0.01)
        assert isinstance(await m.monitor_once(), list)
        assert m.get_device_status("phone-1")["last_seen"] > before

        hot = device.profile.replace(cpu_temp_c=70.0, charging=False)
        events = await m.update_device_state("phone-1", hot)
        assert any("phone-1" in e for e in events), events
        status = m.get_device_status("phone-1")
        assert status["cpu_temp_c"] == 70.0
        assert status["charging"] is False
        with pytest.raises(DeviceNotFound):
            await m.update_device_state("ghost", hot)


def test_the_readme_basic_usage_runs_as_written_against_a_coordinator(tmp_path: Path) -> None:
    """The README's block, unchanged, with FOGMESH_COORDINATOR and FOGMESH_TICKET set; the
    coordinator is the real `fogmesh coordinator` command in its own process."""
    block = re.search(r"### Basic Usage\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    script = tmp_path / "basic_usage.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import ast, asyncio
            code = {block[1]!r}
            compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, {{"__name__": "readme"}})
            if asyncio.iscoroutine(result):
                asyncio.run(result)
            """
        )
    )
    fog_dir, client_home = tmp_path / "fog", tmp_path / "client"
    cli = Path(sys.executable).parent / "fogmesh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOGMESH_")}
    log = (tmp_path / "coordinator.log").open("wb")
    coordinator = subprocess.Popen(
        [str(cli), "coordinator", "--data-dir", str(fog_dir), "--port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        runtime = fog_dir / "coordinator.json"
        deadline = time.monotonic() + 30
        while not runtime.exists():
            assert coordinator.poll() is None, (tmp_path / "coordinator.log").read_text()
            assert time.monotonic() < deadline, "coordinator did not start"
            time.sleep(0.05)
        url = json.loads(runtime.read_text())["url"]
        ticket = (fog_dir / "admin.ticket").read_text().strip()
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PATH": "/usr/bin:/bin",
                "FOGMESH_HOME": str(client_home),
                "FOGMESH_COORDINATOR": url,
                "FOGMESH_TICKET": ticket,
            },
        )
    finally:
        coordinator.terminate()
        try:
            coordinator.wait(20)
        except subprocess.TimeoutExpired:
            coordinator.kill()
            coordinator.wait(10)
        log.close()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout.strip()
    assert out.startswith("Device status: {'device_id': 'my_device'"), out
    assert "'state': 'ready'" in out
    assert "'device_name': 'Mobile Device'" in out
    assert not client_home.exists() or not any(client_home.rglob("*.db"))
    assert coordinator.returncode == 0, (tmp_path / "coordinator.log").read_text()[-2000:]
