"""One-shot things stay one-shot, and what a lost reply leaves behind can be retried safely.

Real coordinator and agent processes on 127.0.0.1; between them, where a reply must be lost, a
TCP proxy that cuts the connection instead of passing the reply on (``cutting_proxy``).
"""

from __future__ import annotations

from typing import Any

import httpx
from cutting_proxy import CutAfterRequest, CuttingProxy, CutWebSocketFrame
from e2e_helpers import Fog, wait_until

from fogmesh.client import FogClient
from fogmesh.clock import WallClock
from fogmesh.security.keys import CoordinatorKeys


def _one_shot_ticket(fog: Fog, scope: str = "read") -> str:
    keys = CoordinatorKeys.load_or_create(fog.coord_dir)  # the operator's view of the data dir
    return keys.issuer(WallClock()).issue(
        subject="script", audience=keys.audience, scopes=(scope,), ttl=600, one_shot=True
    )


def test_a_one_shot_ticket_stays_spent_after_the_coordinator_is_killed(fog: Fog) -> None:
    fog.start_coordinator()
    ticket = _one_shot_ticket(fog)
    bearer = {"Authorization": f"Bearer {ticket}"}
    first = httpx.get(f"{fog.url}/v1/status", headers=bearer, timeout=10)
    assert first.status_code == 200, first.text
    fog.kill("coordinator")  # kill -9: nothing gets written on the way out
    fog.start_coordinator()
    again = httpx.get(f"{fog.url}/v1/status", headers=bearer, timeout=10)
    assert again.status_code == 401, again.text
    assert again.json()["error"] == {
        "code": "replay",
        "reason": "one-shot ticket has already been used",
    }


def _agent_device_id(fog: Fog, name: str) -> str:
    from fogmesh.security.identity import DeviceIdentity

    return DeviceIdentity.load(fog.root / name / "agent" / "identity.key").device_id


def test_an_agent_whose_enrolled_reply_was_lost_enrols_with_its_token_again(fog: Fog) -> None:
    fog.start_coordinator()
    # The second frame the coordinator sends on an agent link (after Noise message 2) is
    # Enrolled: the proxy loses it and cuts the link, once.
    with CuttingProxy(fog.port, lambda: CutWebSocketFrame(b"/v1/agent", 2)) as proxy:
        r = fog.api("POST", "/v1/tokens", json={"ttl": 600, "url": proxy.url})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        fog.start_agent("lost-reply", token=token)

        def joined() -> list[dict[str, Any]]:
            if fog.procs["lost-reply"].poll() is not None:
                raise AssertionError(f"the agent gave up: {fog.log('lost-reply')}")
            return [d for d in fog.devices() if d["status"] == "ready"]

        wait_until(joined, 60, "the agent to enrol after its Enrolled reply was lost")
        assert proxy.cuts == 1 and proxy.connections >= 2
        assert [d["device_id"] for d in fog.devices()] == [_agent_device_id(fog, "lost-reply")]

        # Another device (another identity) with the same, spent token is still refused.
        fog.start_agent("thief", token=token)
        wait_until(lambda: fog.procs["thief"].poll() is not None, 60, "the thief to be refused")
        assert fog.procs["thief"].returncode != 0
        assert "already been used" in fog.log("thief")
        assert len(fog.devices()) == 1


def test_a_batch_whose_reply_was_lost_is_retried_and_stored_once(fog: Fog) -> None:
    fog.start_coordinator()
    ticket = (fog.coord_dir / "admin.ticket").read_text().strip()
    tasks = [
        {
            "type": "preprocessing",
            "cpu_cores": 0.5,
            "payload": {
                "type": "python",
                "function": "fogmesh.agent.workloads.basic:echo",
                "args": {"i": i},
            },
        }
        for i in range(5)
    ]
    with CuttingProxy(fog.port, lambda: CutAfterRequest(b"POST /v1/tasks/batch ")) as proxy:
        with FogClient(proxy.url, ticket, timeout=30) as client:
            ids = client.submit_many(tasks)
        assert proxy.cuts == 1  # the first answer was lost: the client sent the batch again
    stored = fog.api("GET", "/v1/tasks", params={"limit": 1000}).json()["tasks"]
    assert len(ids) == 5 and sorted(ids) == sorted(t["id"] for t in stored)
    assert [fog.task(i)["payload"]["args"] for i in ids] == [{"i": i} for i in range(5)]
