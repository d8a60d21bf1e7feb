"""The edge REST API: models, edge devices and deployments (good input, bad input, scopes)."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import Api

from fogmesh.devices.emulated import PRESETS


async def _register(api: Api, device_id: str = "lap", preset: str = "desktop") -> dict[str, Any]:
    r = await api.client.post(
        "/v1/edge/devices",
        json={"device_id": device_id, "device_name": "Lab box", "emulate": preset},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _edge_state(api: Api) -> dict[str, Any]:
    r = await api.client.get("/v1/edge/status", headers=api.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_models_list_the_builtin_and_registered_variants(api: Api) -> None:
    r = await api.client.get("/v1/models", headers=api.bearer("read"))
    assert r.status_code == 200, r.text
    assert r.json()["models"] == []
    assert "tutor_agent_v1" in r.json()["builtin"]

    await _register(api)
    r = await api.client.post(
        "/v1/deployments",
        json={"device_id": "lap", "model_id": "tutor_agent_v1"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    models = (await api.client.get("/v1/models", headers=api.admin)).json()["models"]
    assert [m["model_id"] for m in models] == ["tutor_agent_v1"]
    variants = {v["variant"]: v for v in models[0]["variants"]}
    assert set(variants) == {"fp32", "int8"}
    for v in variants.values():
        assert len(v["sha256"]) == 64 and v["size_bytes"] > 0


async def test_register_by_preset_or_by_reported_profile(api: Api) -> None:
    body = await _register(api, "pi", "raspberry-pi")
    assert body["device_id"] == "pi"
    assert body["device_name"] == "Lab box"
    assert body["status"] == "online"
    assert body["profile"]["device_type"] == body["device_type"]
    assert "preset raspberry-pi" in body["classification"]

    profile = PRESETS["phone-low-battery"].to_dict()
    r = await api.client.post(
        "/v1/edge/devices",
        json={"device_id": "phone", "profile": profile, "labels": {"site": "lab"}},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["classification"] == "as reported"
    assert r.json()["battery_percent"] == profile["battery_percent"]
    assert r.json()["power_mode"] in ("power_save", "critical")

    r = await api.client.get("/v1/edge/devices/phone", headers=api.bearer("read"))
    assert r.status_code == 200 and r.json()["device_id"] == "phone"
    # The coordinator's registry knows it too (shared FogCoordinator).
    r = await api.client.get("/v1/devices/phone", headers=api.admin)
    assert r.status_code == 200 and r.json()["labels"]["site"] == "lab"
    status = await _edge_state(api)
    assert status["devices"]["total"] == 2 and status["devices"]["online"] == 2


async def test_a_fresh_reading_reports_what_it_triggered(api: Api) -> None:
    await _register(api, "phone", "phone-charging")
    hot = {**PRESETS["phone-charging"].to_dict(), "cpu_temp_c": 70.0, "charging": False}
    r = await api.client.post(
        "/v1/edge/devices/phone/state", json={"profile": hot}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    assert any("temperature" in e or "°C" in e or "→" in e for e in r.json()["events"])
    status = (await api.client.get("/v1/edge/devices/phone", headers=api.admin)).json()
    assert status["cpu_temp_c"] == 70.0


async def test_deploy_read_and_undeploy(api: Api) -> None:
    await _register(api)
    r = await api.client.post(
        "/v1/deployments",
        json={"device_id": "lap", "model_id": "tutor_agent_v1", "deployment_type": "inference"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    dep = r.json()["deployment_id"]
    assert dep.startswith("dep-")

    r = await api.client.get(f"/v1/deployments/{dep}", headers=api.bearer("read"))
    assert r.status_code == 200
    assert r.json()["state"] == "ready" and r.json()["sha256"]
    device = (await api.client.get("/v1/edge/devices/lap", headers=api.admin)).json()
    assert [d["deployment_id"] for d in device["deployments"]] == [dep]
    assert (await _edge_state(api))["deployments"].get("ready") == 1

    r = await api.client.delete(f"/v1/deployments/{dep}", headers=api.bearer("read"))
    assert r.status_code == 403  # reading is not changing

    r = await api.client.delete(f"/v1/deployments/{dep}", headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "removed"
    r = await api.client.delete(f"/v1/deployments/{dep}", headers=api.admin)
    assert r.status_code == 409
    assert "only a ready one" in r.json()["error"]["reason"]


BAD_DEVICES: list[tuple[Any, int, str]] = [
    ({"device_id": 5, "emulate": "desktop"}, 422, "device_id"),
    ({"device_id": "x", "emulate": "desktop", "extra": 1}, 422, "extra"),
    ({"device_id": "x"}, 422, "exactly one"),
    ({"device_id": "x", "emulate": "desktop", "profile": {}}, 422, "exactly one"),
    ({"device_id": "x", "emulate": "toaster"}, 422, "unknown emulation preset"),
    ({"device_id": "x", "emulate": "/etc/passwd"}, 422, "unknown emulation preset"),
    ({"device_id": "bad id!", "emulate": "desktop"}, 422, "device_id"),
    ({"device_id": "x", "profile": {"battery_percent": 150}}, 422, "battery_percent"),
    ({"device_id": "x", "profile": {"warp_drive": True}}, 422, "warp_drive"),
    ({"device_id": "x", "profile": {"capabilities": 3}}, 422, "capabilities"),
    ({"device_id": "x", "profile": {"device_type": "toaster"}}, 422, "profile"),
    ({"device_id": "x", "emulate": "desktop", "device_type": "toaster"}, 422, "device_type"),
    ({"device_id": "x", "emulate": "desktop", "labels": {"a": 1}}, 422, "labels"),
    ([1, 2], 422, "body"),
]


@pytest.mark.parametrize(("body", "status", "says"), BAD_DEVICES)
async def test_bad_registrations_are_refused_and_change_nothing(
    api: Api, body: Any, status: int, says: str
) -> None:
    r = await api.client.post("/v1/edge/devices", json=body, headers=api.admin)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["reason"]
    assert (await _edge_state(api))["devices"]["total"] == 0
    assert (await api.client.get("/v1/devices", headers=api.admin)).json()["devices"] == []


async def test_malformed_json_and_missing_or_wrong_tickets(api: Api) -> None:
    for path in ("/v1/edge/devices", "/v1/deployments", "/v1/edge/devices/x/state"):
        r = await api.client.post(
            path,
            content=b'{"device_id": ',
            headers={**api.admin, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    good = {"device_id": "x", "emulate": "desktop"}
    r = await api.client.post("/v1/edge/devices", json=good)
    assert r.status_code == 401
    r = await api.client.post("/v1/edge/devices", json=good, headers=api.bearer("read"))
    assert r.status_code == 403
    r = await api.client.post("/v1/edge/devices", json=good, headers=api.bearer("submit"))
    assert r.status_code == 403
    r = await api.client.post(
        "/v1/edge/devices", json=good, headers={"Authorization": "Bearer forged.ticket"}
    )
    assert r.status_code == 401
    for path in ("/v1/models", "/v1/edge/status", "/v1/edge/devices/x", "/v1/deployments/d"):
        assert (await api.client.get(path)).status_code == 401, path
    assert (await _edge_state(api))["devices"]["total"] == 0


async def test_unknown_ids_are_404(api: Api) -> None:
    for path in ("/v1/edge/devices/ghost", "/v1/deployments/dep-ghost"):
        r = await api.client.get(path, headers=api.admin)
        assert r.status_code == 404, r.text
        assert "ghost" in r.json()["error"]["reason"]
    r = await api.client.delete("/v1/deployments/dep-ghost", headers=api.admin)
    assert r.status_code == 404
    r = await api.client.post(
        "/v1/edge/devices/ghost/state",
        json={"profile": PRESETS["desktop"].to_dict()},
        headers=api.admin,
    )
    assert r.status_code == 404
    r = await api.client.post(
        "/v1/deployments", json={"device_id": "ghost", "model_id": "m"}, headers=api.admin
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "device_not_found"


async def test_bad_deployments_are_refused_and_change_nothing(api: Api) -> None:
    await _register(api)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"device_id": "lap", "model_id": "nope"}, 404, "unknown model"),
        ({"device_id": "lap", "model_id": "../etc"}, 422, "model_id"),
        ({"device_id": "lap", "model_id": "tutor_agent_v1", "deployment_type": "x"}, 422, "type"),
        ({"device_id": "lap", "model_id": 7}, 422, "model_id"),
        ({"device_id": "lap"}, 422, "model_id"),
        ({"device_id": "lap", "model_id": "tutor_agent_v1", "force": True}, 422, "force"),
    ]
    for body, status, says in cases:
        r = await api.client.post("/v1/deployments", json=body, headers=api.admin)
        assert r.status_code == status, (body, r.text)
        assert says in r.json()["error"]["reason"], (body, r.text)
    r = await api.client.post(
        "/v1/deployments",
        json={"device_id": "lap", "model_id": "tutor_agent_v1"},
        headers=api.bearer("submit"),
    )
    assert r.status_code == 403
    assert (await _edge_state(api))["deployments"] == {} or not any(
        (await _edge_state(api))["deployments"].values()
    )
    r = await api.client.post(
        "/v1/edge/devices/lap/state", json={"profile": {"cpu_temp_c": "hot"}}, headers=api.admin
    )
    assert r.status_code == 422
