"""Fleet-simulation speed (issue 6): time of one policy's run, one JSON object per case.

Targets, not asserted: 10,000 devices × 24 simulated hours in ≤ 120 s on one core; 100,000
devices × 1 hour feasible. ``value`` is process CPU time (one core; the run is single-threaded,
so a busy shared machine inflates only ``wall_s``); ``baseline`` is the target, so ``ratio`` ≤ 1
meets it. ``scheduler_cpu_s`` is the part spent inside the policy's own decisions (for fogmesh,
the real ``fog.scheduler.place``), the rest is the simulator.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--cases 10000x24,100000x1] [--policy P]``
(defaults: both cases for fogmesh; many minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import time

from fogmesh.sim.engine import Simulation
from fogmesh.sim.scenario import Scenario

TARGET_S = 120.0


def run_case(devices: int, hours: float, policy: str, seed: int) -> None:
    scenario = Scenario(devices=devices, hours=hours, seed=seed)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    data = Simulation(scenario, policy).run()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    target = TARGET_S if (devices, hours) == (10_000, 24.0) else None
    print(
        json.dumps(
            {
                "bench": f"sim_{devices}dev_{hours:g}h_{policy}",
                "value": cpu,
                "unit": "s",
                "baseline": target,
                "ratio": cpu / target if target else None,
                "wall_s": wall,
                "tasks": len(data.tasks),
                "placements": data.placements,
                "rounds": data.rounds,
                "scheduler_cpu_s": data.policy_cpu_s,
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="10000x24,100000x1", help="DEVICESxHOURS, comma-separated")
    ap.add_argument("--policy", default="fogmesh")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for case in args.cases.split(","):
        devices, hours = case.lower().split("x")
        run_case(int(devices), float(hours), args.policy, args.seed)


if __name__ == "__main__":
    main()
