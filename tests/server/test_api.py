"""REST API: happy paths and every kind of bad input (4xx with a clear reason, nothing changed)."""

from __future__ import annotations

import os
import stat

import pytest
from server_helpers import Api

from fogmesh.clock import ManualClock
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.server.auth import read_admin_ticket

TASK = {
    "type": "inference",
    "priority": "high",
    "cpu_cores": 0.5,
    "memory_mb": 64,
    "estimated_duration": 2,
    "payload": {"type": "python", "function": "fogmesh.agent.workloads:echo", "args": {"x": 1}},
}


async def _task_count(api: Api) -> int:
    counts = await api.service.coordinator.store.count_by_state()
    return sum(counts.values())


async def test_healthz_and_openapi(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await api.client.get("/openapi.json")
    paths = r.json()["paths"]
    assert {"/v1/tasks", "/v1/tasks/{task_id}", "/v1/devices", "/v1/status"} <= set(paths)
    assert (await api.client.get("/docs")).status_code == 200


async def test_admin_ticket_written_private(api: Api) -> None:
    data_dir = api.service.config.data_dir
    path = data_dir / "admin.ticket"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_admin_ticket(data_dir) == api.service.admin_ticket


async def test_submit_read_explain_cancel(api: Api) -> None:
    r = await api.client.post("/v1/tasks", json=TASK, headers=api.admin)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    r = await api.client.get(f"/v1/tasks/{task_id}", headers=api.bearer("read"))
    assert r.json()["state"] == "pending" and r.json()["priority"] == 7
    r = await api.client.get("/v1/tasks", params={"state": "pending"}, headers=api.admin)
    assert [t["id"] for t in r.json()["tasks"]] == [task_id]
    r = await api.client.get(f"/v1/tasks/{task_id}/explain", headers=api.admin)
    assert r.status_code == 200 and r.json()["task_id"] == task_id
    r = await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=api.bearer("submit"))
    assert r.json()["state"] == "cancelled"
    r = await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=api.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"


async def test_status_and_metrics(api: Api) -> None:
    await api.client.post("/v1/tasks", json=TASK, headers=api.admin)
    r = await api.client.get("/v1/status", headers=api.admin)
    assert r.json()["queue_by_priority"] == {"high": 1}
    text = (await api.client.get("/metrics")).text
    assert 'fogmesh_queue_depth{priority="high"} 1' in text
    assert 'fogmesh_devices{status="ready"} 0' in text
    assert "# TYPE fogmesh_dispatch_to_start_seconds histogram" in text
    assert "fogmesh_handshake_waits_total 0" in text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**TASK, "type": "mining"}, "type"),
        ({**TASK, "cpu_cores": "lots"}, "cpu_cores"),
        ({**TASK, "cpu_cores": -1}, "cpu_cores"),
        ({**TASK, "priority": 99}, "priority"),
        ({**TASK, "memory_mb": 1.5}, "memory_mb"),
        ({**TASK, "payload": {"type": "python", "function": "nocolon"}}, "function"),
        ({**TASK, "payload": {"type": "rm -rf"}}, "payload"),
        ({**TASK, "surprise": 1}, "surprise"),
        ({**TASK, "deadline": 1.0}, "deadline"),
        ([TASK], "body"),
    ],
)
async def test_bad_task_bodies_are_422(api: Api, body: object, fragment: str) -> None:
    r = await api.client.post("/v1/tasks", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["reason"]
    assert await _task_count(api) == 0


async def test_malformed_json_and_oversized_body(api: Api) -> None:
    headers = {**api.admin, "content-type": "application/json"}
    r = await api.client.post("/v1/tasks", content=b'{"type": "inference",', headers=headers)
    assert r.status_code == 422 and "json" in r.json()["error"]["reason"].lower()
    big = {**TASK, "payload": {"type": "python", "function": "a:b", "args": {"x": "y" * 70_000}}}
    r = await api.client.post("/v1/tasks", json=big, headers=api.admin)
    assert r.status_code == 413 and "exceeds" in r.json()["error"]["reason"]

    async def chunks():  # no content-length: the limit must hold on the stream too
        for _ in range(100):
            yield b" " * 1024

    r = await api.client.post("/v1/tasks", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert await _task_count(api) == 0


async def test_unknown_ids_are_404(api: Api) -> None:
    for path in ("/v1/tasks/NOPE", "/v1/tasks/NOPE/explain", "/v1/devices/nope"):
        r = await api.client.get(path, headers=api.admin)
        assert r.status_code == 404, path
        assert "nope" in r.json()["error"]["reason"].lower()
    r = await api.client.post("/v1/tasks/NOPE/cancel", headers=api.admin)
    assert r.status_code == 404
    r = await api.client.delete("/v1/devices/nope", headers=api.admin)
    assert r.status_code == 404
    r = await api.client.get("/v1/tasks/" + "x" * 65, headers=api.admin)
    assert r.status_code == 422


async def test_tickets_missing_wrong_scope_expired_forged(api: Api) -> None:
    r = await api.client.post("/v1/tasks", json=TASK)
    assert r.status_code == 401 and "missing" in r.json()["error"]["reason"]
    r = await api.client.post("/v1/tasks", json=TASK, headers={"Authorization": "Basic x"})
    assert r.status_code == 401
    r = await api.client.post("/v1/tasks", json=TASK, headers=api.bearer("read"))
    assert r.status_code == 403 and "submit" in r.json()["error"]["reason"]
    r = await api.client.delete("/v1/devices/x", headers=api.bearer("submit", "read"))
    assert r.status_code == 403
    r = await api.client.get("/v1/status", headers=api.bearer("agent"))
    assert r.status_code == 403
    old = ManualClock(api.service.clock.time() - 7200)
    expired = api.service.keys.issuer(old).issue(
        subject="x", audience=api.service.keys.audience, scopes=("admin",), ttl=60
    )
    r = await api.client.get("/v1/status", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "ticket_expired"
    # A ticket signed by another coordinator's key: well-formed, but forged for this one.
    other = CoordinatorKeys.load_or_create(api.service.config.data_dir.parent / "other")
    forged = other.issuer(api.service.clock).issue(
        subject="x", audience=api.service.keys.audience, scopes=("admin",), ttl=60
    )
    r = await api.client.get("/v1/status", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and "unknown" in r.json()["error"]["reason"]
    tampered = api.service.admin_ticket[:-60] + ("A" * 10) + api.service.admin_ticket[-50:]
    r = await api.client.get("/v1/status", headers={"Authorization": f"Bearer {tampered}"})
    assert r.status_code == 401
    r = await api.client.get("/v1/status", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401
    assert await _task_count(api) == 0


async def test_token_endpoint(api: Api) -> None:
    r = await api.client.post("/v1/tokens", json={"ttl": 60}, headers=api.admin)
    assert r.status_code == 201 and r.json()["token"].startswith("fmj1.")
    r = await api.client.post("/v1/tokens", json={"ttl": 60, "url": "ftp://x"}, headers=api.admin)
    assert r.status_code == 422
    r = await api.client.post("/v1/tokens", json={"ttl": 60}, headers=api.bearer("submit"))
    assert r.status_code == 403
