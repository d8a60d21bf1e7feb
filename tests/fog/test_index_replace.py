"""The snapshot's fast paths leave exactly the state the plain ones would.

``NodeIndex.replace`` stands for ``remove`` + ``add`` and ``NodeView.with_task``/``without_tasks``
for ``replace(running=...)``. Sampling draws by position in the index's lists and reads the
groups in dict order, so "the same state" includes every order, not just the same members.
"""

from __future__ import annotations

import random
from typing import Any

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType
from fogmesh.fog.scheduler import ClusterSnapshot, NodeView, PowerSource, RunningTask
from fogmesh.fog.scheduler.index import NodeIndex
from fogmesh.fog.scheduler.pipeline import Pipeline
from fogmesh.fog.scheduler.snapshot import NodeView as _NodeView
from fogmesh.fog.tasks import Task, TaskPriority, TaskResources, TaskType
from fogmesh.mobile.policy import ResourcePolicy, evaluate

_TYPES = [DeviceType.SMARTPHONE, DeviceType.LAPTOP, DeviceType.DESKTOP]
_SLOTS = [name for cls in type.mro(_NodeView) for name in getattr(cls, "__slots__", ())]


def _random_node(rng: random.Random, did: str) -> NodeView:
    cores = rng.choice([2, 4, 8])
    running = [
        RunningTask(f"{did}-t{i}", TaskPriority.NORMAL, rng.choice([0.5, 1.0, 2.0]), 256, 0.0, 60.0)
        for i in range(rng.randrange(4))
    ]
    power = rng.choice(list(PowerSource))
    return NodeView(
        did,
        device_type=rng.choice(_TYPES),
        cpu_cores=cores,
        memory_mb=rng.choice([2048, 4096]),
        has_gpu=rng.random() < 0.2,
        power=power,
        battery_percent=None if power is PowerSource.MAINS else rng.uniform(0, 100),
        site=rng.choice([None, "a", "b"]),
        speed=1.0,
        deployed_models=rng.choice([(), ("m1",), ("m1", "m2")]),
        running=running,
        battery_wh=None if power is PowerSource.MAINS else 20.0,
        fog_w_per_core=None if power is PowerSource.MAINS else 0.5,
    )


def _state(index: NodeIndex) -> Any:
    def groups(d: dict[Any, Any]) -> list[Any]:
        return [(k, [n.device_id for n in g.items], dict(g.pos)) for k, g in d.items()]

    return (
        [(did, id(n)) for did, n in index.nodes.items()],
        dict(index.key_of),
        groups(index.buckets),
        groups(index.by_site),
        groups(index.by_type),
        groups(index.by_model),
        [n.device_id for n in index.gpu.items],
        [id(n) for g in index.buckets.values() for n in g.items],
        index.slot_room,
    )


def test_replace_is_remove_then_add_in_every_order() -> None:
    rng = random.Random(7)
    fast, plain = NodeIndex(), NodeIndex()
    ids = [f"d{i}" for i in range(12)]
    for did in ids:
        node = _random_node(rng, did)
        fast.add(node)
        plain.add(node)
    for _ in range(3000):
        did = rng.choice(ids)
        old = fast.nodes[did]
        # Often the same shape with other leases (the common case), sometimes a new device.
        node = old.without_tasks([t.task_id for t in old.running[:1]])
        if rng.random() < 0.4:
            node = _random_node(rng, did)
        fast.replace(old, node)
        plain.remove(old)
        plain.add(node)
        assert _state(fast) == _state(plain)


def test_with_and_without_tasks_equal_a_full_rebuild() -> None:
    rng = random.Random(3)
    # A warm phone: a CPU cap below 100 %, a memory budget and a slot cap, all carried over.
    profile = DeviceProfile(
        device_id="x",
        device_type=DeviceType.SMARTPHONE,
        capabilities=DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=6144, has_battery=True),
        battery_percent=35.0,
        charging=False,
        cpu_temp_c=50.0,
    )
    opt = evaluate(profile, ResourcePolicy())
    assert opt.cpu_limit_percent < 100
    for i in range(200):
        node = _random_node(rng, f"n{i}").replace(optimization=opt if i % 2 else None)
        task = RunningTask(f"extra{i}", TaskPriority.LOW, 1.0, 128, 5.0, 30.0)
        pairs = [
            (node.with_task(task), node.replace(running=(*node.running, task))),
            (node.without_tasks(["nope", f"n{i}-t0"]), node.replace(running=node.running[1:])),
        ]
        for fast, plain in pairs:
            assert type(fast) is NodeView
            for name in _SLOTS:
                assert getattr(fast, name) == getattr(plain, name), name


def test_upsert_of_a_known_device_keeps_the_snapshot_consistent() -> None:
    rng = random.Random(11)
    snap = ClusterSnapshot([_random_node(rng, f"d{i}") for i in range(5)])
    for _ in range(200):
        snap.upsert(_random_node(rng, f"d{rng.randrange(5)}"))
    assert len(snap) == 5
    index = snap.index
    for did, node in index.nodes.items():
        key = index.key_of[did]
        if key is not None:
            group = index.buckets[key]
            assert group.items[group.pos[did]] is node
        by_type = index.by_type[node.device_type]
        assert by_type.items[by_type.pos[did]] is node
    assert all(g.items for g in index.buckets.values())


def test_task_needs_carry_over_to_the_next_call_only_for_the_same_task() -> None:
    pipe = Pipeline()
    snap = ClusterSnapshot([_random_node(random.Random(1), "d0")])
    task = Task(id="t", type=TaskType.INFERENCE, resources=TaskResources(cpu_cores=64.0))
    pipe.place(snap, [task], 0.0)  # refused (no device has 64 cores), so offered again
    need = pipe._needs["t"][1]
    assert need.cpu == 64.0
    pipe.place(snap, [task], 30.0)
    assert pipe._needs["t"][1] is need  # the backlog is not unpacked again
    # Same id, another Task (a retry with a new attempt): unpacked again, never served stale.
    again = Task(id="t", type=TaskType.INFERENCE, resources=TaskResources(cpu_cores=32.0))
    pipe.place(snap, [again], 60.0)
    kept = pipe._needs["t"][1]
    assert kept.cpu == 32.0
    pipe.place(snap, [], 90.0)
    pipe.place(snap, [again], 120.0)  # a call without it in between: the memo let it go
    assert pipe._needs["t"][1] is not kept
