"""POST/GET /v1/knowledge: the coordinator's global store for elevated twin knowledge."""

from __future__ import annotations

from typing import Any

from server_helpers import Api

from fogmesh.clock import ManualClock
from fogmesh.twin.elevation import elevate
from fogmesh.twin.privacy import PrivacyAccountant


def contribution(**changes: Any) -> dict[str, Any]:
    body = {
        "topic": "morning run",
        "noisy_count": 3.4,
        "epsilon": 0.1,
        "mechanism": "laplace",
        "consent": True,
    }
    body.update(changes)
    return body


def agent(api: Api, device: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.ticket('agent', subject=device)}"}


async def test_items_publish_only_once_k_distinct_devices_offered_them(api: Api) -> None:
    k = api.service.knowledge.k
    for i in range(k - 1):
        r = await api.client.post("/v1/knowledge", json=contribution(), headers=agent(api, f"d{i}"))
        assert r.status_code == 202, r.text
    # One device repeating itself does not make k.
    for _ in range(3):
        await api.client.post("/v1/knowledge", json=contribution(), headers=agent(api, "d0"))
    seen = await api.client.get("/v1/knowledge", headers=api.bearer("read"))
    assert seen.json()["items"] == []

    await api.client.post("/v1/knowledge", json=contribution(), headers=agent(api, "last"))
    items = (await api.client.get("/v1/knowledge", headers=api.bearer("read"))).json()["items"]
    assert [(i["topic"], i["contributors"]) for i in items] == [("morning run", k)]


async def test_contributions_without_consent_anonymity_or_noise_are_refused(api: Api) -> None:
    device = agent(api, "d1")
    cases = [
        (contribution(consent=False), 400, "no_consent"),
        (contribution(topic="call ann@example.com"), 400, "twin_error"),
        (contribution(mechanism="none"), 422, None),
        (contribution(epsilon=0), 422, None),
        (contribution(extra="x"), 422, None),
    ]
    for body, status, code in cases:
        r = await api.client.post("/v1/knowledge", json=body, headers=device)
        assert r.status_code == status, (body, r.text)
        if code is not None:
            assert r.json()["error"]["code"] == code
    assert api.service.knowledge.to_state() == {}


async def test_only_agent_tickets_may_contribute(api: Api) -> None:
    r = await api.client.post("/v1/knowledge", json=contribution(), headers=api.bearer("read"))
    assert r.status_code == 403
    r = await api.client.post("/v1/knowledge", json=contribution())
    assert r.status_code == 401


async def test_a_twin_elevates_through_the_endpoint(api: Api) -> None:
    device = agent(api, "phone-7")
    posted: list[int] = []

    def http_sink(item: Any) -> None:
        posted.append(item.to_dict()["noisy_count"] is not None)

    accountant = PrivacyAccountant("balanced", clock=ManualClock())
    sent = elevate(
        {"evening yoga": 4},
        contributor="pseudonym",
        consent=True,
        accountant=accountant,
        sink=http_sink,
        epsilon_each=0.1,
    )
    for item in sent:
        body = {k: v for k, v in item.to_dict().items() if k != "contributor"}
        r = await api.client.post("/v1/knowledge", json=body, headers=device)
        assert r.status_code == 202, r.text
    assert posted == [True]
    assert "evening yoga" in api.service.knowledge.to_state()
