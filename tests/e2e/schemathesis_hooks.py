"""schemathesis hooks for tests/e2e/test_openapi_conformance_e2e.py (loaded via
SCHEMATHESIS_HOOKS), applied to every case just before it is sent, in every phase.

They apply the one rule the schema states in words because JSON Schema cannot compare with the
clock: a task's ``deadline`` must lie ahead, so a generated one already past is moved an hour
ahead of now (values that break the schema — ≤ 0, not a number — are left as generated). And a
long poll's ``wait`` is kept under a second so the run stays short (any value 0–60 is valid;
longer ones only wait longer).
"""

from __future__ import annotations

import time
from typing import Any

import schemathesis

_MAX_WAIT_S = 0.5


def _future_deadline(task: Any) -> None:
    if isinstance(task, dict):
        deadline = task.get("deadline")
        number = isinstance(deadline, int | float) and not isinstance(deadline, bool)
        if number and 0 < deadline <= time.time() + 60:
            task["deadline"] = time.time() + 3600.0


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    body = case.body
    if isinstance(body, dict):
        _future_deadline(body)
        tasks = body.get("tasks")
        if isinstance(tasks, list):
            for task in tasks:
                _future_deadline(task)
    query = case.query
    if isinstance(query, dict):
        wait = query.get("wait")
        try:
            long = float(wait) > _MAX_WAIT_S  # generated as a number or as query text
        except (TypeError, ValueError):
            long = False
        if long and not isinstance(wait, bool):
            query["wait"] = _MAX_WAIT_S
