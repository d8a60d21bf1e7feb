"""Payload identifiers that end up as file or module names are checked at intake: a bad model id
(``../x``) or function name is a 4xx at every door (REST single, REST batch), nothing stored —
never accepted and then left to hang on an agent."""

from __future__ import annotations

import pytest
from server_helpers import Api

TASK = {"type": "inference", "cpu_cores": 0.5, "memory_mb": 64, "estimated_duration": 2}

BAD = [
    ({"payload": {"type": "model", "model_id": "../x"}}, "model id '../x'"),
    ({"payload": {"type": "model", "model_id": "a/b"}}, "model id 'a/b'"),
    ({"payload": {"type": "model", "model_id": ""}}, "model_id"),
    ({"payload": {"type": "model", "model_id": "tiny\n"}}, "model id 'tiny\\n'"),
    ({"payload": {"type": "model", "model_id": "x" * 129}}, "1–128 characters"),
    ({"constraints": {"requires_model": "../../etc/passwd"}}, "model id '../../etc/passwd'"),
    ({"payload": {"type": "python", "function": "../evil:run"}}, "'module:function'"),
    ({"payload": {"type": "python", "function": "fogmesh.agent.workloads:_x"}}, "public"),
    ({"payload": {"type": "python", "function": "os.path:"}}, "'module:function'"),
]


@pytest.mark.parametrize(("extra", "fragment"), BAD, ids=[b[1] for b in BAD])
async def test_bad_identifiers_are_422_single_and_batch(
    api: Api, extra: dict[str, object], fragment: str
) -> None:
    body = {**TASK, **extra}
    r = await api.client.post("/v1/tasks", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["reason"]
    r = await api.client.post("/v1/tasks/batch", json={"tasks": [TASK, body]}, headers=api.admin)
    assert r.status_code == 422, r.text
    reason = r.json()["error"]["reason"]
    assert ("task 1" in reason or "tasks.1" in reason) and fragment in reason
    assert sum((await api.service.coordinator.store.count_by_state()).values()) == 0


async def test_good_identifiers_are_accepted(api: Api) -> None:
    for payload in (
        {"type": "model", "model_id": "resnet-18.int8_v2"},
        {"type": "python", "function": "fogmesh.agent.workloads:echo"},
    ):
        r = await api.client.post("/v1/tasks", json={**TASK, "payload": payload}, headers=api.admin)
        assert r.status_code in (200, 201), r.text
