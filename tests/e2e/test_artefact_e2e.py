"""A result over the 1 MiB inline limit travels as an artefact: chunks over the Noise link, a
digest check at the coordinator, a download that matches what the workload computes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from e2e_helpers import Fog, wait_until

from fogmesh.agent.workloads.basic import blob

pytestmark = pytest.mark.slow


def test_a_big_result_is_stored_as_an_artefact_and_downloads_intact(fog: Fog) -> None:
    fog.start_coordinator()
    fog.start_agent("desk")
    wait_until(lambda: [d for d in fog.devices() if d["connected"]] or None, 60, "the agent")
    big = fog.submit("fogmesh.agent.workloads:blob", {"kib": 2048, "seed": 7})
    small = fog.submit("fogmesh.agent.workloads:blob", {"kib": 4, "seed": 7})

    def done(task_id: str) -> dict[str, Any] | None:
        task = fog.task(task_id)
        return task if task["state"] in ("completed", "failed") else None

    task = wait_until(lambda: done(big), 60, "the big task")
    assert task["state"] == "completed", task
    ref = task["result"]["artefact"]
    r = fog.api("GET", ref["url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert len(r.content) == ref["bytes"] > 1 << 20
    assert hashlib.sha256(r.content).hexdigest() == ref["sha256"]
    assert json.loads(r.content) == blob(kib=2048, seed=7)  # recomputed here

    inline = wait_until(lambda: done(small), 60, "the small task")
    assert inline["result"] == blob(kib=4, seed=7)  # small results stay inline
    assert fog.api("GET", f"/v1/tasks/{small}/artefact").status_code == 404
    assert fog.api("GET", "/v1/tasks/01NOSUCHTASK/artefact").status_code == 404
