"""Batch submit (all or none) and the long-polling task read."""

from __future__ import annotations

import asyncio
import time

from server_helpers import Api

ECHO = {"type": "python", "function": "fogmesh.agent.workloads.basic:echo", "args": {"x": 1}}
TASK = {"type": "inference", "priority": "high", "cpu_cores": 0.5, "payload": ECHO}


async def test_a_batch_is_stored_in_order_and_answers_with_every_id(api: Api) -> None:
    body = {"tasks": [{**TASK, "payload": {**ECHO, "args": {"x": i}}} for i in range(50)]}
    r = await api.client.post("/v1/tasks/batch", json=body, headers=api.bearer("submit"))
    assert r.status_code == 201, r.text
    ids = r.json()["task_ids"]
    assert len(ids) == 50 and len(set(ids)) == 50
    for i, task_id in enumerate(ids[:3]):
        task = (await api.client.get(f"/v1/tasks/{task_id}", headers=api.admin)).json()
        assert task["payload"]["args"] == {"x": i} and task["state"] == "pending"
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 50


async def test_one_bad_task_refuses_the_whole_batch(api: Api) -> None:
    body = {"tasks": [TASK, TASK, {**TASK, "cpu_cores": -1}]}
    r = await api.client.post("/v1/tasks/batch", json=body, headers=api.admin)
    assert r.status_code == 422
    assert "tasks" in r.text and "2" in r.text and "cpu_cores" in r.text
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 0


async def test_a_coordinator_level_refusal_names_the_task_and_stores_nothing(api: Api) -> None:
    past = {**TASK, "deadline": time.time() - 10}
    r = await api.client.post("/v1/tasks/batch", json={"tasks": [TASK, past]}, headers=api.admin)
    assert r.status_code == 422 and "task 1" in r.json()["error"]["reason"]
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 0


async def test_empty_oversized_and_unauthorised_batches_are_refused(api: Api) -> None:
    r = await api.client.post("/v1/tasks/batch", json={"tasks": []}, headers=api.admin)
    assert r.status_code == 422
    r = await api.client.post(
        "/v1/tasks/batch", json={"tasks": [{"type": "inference"}] * 1001}, headers=api.admin
    )
    assert r.status_code in (413, 422)
    r = await api.client.post("/v1/tasks/batch", json={"tasks": [TASK]}, headers=api.bearer("read"))
    assert r.status_code == 403
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 0


async def test_a_long_poll_answers_when_the_task_ends(api: Api) -> None:
    r = await api.client.post("/v1/tasks", json=TASK, headers=api.admin)
    task_id = r.json()["task_id"]
    # Still pending after the wait: answered with the task as it stands.
    t0 = time.monotonic()
    r = await api.client.get(f"/v1/tasks/{task_id}", params={"wait": 0.3}, headers=api.admin)
    assert r.status_code == 200 and r.json()["state"] == "pending"
    assert time.monotonic() - t0 >= 0.25

    async def cancel_soon() -> None:
        await asyncio.sleep(0.1)
        await api.service.cancel_task(task_id, "test")

    canceller = asyncio.create_task(cancel_soon())
    t0 = time.monotonic()
    r = await api.client.get(f"/v1/tasks/{task_id}", params={"wait": 30}, headers=api.admin)
    await canceller
    assert r.json()["state"] == "cancelled" and time.monotonic() - t0 < 5
    for bad in (-1, 61, "soon"):
        r = await api.client.get(f"/v1/tasks/{task_id}", params={"wait": bad}, headers=api.admin)
        assert r.status_code == 422
    r = await api.client.get("/v1/tasks/01NOSUCHTASK", params={"wait": 1}, headers=api.admin)
    assert r.status_code == 404


async def test_a_keyed_submit_repeated_returns_its_first_task_and_stores_nothing(api: Api) -> None:
    body = {**TASK, "idempotency_key": "one-key"}
    first = await api.client.post("/v1/tasks", json=body, headers=api.admin)
    again = await api.client.post("/v1/tasks", json=body, headers=api.admin)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["task_id"] == again.json()["task_id"]
    listed = (await api.client.get("/v1/tasks", headers=api.admin)).json()["tasks"]
    assert [t["id"] for t in listed] == [first.json()["task_id"]]
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 1


async def test_a_key_reused_for_another_spec_is_a_409_and_stores_nothing(api: Api) -> None:
    r = await api.client.post("/v1/tasks", json={**TASK, "idempotency_key": "k"}, headers=api.admin)
    other = {**TASK, "priority": "low", "idempotency_key": "k"}
    for path, body in (("/v1/tasks", other), ("/v1/tasks/batch", {"tasks": [TASK, other]})):
        refused = await api.client.post(path, json=body, headers=api.admin)
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "idempotency_conflict" and r.json()["task_id"] in error["reason"]
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 1


async def test_a_retried_batch_stores_only_its_new_tasks(api: Api) -> None:
    tasks = [{**TASK, "payload": {**ECHO, "args": {"x": i}}, "idempotency_key": f"b{i}"}
             for i in range(4)]  # fmt: skip
    first = await api.client.post("/v1/tasks/batch", json={"tasks": tasks[:2]}, headers=api.admin)
    whole = await api.client.post("/v1/tasks/batch", json={"tasks": tasks}, headers=api.admin)
    assert whole.status_code == 201, whole.text
    ids = whole.json()["task_ids"]
    assert ids[:2] == first.json()["task_ids"] and len(set(ids)) == 4
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 4
    for i, task_id in enumerate(ids):
        task = (await api.client.get(f"/v1/tasks/{task_id}", headers=api.admin)).json()
        assert task["payload"]["args"] == {"x": i}


async def test_bad_idempotency_keys_are_422(api: Api) -> None:
    for body in (
        {"tasks": [{**TASK, "idempotency_key": "same"}, {**TASK, "idempotency_key": "same"}]},
        {"tasks": [{**TASK, "idempotency_key": ""}]},
        {"tasks": [{**TASK, "idempotency_key": "k" * 257}]},
    ):
        r = await api.client.post("/v1/tasks/batch", json=body, headers=api.admin)
        assert r.status_code == 422, r.text
    assert api.service.coordinator.get_system_status()["tasks"]["pending"] == 0


async def test_the_openapi_schema_declares_the_idempotency_key_and_its_409(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    assert "idempotency_key" in schema["components"]["schemas"]["TaskSubmit"]["properties"]
    for path in ("/v1/tasks", "/v1/tasks/batch"):
        assert "409" in schema["paths"][path]["post"]["responses"]
