"""`fogmesh ticket create` issues narrower tickets than admin.ticket, and the REST API holds them
to their scopes; the admin ticket's lifetime is 30 days and renews; ticket files are owner-only.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from server_helpers import Api
from typer.testing import CliRunner

from fogmesh.cli.ticket import app as ticket_app
from fogmesh.clock import ManualClock
from fogmesh.errors import ConfigError, KeyFileError
from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.server import CoordinatorService, ServerConfig
from fogmesh.server.auth import read_admin_ticket

TASK = {
    "type": "preprocessing",
    "cpu_cores": 0.5,
    "memory_mb": 64,
    "estimated_duration": 2,
    "payload": {"type": "python", "function": "fogmesh.agent.workloads:echo", "args": {"x": 1}},
}


def _create(data_dir: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(
        ticket_app, ["create", "--data-dir", str(data_dir), "--json", *args]
    )
    assert result.exit_code == 0, result.output
    info: dict[str, object] = json.loads(result.stdout)
    return info


def _bearer(info: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {info['ticket']}"}


async def test_a_read_ticket_reads_and_cannot_submit(api: Api) -> None:
    read = _create(api.service.config.data_dir, "--scope", "read", "--ttl", "1h", "--name", "dash")
    assert read["scopes"] == ["read"] and read["subject"] == "dash"
    r = await api.client.post("/v1/tasks", json=TASK, headers=_bearer(read))
    assert r.status_code == 403 and r.json()["error"]["code"] == "ticket_scope"
    assert (await api.client.get("/v1/tasks", headers=_bearer(read))).status_code == 200
    assert (await api.client.get("/v1/status", headers=_bearer(read))).status_code == 200


async def test_a_submit_ticket_submits_and_cannot_create_join_tokens(api: Api) -> None:
    submit = _create(api.service.config.data_dir, "--scope", "submit")
    r = await api.client.post("/v1/tasks", json=TASK, headers=_bearer(submit))
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/tokens", json={"ttl": 60}, headers=_bearer(submit))
    assert r.status_code == 403 and r.json()["error"]["code"] == "ticket_scope"
    r = await api.client.get("/v1/devices", headers=_bearer(submit))
    assert r.status_code == 403  # submit does not imply read
    admin = _create(api.service.config.data_dir, "--scope", "admin")
    r = await api.client.post("/v1/tokens", json={"ttl": 60}, headers=_bearer(admin))
    assert r.status_code == 201


async def test_a_one_shot_ticket_is_accepted_once(api: Api) -> None:
    once = _create(api.service.config.data_dir, "--scope", "read", "--one-shot")
    assert once["one_shot"] is True
    assert (await api.client.get("/v1/status", headers=_bearer(once))).status_code == 200
    r = await api.client.get("/v1/status", headers=_bearer(once))
    assert r.status_code == 401 and r.json()["error"]["code"] == "replay"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "agent"], "unknown scope 'agent'"),  # device scopes come from enrolment
        (["--scope", "enrol"], "unknown scope 'enrol'"),
        (["--scope", "read", "--ttl", "90d"], "at most 30d"),
        (["--scope", "read", "--name", "dev-abc"], "--name"),
    ],
)
def test_bad_requests_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(ticket_app, ["create", "--data-dir", str(tmp_path), *args])
    assert isinstance(result.exception, ConfigError)
    assert message in result.exception.reason


# -- the admin ticket --------------------------------------------------------------------------
async def _service(
    data_dir: Path, clock: ManualClock, check_interval: float = 3600.0
) -> CoordinatorService:
    config = ServerConfig(
        data_dir=data_dir,
        db_url="memory",
        coordinator=CoordinatorConfig(scheduling_interval=1),
        admin_ticket_check_interval=check_interval,
    )
    service = CoordinatorService(config, clock=clock)
    await service.start()
    return service


async def test_admin_ticket_lives_30_days_and_is_renewed_at_start(tmp_path: Path) -> None:
    clock = ManualClock(1_800_000_000.0)
    service = await _service(tmp_path, clock)
    first = service.admin_ticket
    held = service.verifier.verify(first, audience=service.keys.audience, scope="admin")
    assert held.expires_at - held.issued_at == 30 * 86_400
    await service.stop()
    clock.advance(20 * 86_400)  # 10 days left: kept
    service = await _service(tmp_path, clock)
    assert service.admin_ticket == first
    await service.stop()
    clock.advance(5 * 86_400)  # 5 days left: renewed
    service = await _service(tmp_path, clock)
    assert service.admin_ticket != first
    assert read_admin_ticket(tmp_path) == service.admin_ticket
    await service.stop()


async def test_a_running_coordinator_renews_its_admin_ticket(tmp_path: Path) -> None:
    import asyncio
    import time

    clock = ManualClock(1_800_000_000.0)
    service = await _service(tmp_path, clock, check_interval=0.02)
    try:
        first = service.admin_ticket
        clock.advance(24 * 86_400)  # 6 days left
        deadline = time.monotonic() + 10
        while service.admin_ticket == first:
            assert time.monotonic() < deadline, "the admin ticket was not renewed"
            await asyncio.sleep(0.02)
        assert read_admin_ticket(tmp_path) == service.admin_ticket
        held = service.verifier.verify(
            service.admin_ticket, audience=service.keys.audience, scope="admin"
        )
        assert held.expires_at == clock.time() + 30 * 86_400
    finally:
        await service.stop()


def test_renew_admin_writes_a_fresh_private_ticket(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        ticket_app, ["renew-admin", "--data-dir", str(tmp_path), "--ttl", "7d", "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    path = tmp_path / "admin.ticket"
    assert info["path"] == str(path) and info["scopes"] == ["admin"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_admin_ticket(tmp_path) is not None


# -- ticket files follow the key files' rule ---------------------------------------------------
async def test_an_admin_ticket_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fogmesh.client import find_ticket

    clock = ManualClock(1_800_000_000.0)
    service = await _service(tmp_path, clock)
    await service.stop()
    path = tmp_path / "admin.ticket"
    monkeypatch.delenv("FOGMESH_TICKET", raising=False)
    assert find_ticket(data_dir=tmp_path) == service.admin_ticket
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        find_ticket(data_dir=tmp_path)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_admin_ticket(tmp_path)
    with pytest.raises(KeyFileError, match="chmod 600"):
        await _service(tmp_path, clock)  # the coordinator will not start on it either


def test_an_agent_ticket_others_can_read_is_refused(tmp_path: Path) -> None:
    from fogmesh.agent.link import AgentCredentials
    from fogmesh.security.identity import DeviceIdentity
    from fogmesh.security.noise import NoiseKeypair

    directory = tmp_path / "agent"
    creds = AgentCredentials(
        directory,
        DeviceIdentity.load_or_create(directory / "identity.key"),
        NoiseKeypair.load_or_create(directory / "noise.key"),
        "https://fog.example:8700",
        bytes(32),
        "v4.public.enrol",
        enrolled=False,
        tls_fingerprint=bytes(range(32)),
    )
    creds.save_enrolment("v4.public.agent")
    loaded = AgentCredentials.load(tmp_path)
    assert loaded.ticket == "v4.public.agent" and loaded.tls_fingerprint == bytes(range(32))
    for name in ("agent.ticket", "agent.json"):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
        (directory / name).chmod(0o640)
        with pytest.raises(KeyFileError, match="chmod 600"):
            AgentCredentials.load(tmp_path)
        (directory / name).chmod(0o600)
