"""The agent endpoint refuses bad sessions clearly, and registers nothing for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_helpers import join_token, running_coordinator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fogmesh.agent.link import AgentCredentials, LinkRefused, agent_ws_url, open_link
from fogmesh.clock import ManualClock
from fogmesh.devices.emulated import preset
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.server import CoordinatorService
from fogmesh.wire.messages import Enrolled, Heartbeat, Register, Welcome


def _agent_ticket(service: CoordinatorService, subject: str, clock: object = None) -> str:
    issuer = service.keys.issuer(clock or service.clock)  # type: ignore[arg-type]
    return issuer.issue(subject=subject, audience=service.keys.audience, scopes=("agent",), ttl=600)


def _creds(service: CoordinatorService, where: Path, ticket: str) -> AgentCredentials:
    creds = AgentCredentials.from_join_token(where, join_token(service))
    creds.ticket = ticket
    return creds


async def _closed_with(url: str, frames: list[bytes | str]) -> tuple[int, str]:
    async with connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
            await ws.recv()
    rcvd = info.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


async def test_malformed_frames_close_the_session(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        url = agent_ws_url(service.config.url)
        code, reason = await _closed_with(url, ["hello"])
        assert code == 4400 and "binary" in reason
        code, _ = await _closed_with(url, [b"\x00" * 48])
        assert code == 4401
        code, _ = await _closed_with(url, [b"x"])
        assert code == 4401
        assert service.metrics.handshake_failures
        assert await service.coordinator.list_devices() == []


@pytest.mark.parametrize("case", ["forged", "other_device", "expired", "enrol_reused_scope"])
async def test_bad_agent_tickets_are_refused(tmp_path: Path, case: str) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        creds = _creds(service, tmp_path / "agent", "")
        if case == "forged":
            other = CoordinatorKeys.load_or_create(tmp_path / "other")
            creds.ticket = other.issuer(service.clock).issue(
                subject=creds.device_id, audience=service.keys.audience, scopes=("agent",), ttl=60
            )
            expected = "unknown or retired key"
        elif case == "other_device":
            creds.ticket = _agent_ticket(service, "dev-someoneelse")
            expected = "different subject"
        elif case == "expired":
            creds.ticket = _agent_ticket(
                service, creds.device_id, ManualClock(service.clock.time() - 3 * 86400)
            )
            expected = "expired"
        else:  # a read-scoped operator ticket is neither enrol nor agent
            creds.ticket = service.issuer.issue(
                subject=creds.device_id, audience=service.keys.audience, scopes=("read",), ttl=60
            )
            expected = "'agent' scope"
        link = await open_link(creds)
        with pytest.raises(LinkRefused, match=expected):
            await link.channel.recv()
        assert await service.coordinator.list_devices() == []


async def test_register_must_come_first_and_be_readable(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        creds = _creds(service, tmp_path / "agent", "")
        creds.ticket = _agent_ticket(service, creds.device_id)
        link = await open_link(creds)
        await link.channel.send(Heartbeat(seq=1, profile={}))
        with pytest.raises(LinkRefused, match="must be 'register'"):
            await link.channel.recv()
        link = await open_link(creds)
        await link.channel.send(Register(profile={"device_type": "toaster"}))
        with pytest.raises(LinkRefused, match="profile unreadable"):
            await link.channel.recv()
        assert await service.coordinator.list_devices() == []


async def test_agent_ticket_past_half_life_is_renewed(tmp_path: Path) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        creds = _creds(service, tmp_path / "agent", "")
        issued_20_days_ago = ManualClock(service.clock.time() - 20 * 86400)
        creds.ticket = service.keys.issuer(issued_20_days_ago).issue(
            subject=creds.device_id,
            audience=service.keys.audience,
            scopes=("agent",),
            ttl=30 * 86400,
        )
        link = await open_link(creds)
        await link.channel.send(Register(profile=preset("desktop").to_dict()))
        welcome = await link.channel.recv()
        assert isinstance(welcome, Welcome) and welcome.ticket is not None
        assert welcome.ticket_expires_at is not None
        assert welcome.ticket_expires_at > service.clock.time() + 29 * 86400
        service.verifier.verify(
            welcome.ticket, audience=service.keys.audience, scope="agent", subject=creds.device_id
        )
        await link.close()
        # A fresh ticket is not renewed.
        creds.ticket = _agent_ticket(service, creds.device_id)
        link = await open_link(creds)
        await link.channel.send(Register(profile=preset("desktop").to_dict()))
        welcome = await link.channel.recv()
        assert isinstance(welcome, Welcome) and welcome.ticket is None
        await link.close()


@pytest.mark.parametrize("reads_bundles", [True, False])
async def test_bundles_are_sent_only_to_agents_that_read_them(
    tmp_path: Path, reads_bundles: bool
) -> None:
    async with running_coordinator(tmp_path / "coord") as service:
        creds = _creds(service, tmp_path / "agent", "")
        creds.ticket = _agent_ticket(service, creds.device_id)
        link = await open_link(creds)
        await link.channel.send(
            Register(profile=preset("desktop").to_dict(), bundles=reads_bundles)
        )
        welcome = await link.channel.recv()
        assert isinstance(welcome, Welcome) and welcome.bundles  # the coordinator reads them
        assert service.hub.sessions[creds.device_id].channel.bundling is reads_bundles
        await link.close()


async def test_a_join_token_that_enrolled_a_device_stays_spent_across_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "coord"
    async with running_coordinator(data, db_url=None) as service:
        token = join_token(service, ttl=3600)
        creds = AgentCredentials.from_join_token(tmp_path / "agent", token)
        link = await open_link(creds)
        assert isinstance(await link.channel.recv(), Enrolled)
        await link.close()
    async with running_coordinator(data, db_url=None) as service:  # same store, new process
        again = AgentCredentials.from_join_token(tmp_path / "thief", token)
        again.coordinator_url = service.config.url
        link = await open_link(again)
        with pytest.raises(LinkRefused, match="already"):
            await link.channel.recv()
        assert len(service.seen) == 1


async def test_the_identity_is_durable_before_its_join_token_is_presented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    async with running_coordinator(tmp_path / "coord") as service:
        token = join_token(service)
        monkeypatch.setattr(os, "fsync", fsync)
        creds = AgentCredentials.from_join_token(tmp_path / "agent", token)
        monkeypatch.undo()
        agent_dir = str(tmp_path / "agent" / "agent")
        # The directory holding identity.key is synced after the key file was written.
        key_files = [p for p in synced if p.startswith(agent_dir + "/")]
        assert key_files and synced.index(agent_dir) > synced.index(key_files[0])
        again = AgentCredentials.from_join_token(tmp_path / "agent", token)
        assert again.device_id == creds.device_id  # a retry, even by a new process: same key
