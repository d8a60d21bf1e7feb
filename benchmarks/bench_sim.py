"""Fleet-simulation speed (issue 6): wall time of one policy's run, JSON per case on stdout.

Targets, not asserted: 10,000 devices × 24 simulated hours in ≤ 120 s on one core; 100,000
devices × 1 hour feasible. ``baseline`` is the target time, so ``ratio`` ≤ 1 meets it.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--devices N] [--hours H] [--policy P]``
(defaults: the 10,000 × 24 h case for fogmesh; minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import time

from fogmesh.sim.engine import Simulation
from fogmesh.sim.scenario import Scenario

TARGET_S = 120.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--policy", default="fogmesh")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    scenario = Scenario(devices=args.devices, hours=args.hours, seed=args.seed)
    started = time.perf_counter()
    sim = Simulation(scenario, args.policy)
    data = sim.run()
    wall = time.perf_counter() - started
    case = f"sim_{args.devices}dev_{args.hours:g}h_{args.policy}"
    print(
        json.dumps(
            {
                "bench": case,
                "value": wall,
                "unit": "s",
                "baseline": TARGET_S,
                "ratio": wall / TARGET_S,
                "tasks": len(data.tasks),
                "placements": data.placements,
                "scheduler_cpu_s": data.policy_cpu_s,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
