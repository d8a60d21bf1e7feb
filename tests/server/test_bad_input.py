"""Bad input never poisons the API: payloads too deep or not Unicode are refused at intake (REST
single, REST batch and the Python API alike), and reads never fail on what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from server_helpers import Api

from fogmesh.errors import InvalidRequest
from fogmesh.fog import tasks as fog_tasks
from fogmesh.fog.coordinator import CoordinatorConfig, FogCoordinator
from fogmesh.fog.payload_bounds import MAX_PAYLOAD_DEPTH, nesting_exceeds
from fogmesh.fog.tasks import PythonPayload, Task, TaskType
from fogmesh.server import CoordinatorService, ServerConfig, create_app
from fogmesh.server._json import MAX_RENDER_DEPTH, SafeJSONResponse
from fogmesh.server.routes.tasks import task_json


def nested(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}`` with ``depth`` dicts."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def task_body(args: Any) -> dict[str, Any]:
    return {"type": "inference", "payload": {"type": "python", "function": "m:f", "args": args}}


def test_nesting_counts_containers() -> None:
    assert not nesting_exceeds(1, 0)
    assert not nesting_exceeds({}, 1) and nesting_exceeds({}, 0)
    assert nesting_exceeds({"a": [1]}, 1) and not nesting_exceeds({"a": [1]}, 2)
    assert not nesting_exceeds(nested(32), 32) and nesting_exceeds(nested(33), 32)
    assert nesting_exceeds(nested(100_000), 32)  # iterative: no RecursionError


@pytest.mark.parametrize("depth", [40, 300])
async def test_deep_args_are_refused_everywhere(api: Api, depth: int) -> None:
    r = await api.client.post("/v1/tasks", json=task_body(nested(depth)), headers=api.admin)
    assert r.status_code == 422, r.text
    assert "nested more than" in r.json()["error"]["reason"]
    batch = {"tasks": [task_body({"x": 1}), task_body(nested(depth))]}
    r = await api.client.post("/v1/tasks/batch", json=batch, headers=api.admin)
    assert r.status_code == 422, r.text
    coordinator = api.service.coordinator
    payload = {"type": "python", "function": "m:f", "args": nested(depth)}
    with pytest.raises(InvalidRequest, match="nested more than 32 levels"):
        await coordinator.submit_task("inference", payload=payload)
    with pytest.raises(InvalidRequest, match=r"task 1: payload\.args is nested"):
        await coordinator.submit_tasks(
            [{"task_type": "inference"}, {"task_type": "inference", "payload": payload}]
        )
    counts = await coordinator.store.count_by_state()
    assert sum(counts.values()) == 0  # nothing half-stored


async def test_the_depth_limit_itself_is_accepted(api: Api) -> None:
    r = await api.client.post(
        "/v1/tasks", json=task_body(nested(MAX_PAYLOAD_DEPTH)), headers=api.admin
    )
    assert r.status_code == 201, r.text
    r = await api.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=api.admin)
    assert r.status_code == 200
    assert r.json()["payload"]["args"] == nested(MAX_PAYLOAD_DEPTH)


LONE = [
    b'{"type":"inference","payload":{"type":"python","function":"m:f","args":{"x":"\\ud800"}}}',
    b'{"type":"inference","payload":{"type":"python","function":"m:f","args":{"\\udbff":1}}}',
    b'{"type":"inference","payload":{"type":"model","model_id":"m","input":["\\udc00"]}}',
]


@pytest.mark.parametrize("raw", LONE)
async def test_lone_surrogates_are_422(api: Api, raw: bytes) -> None:
    headers = {**api.admin, "content-type": "application/json"}
    r = await api.client.post("/v1/tasks", content=raw, headers=headers)
    assert r.status_code == 422, r.text
    assert "surrogate" in r.json()["error"]["reason"]
    r = await api.client.post(
        "/v1/tasks/batch", content=b'{"tasks":[' + raw + b"]}", headers=headers
    )
    assert r.status_code == 422, r.text


async def test_lone_surrogates_anywhere_in_any_body_are_422(api: Api) -> None:
    headers = {**api.admin, "content-type": "application/json"}
    profile = b'{"device_id":"d1","profile":{"device_type":"phone","note":"\\ud800"}}'
    for path, raw in [
        ("/v1/edge/devices", profile),
        ("/v1/tokens", b'{"url":"http://x/\\ud800"}'),
        ("/v1/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel", b'{"reason":"\\ud800"}'),
    ]:
        r = await api.client.post(path, content=raw, headers=headers)
        assert r.status_code == 422, (path, r.text)


async def test_python_api_refuses_a_lone_surrogate(api: Api) -> None:
    with pytest.raises(InvalidRequest, match="not valid Unicode"):
        await api.service.coordinator.submit_task(
            "inference", payload={"type": "python", "function": "m:f", "args": {"x": "\ud800"}}
        )


async def test_a_body_nested_past_the_recursion_limit_is_422(api: Api) -> None:
    raw = b'{"type":"inference","payload":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    headers = {**api.admin, "content-type": "application/json"}
    r = await api.client.post("/v1/tasks", content=raw, headers=headers)
    assert r.status_code == 422, r.text[:300]


async def test_rows_stored_before_the_limit_still_read_and_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task stored deep (by a version without the limit) reads as 200 and pages past."""
    import httpx

    config = ServerConfig(
        data_dir=tmp_path / "coord", coordinator=CoordinatorConfig(scheduling_interval=60)
    )
    service = CoordinatorService(config)  # SQLite: the row goes through a real column
    await service.start()
    try:
        coordinator = service.coordinator
        before = await coordinator.submit_task("inference")
        with monkeypatch.context() as patch:  # what an earlier version let through
            patch.setattr(fog_tasks, "check_payload_bounds", lambda *_: None)
            deep = await coordinator.submit_task(
                "inference", payload={"type": "python", "function": "m:f", "args": nested(300)}
            )
        after = await coordinator.submit_task("inference")
        app = create_app(config, service=service)
        admin = {"Authorization": f"Bearer {service.admin_ticket}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fog"
        ) as client:
            r = await client.get(f"/v1/tasks/{deep}", headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["payload"]["args"] == {
                "unrendered": f"stored value nested more than {MAX_RENDER_DEPTH} levels"
            }
            assert r.json()["payload"]["function"] == "m:f"
            r = await client.get("/v1/tasks", params={"limit": 1, "after": before}, headers=admin)
            assert r.status_code == 200 and [t["id"] for t in r.json()["tasks"]] == [deep]
            r = await client.get("/v1/tasks", headers=admin)
            assert [t["id"] for t in r.json()["tasks"]] == [before, deep, after]
            r = await client.post(f"/v1/tasks/{deep}/cancel", headers=admin)
            assert r.status_code == 200 and r.json()["state"] == "cancelled"
    finally:
        await service.stop()


def test_a_deep_or_unencodable_result_renders() -> None:
    task = Task(
        id="T1",
        type=TaskType.INFERENCE,
        payload=PythonPayload(function="m:f", args={"s": "\ud800"}),
        result=nested(500),
        error={"code": "x", "reason": "bad \udc00 text"},
    )
    response = SafeJSONResponse(task_json(task))
    assert b'"unrendered"' in response.body
    assert b'"bad ? text"' in response.body and b'"s":"?"' in response.body


async def test_python_api_direct_coordinator() -> None:
    async with FogCoordinator(store_url="memory") as coordinator:
        with pytest.raises(InvalidRequest):
            await coordinator.submit_task(
                "inference",
                payload={"type": "model", "model_id": "m", "input": nested(MAX_PAYLOAD_DEPTH + 1)},
            )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/tasks", "GET, POST"),  # two routes share the path
        ("DELETE", "/v1/tasks/batch", "POST"),  # a literal path, not /v1/tasks/{task_id}
        ("TRACE", "/healthz", "GET"),
        ("PATCH", "/v1/devices/d1", "DELETE, GET"),
    ],
)
async def test_405_lists_every_allowed_method(
    api: Api, method: str, path: str, allowed: str
) -> None:
    r = await api.client.request(method, path, headers=api.admin)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_every_operation_declares_its_error_statuses(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            if path not in ("/healthz", "/metrics"):
                assert {"401", "403", "422", "503"} <= declared, (method, path, declared)
            if "{" in path:
                assert "404" in declared, (method, path, declared)
    cancel = paths["/v1/tasks/{task_id}/cancel"]["post"]["responses"]
    assert "409" in cancel
    assert "503" in paths["/healthz"]["get"]["responses"]


def test_json_nesting_on_bytes_agrees_with_the_walk() -> None:
    import json
    import random

    import msgspec

    from fogmesh.fog.payload_bounds import json_nesting_exceeds

    rng = random.Random(14)
    texts = ['x]\\"[', "{{", '"', "\\", '\\\\"', "a\\\\", "]]]", "\n[", "é[\u2028", "", "[", "]"]

    def value(depth: int) -> Any:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice([1, None, *texts])
        if rng.random() < 0.5:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(texts) + str(i): value(depth - 1) for i in range(rng.randint(0, 3))}

    for _ in range(2000):
        v = value(rng.randint(0, 12))
        for raw in (msgspec.json.encode(v), json.dumps(v).encode()):
            for limit in (0, 1, 2, 3, 5, 8, 12):
                assert json_nesting_exceeds(raw, limit) == nesting_exceeds(v, limit), (raw, limit)
