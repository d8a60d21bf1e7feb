"""Scheduler throughput and decision latency at 1k, 10k and 100k devices.

Prints one JSON object per line: {"bench", "value", "unit", "baseline", "ratio"}. The baseline
is the same pipeline with sampling switched off (``sample_k=None``: every device filtered and
scored), measured in the same run; ``ratio`` is value / baseline. Targets (issue 3): ≥ 5,000
placements/s with p99 ≤ 2 ms at 10k devices, ≥ 1,000 placements/s at 100k. A benchmark, not a
test: it asserts nothing.

The fleet is synthetic but shaped like a household-to-campus fog: phones, tablets, laptops,
desktops and Pis with mixed power, heat, GPUs, sites and deployed models, about a third of
their capacity already leased. Tasks mix priorities, sizes and constraints. Between decisions the
plan is committed (``snapshot.apply``) and old work finishes, so the fleet stays in a steady
state instead of filling up; that bookkeeping is not timed.

    python benchmarks/bench_scheduler.py            # 1k, 10k, 100k
    python benchmarks/bench_scheduler.py --quick    # 1k, 10k only
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections import deque

from fogmesh.devices.model import DeviceType, NetworkType
from fogmesh.fog.scheduler import (
    ClusterSnapshot,
    NodeView,
    Plan,
    PowerSource,
    RunningTask,
    SchedulerConfig,
    place,
)
from fogmesh.fog.tasks import (
    ModelPayload,
    Task,
    TaskConstraints,
    TaskPriority,
    TaskResources,
    TaskType,
)
from fogmesh.mobile.policy import (
    ChunkingConfig,
    PowerMode,
    ResourceOptimization,
    TransportPreference,
)

SITES = [f"site{i}" for i in range(20)]
MODELS = [f"model{i}" for i in range(10)]
_TYPES = [
    (DeviceType.SMARTPHONE, 0.40, (4, 8), (3072, 6144)),
    (DeviceType.TABLET, 0.10, (4, 8), (4096, 8192)),
    (DeviceType.LAPTOP, 0.25, (4, 16), (8192, 32768)),
    (DeviceType.DESKTOP, 0.15, (8, 32), (16384, 65536)),
    (DeviceType.RASPBERRY_PI, 0.10, (4, 4), (2048, 8192)),
]


def _optimization(power: PowerSource, battery: float | None, temp: float) -> ResourceOptimization:
    """A rough stand-in for mobile.policy: the scheduler only reads the result."""
    if power is PowerSource.BATTERY and battery is not None and battery <= 10:
        mode, cpu, tasks, mem = PowerMode.CRITICAL, 20.0, 0, 256
    elif (power is PowerSource.BATTERY and battery is not None and battery <= 20) or temp >= 55:
        mode, cpu, tasks, mem = PowerMode.POWER_SAVE, 35.0, 1, 512
    elif power is PowerSource.BATTERY:
        mode, cpu, tasks, mem = PowerMode.BALANCED, 60.0, 4, None
    else:
        mode, cpu, tasks, mem = PowerMode.PERFORMANCE, 100.0, 8, None
    return ResourceOptimization(
        power_mode=mode,
        cpu_limit_percent=cpu,
        memory_limit_mb=mem,
        max_concurrent_tasks=tasks,
        chunking_config=ChunkingConfig(),
        transport_preference=TransportPreference.BALANCED,
        reasons=(),
    )


def make_fleet(n: int, rng: random.Random) -> list[NodeView]:
    kinds = list(_TYPES)
    weights = [t[1] for t in _TYPES]
    nodes = []
    for i in range(n):
        dtype, _, cores, ram = rng.choices(kinds, weights)[0]
        if dtype in (DeviceType.DESKTOP, DeviceType.RASPBERRY_PI):
            power, battery = PowerSource.MAINS, None
        else:
            power = rng.choices([PowerSource.BATTERY, PowerSource.CHARGING], [0.7, 0.3])[0]
            battery = rng.uniform(5, 100)
        temp = rng.gauss(45, 8)
        cpu_cores = rng.choice([c for c in (1, 2, 4, 8, 16, 32) if cores[0] <= c <= cores[1]])
        memory = rng.choice([m for m in (2048, 3072, 4096, 6144, 8192, 16384, 32768, 65536)
                             if ram[0] <= m <= ram[1]])  # fmt: skip
        opt = _optimization(power, battery, temp)
        running = []
        budget = cpu_cores * opt.cpu_limit_percent / 100 * rng.uniform(0.0, 0.6)
        j = 0
        while budget >= 0.5 and j < opt.max_concurrent_tasks - 1:
            cpu = rng.choice([0.5, 1.0])
            running.append(RunningTask(f"pre-{i}-{j}", TaskPriority.LOW, cpu, 256))
            budget -= cpu
            j += 1
        nodes.append(
            NodeView(
                f"dev{i:06d}",
                device_type=dtype,
                cpu_cores=cpu_cores,
                memory_mb=memory,
                has_gpu=dtype in (DeviceType.DESKTOP, DeviceType.LAPTOP) and rng.random() < 0.3,
                power=power,
                battery_percent=battery,
                cpu_temp_c=temp,
                network_type=NetworkType.CELLULAR
                if dtype is DeviceType.SMARTPHONE and rng.random() < 0.3
                else NetworkType.WIFI,
                site=rng.choice(SITES),
                network=f"net{rng.randrange(200)}",
                speed=rng.uniform(0.5, 2.0),
                deployed_models=rng.sample(MODELS, rng.randrange(3)),
                optimization=opt,
                running=running,
            )
        )
    return nodes


def make_tasks(n: int, rng: random.Random, start: int, now: float) -> list[Task]:
    out = []
    prios = list(TaskPriority)
    for i in range(start, start + n):
        r = rng.random()
        constraints = TaskConstraints()
        payload = None
        gpu = False
        if r < 0.05:
            gpu = True
        elif r < 0.10:
            constraints = TaskConstraints(site=rng.choice(SITES))
        elif r < 0.13:
            constraints = TaskConstraints(requires_model=rng.choice(MODELS))
        elif r < 0.20:
            constraints = TaskConstraints(requires_charging=True)
        elif r < 0.30:
            payload = ModelPayload(rng.choice(MODELS))
        out.append(
            Task(
                id=f"task{i:08d}",
                type=TaskType.INFERENCE,
                priority=rng.choices(prios, [0.3, 0.4, 0.25, 0.05])[0],
                resources=TaskResources(
                    cpu_cores=rng.choice([0.25, 0.5, 1.0, 2.0]),
                    memory_mb=rng.choice([128, 256, 512, 1024]),
                    requires_gpu=gpu,
                    estimated_duration=rng.choice([5.0, 30.0, 120.0, 900.0]),
                    input_mb=rng.choice([0.0, 0.0, 1.0, 50.0]),
                ),
                constraints=constraints,
                payload=payload,
                created_at=now - rng.uniform(0, 120),
            )
        )
    return out


class Steady:
    """Commit plans, and finish old work so the fleet neither fills up nor empties."""

    def __init__(self, snapshot: ClusterSnapshot, keep: int) -> None:
        self.snapshot = snapshot
        self.live: deque[tuple[str, str]] = deque()
        self.keep = keep

    def commit(self, plan: Plan, now: float) -> None:
        self.snapshot.apply(plan, now)
        self.live.extend((p.device_id, p.task_id) for p in plan.placements)
        while len(self.live) > self.keep:
            device_id, task_id = self.live.popleft()
            self.snapshot.release(device_id, [task_id])


def run_case(
    n: int, config: SchedulerConfig, decisions: int, batch: int, seed: int
) -> dict[str, float]:
    rng = random.Random(seed)
    snapshot = ClusterSnapshot(make_fleet(n, rng))
    steady = Steady(snapshot, keep=max(50, n // 10))
    now = 10_000.0
    made = 0

    # latency: one task per place() call
    latencies = []
    for i in range(decisions):
        tasks = make_tasks(1, rng, made, now)
        made += 1
        t0 = time.perf_counter()
        plan = place(snapshot, tasks, now, config=config, rng_seed=i)
        latencies.append(time.perf_counter() - t0)
        steady.commit(plan, now)
        now += 0.01

    # throughput: batches of tasks per place() call
    placed = 0
    busy = 0.0
    for i in range(max(1, decisions // batch)):
        tasks = make_tasks(batch, rng, made, now)
        made += batch
        t0 = time.perf_counter()
        plan = place(snapshot, tasks, now, config=config, rng_seed=10_000 + i)
        busy += time.perf_counter() - t0
        placed += len(plan.placements)
        steady.commit(plan, now)
        now += 0.5

    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
        "placements_per_s": placed / busy if busy > 0 else 0.0,
    }


def emit(bench: str, value: float, unit: str, baseline: float) -> None:
    ratio = value / baseline if baseline else None
    print(
        json.dumps(
            {
                "bench": bench,
                "value": round(value, 4),
                "unit": unit,
                "baseline": round(baseline, 4),
                "ratio": None if ratio is None else round(ratio, 4),
            }
        ),
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100k fleet")
    args = ap.parse_args()
    sampled = SchedulerConfig()
    full = SchedulerConfig(sample_k=None)
    # (devices, sampled decisions, full-scan decisions, batch size)
    cases = [(1_000, 3000, 300, 100), (10_000, 3000, 40, 100), (100_000, 2000, 6, 100)]
    if args.quick:
        cases = cases[:2]
    gc.collect()
    for n, decisions, base_decisions, batch in cases:
        label = f"{n // 1000}k"
        fast = run_case(n, sampled, decisions, batch, seed=1)
        slow = run_case(n, full, base_decisions, max(1, base_decisions // 2), seed=1)
        emit(f"scheduler.placements_per_s.{label}", fast["placements_per_s"], "placements/s",
             slow["placements_per_s"])  # fmt: skip
        emit(f"scheduler.decision_p99.{label}", fast["p99_ms"], "ms", slow["p99_ms"])
        emit(f"scheduler.decision_p50.{label}", fast["p50_ms"], "ms", slow["p50_ms"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
