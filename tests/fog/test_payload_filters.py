"""The payload and refusal filters, table-driven: what a device's agent accepts, and what a
device already refused, with the verdict, its code and its reason text per row."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from fogmesh.devices.emulated import preset
from fogmesh.devices.model import Accepts
from fogmesh.errors import StoreError
from fogmesh.fog.scheduler import (
    PASS,
    ClusterSnapshot,
    NodeView,
    Reservations,
    SchedulerConfig,
    TaskNeed,
    place,
)
from fogmesh.fog.scheduler.base import VerdictKind
from fogmesh.fog.scheduler.filters import PayloadFilter, RefusedFilter
from fogmesh.fog.tasks import (
    AttemptRecord,
    CommandPayload,
    ModelPayload,
    Payload,
    PythonPayload,
    Task,
    TaskType,
    payload_refusal,
)
from fogmesh.store.base import profile_from_dict
from fogmesh.wire.messages import Register, decode, encode

CFG = SchedulerConfig()
WORKLOADS = Accepts(python_modules=("fogmesh.agent.workloads", "mylab"), models=True)
EVERYTHING = Accepts(python_modules=("fogmesh", "mylab"), commands=True, models=True)
NOTHING = Accepts()
ECHO = PythonPayload("fogmesh.agent.workloads:echo")
SUB = PythonPayload("mylab.sub.mod:run")
LOOKALIKE = PythonPayload("mylabs:run")  # a prefix of the name, not of its dotted path
OS = PythonPayload("os:system")
CMD = CommandPayload(["true"])
MODEL = ModelPayload("tiny")


def task(payload: Payload | None, history: tuple[AttemptRecord, ...] = ()) -> Task:
    return Task(
        id="t1", type=TaskType.INFERENCE, payload=payload, attempt=len(history), history=history
    )


def need(payload: Payload | None, history: tuple[AttemptRecord, ...] = ()) -> TaskNeed:
    return TaskNeed(task(payload, history), CFG)


def node(device_id: str = "n1", **kw: Any) -> NodeView:
    return NodeView(device_id, cpu_cores=4, memory_mb=4096, **kw)


def ended(device_id: str, outcome: str, at: float, reason: str, attempt: int = 1) -> AttemptRecord:
    return AttemptRecord(
        attempt=attempt,
        device_id=device_id,
        placed_at=at - 0.01,
        ended_at=at,
        outcome=outcome,
        reason=reason,
    )


PAYLOAD_CASES: list[tuple[str, Accepts | None, Payload | None, Any]] = [
    ("agent that did not say takes anything", None, OS, PASS),
    ("allow-listed module", WORKLOADS, ECHO, PASS),
    ("submodule of an allowed prefix", WORKLOADS, SUB, PASS),
    ("module not allowed", WORKLOADS, OS,
     ("never", "not_allowed", "module 'os' is not in the device's allow-list")),
    ("a longer name is not a submodule", WORKLOADS, LOOKALIKE,
     ("never", "not_allowed", "module 'mylabs' is not in the device's allow-list")),
    ("commands disabled", WORKLOADS, CMD,
     ("never", "commands_disabled", "the device does not run command payloads")),
    ("commands enabled", EVERYTHING, CMD, PASS),
    ("model runtime present", WORKLOADS, MODEL, PASS),
    ("no model runtime", NOTHING, MODEL,
     ("never", "models_unsupported", "the device does not run model payloads")),
    ("no payload", NOTHING, None, PASS),
]  # fmt: skip


@pytest.mark.parametrize(
    ("accepts", "payload", "expected"),
    [c[1:] for c in PAYLOAD_CASES],
    ids=[c[0] for c in PAYLOAD_CASES],
)
def test_payload_filter_table(
    accepts: Accepts | None, payload: Payload | None, expected: Any
) -> None:
    verdict = PayloadFilter().check(node(accepts=accepts), need(payload), Reservations())
    if expected is PASS:
        assert verdict is PASS
    else:
        assert (verdict.kind.value, verdict.code, verdict.text) == expected


REFUSED_CASES: list[tuple[str, tuple[AttemptRecord, ...], float, Any]] = [
    ("never refused", (), 0.0, PASS),
    ("refused the payload: never again", (ended("n1", "not_accepted", 5.0, "module 'x'"),), 99.0,
     ("never", "refused", "device refused this task: module 'x'")),
    ("another device refused it", (ended("n2", "not_accepted", 5.0, "module 'x'"),), 0.0, PASS),
    # "not now" (its policy): back once the device has reported a reading newer than that
    ("refused now, no newer reading", (ended("n1", "refused", 5.0, "battery 5%"),), 5.0,
     ("not_now", "declined",
      "device refused this task at 5.000 (battery 5%); waiting for a newer reading from it")),
    ("refused now, newer reading since", (ended("n1", "refused", 5.0, "battery 5%"),), 5.5, PASS),
    ("lost on it: not a refusal", (ended("n1", "lost", 5.0, "missed heartbeats"),), 0.0, PASS),
    ("latest refusal of the device counts",
     (ended("n1", "refused", 5.0, "busy"), ended("n1", "refused", 9.0, "hot", attempt=2)), 6.0,
     ("not_now", "declined",
      "device refused this task at 9.000 (hot); waiting for a newer reading from it")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "seen_at", "expected"),
    [c[1:] for c in REFUSED_CASES],
    ids=[c[0] for c in REFUSED_CASES],
)
def test_refused_filter_table(
    history: tuple[AttemptRecord, ...], seen_at: float, expected: Any
) -> None:
    n = need(ECHO, history)
    flt = RefusedFilter()
    assert flt.applies(n) is bool([h for h in history if h.outcome in ("refused", "not_accepted")])
    verdict = flt.check(node(seen_at=seen_at), n, Reservations())
    if expected is PASS:
        assert verdict is PASS
    else:
        assert (verdict.kind.value, verdict.code, verdict.text) == expected


def test_place_skips_a_device_that_does_not_accept_and_explains_why() -> None:
    fleet = ClusterSnapshot(
        [
            node("a-strict", accepts=Accepts(python_modules=("fogmesh.agent.workloads",))),
            node("b-lab", accepts=WORKLOADS),
        ]
    )
    plan = place(fleet, [task(SUB)], 0.0, config=CFG)
    assert [p.device_id for p in plan.placements] == ["b-lab"]
    # Nowhere accepts it: unplaced, and the reason names the allow-list.
    plan = place(fleet, [task(OS)], 0.0, config=CFG)
    assert not plan.placements
    (unplaced,) = plan.unplaced
    assert "not in the device's allow-list" in unplaced.explain()
    assert {r.code for r in unplaced.rejected} == {"not_allowed"}


def test_tasks_of_one_shape_but_other_modules_are_judged_apart() -> None:
    # The scheduler caches "fits nowhere" per task shape; the module must be part of it.
    fleet = ClusterSnapshot([node("lab", accepts=WORKLOADS)])
    plan = place(fleet, [task(OS), msgspec.structs.replace(task(ECHO), id="t2")], 0.0, config=CFG)
    assert [p.task_id for p in plan.placements] == ["t2"]


def test_a_task_refused_by_one_device_goes_to_another() -> None:
    fleet = ClusterSnapshot([node("a", seen_at=1.0), node("b", seen_at=1.0)])
    refused = task(ECHO, (ended("a", "not_accepted", 2.0, "module not allowed"),))
    for seed in range(20):  # whatever the sample order
        plan = place(fleet, [refused], 3.0, config=CFG, rng_seed=seed)
        assert [p.device_id for p in plan.placements] == ["b"]


# -- the advertisement: in the profile, over the wire, and what a malformed one gives ----------


def test_accepts_travels_in_the_profile_and_an_old_profile_has_none() -> None:

    profile = preset("desktop").replace(device_id="d1", accepts=WORKLOADS)
    sent = decode(encode(Register(profile=profile.to_dict())))
    assert isinstance(sent, Register)
    assert profile_from_dict(sent.profile).accepts == WORKLOADS
    old = profile.to_dict()
    del old["accepts"]  # an agent from before the field: placed as before
    assert profile_from_dict(old).accepts is None


@pytest.mark.parametrize(
    "bad",
    [
        {"python_modules": "fogmesh"},
        {"python_modules": [["x"]]},
        {"python_modules": [""]},
        {"python_modules": ["m"] * 257},
        {"commands": "yes"},
        ["fogmesh"],
    ],
)
def test_a_malformed_accepts_is_a_clear_error(bad: object) -> None:

    data = {**preset("desktop").replace(device_id="d1").to_dict(), "accepts": bad}
    with pytest.raises(StoreError, match="accepts"):
        profile_from_dict(data)  # the agent endpoint answers it as a protocol error


@pytest.mark.parametrize("accepts", [None, WORKLOADS, EVERYTHING, NOTHING])
@pytest.mark.parametrize("payload", [ECHO, SUB, LOOKALIKE, OS, CMD, MODEL])
def test_the_filters_fast_answers_agree_with_payload_refusal(
    accepts: Accepts | None, payload: Payload
) -> None:
    # PayloadFilter answers the common cases without building a reason (it runs per candidate
    # device): whatever it answers must be what the agent's own rule, payload_refusal, says.
    verdict = PayloadFilter().check(node(accepts=accepts), need(payload), Reservations())
    refusal = None if accepts is None else payload_refusal(accepts, payload)
    if refusal is None:
        assert verdict is PASS
    else:
        assert (verdict.kind, verdict.code) == (VerdictKind.NEVER, refusal[0])
