"""A REST device profile's ``accepts`` (what its agent runs) follows the same rules as the
agent link's: an empty module prefix is a 422, not a store failure."""

from __future__ import annotations

from server_helpers import Api

PROFILE = {
    "device_type": "laptop",
    "capabilities": {"cpu_cores_logical": 1, "ram_total_mb": 1},
    "accepts": {"python_modules": [""], "commands": False, "models": False},
}


async def test_an_empty_module_prefix_in_a_rest_profile_is_refused_with_a_reason(
    api: Api,
) -> None:
    body = {"device_id": "d0", "device_name": "d0", "profile": PROFILE}
    r = await api.client.post("/v1/edge/devices", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert "python_modules" in r.json()["error"]["reason"]
