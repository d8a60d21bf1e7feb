"""The REST edge of a real coordinator process under a failing store and half-sent requests."""

from __future__ import annotations

import resource

import httpx
from e2e_helpers import Fog, wait_until

TASK = {"type": "preprocessing", "payload": {"type": "python", "function": "m:f", "args": {}}}


def test_a_failing_store_is_503_with_a_plain_reason_and_healthz_says_degraded(fog: Fog) -> None:
    fog.start_coordinator()
    pid = fog.procs["coordinator"].pid
    assert fog.api("POST", "/v1/tasks", json=TASK).status_code == 201
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    # The coordinator may no longer write past the first byte of any file: SQLite's writes fail
    # with EFBIG as they would on a full disk (Python ignores SIGXFSZ), reads still work.
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        r = fog.api("POST", "/v1/tasks", json=TASK)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        error = r.json()["error"]
        assert error["code"] == "store_unavailable"
        for leak in ("sqlite", "SQL", "INSERT", "OperationalError", "I/O"):
            assert leak not in error["reason"], error
        r = fog.api("POST", "/v1/tasks/batch", json={"tasks": [TASK, TASK]})
        assert r.status_code == 503, r.text
        health = httpx.get(f"{fog.url}/healthz", timeout=10)
        assert health.status_code == 503, health.text
        assert health.json()["status"] == "degraded" and health.json()["store"] == "failing"
        assert health.headers["retry-after"] == "5"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

    def healthy() -> bool:
        return httpx.get(f"{fog.url}/healthz", timeout=10).status_code == 200

    wait_until(healthy, 30, "the coordinator to report a healthy store again")
    assert fog.api("POST", "/v1/tasks", json=TASK).status_code == 201
    tasks = fog.api("GET", "/v1/tasks").json()["tasks"]
    assert len(tasks) == 2  # the refused submits left nothing behind
