"""Fleet-simulation quality targets (issue 6): one JSON object per result on stdout.

On the default scenario (1,000 mixed devices, 24 simulated hours, offered load ≈ 60 % of the
estimated eligible capacity) fogmesh is compared with the best battery-agnostic baseline run on
the identical fleet and workload (same seed). Targets, not asserted:

* battery energy drawn by fog work ≥ 30 % less (ratio ≤ 0.70);
* zero devices driven below 20 % by fog work while a plugged device had room;
* zero task-seconds on devices at ≥ 65 °C;
* p95 wait at most 10 % worse (ratio ≤ 1.10);
* under saturation (offered load 1.5), utilisation of eligible capacity ≥ 90 %.

Run: ``.venv/bin/python benchmarks/bench_quality.py [--devices N] [--hours H] [--seed S]``
(the full default takes minutes on one core).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from fogmesh.sim.baselines import BATTERY_AGNOSTIC
from fogmesh.sim.report import run_policies
from fogmesh.sim.scenario import Scenario


def emit(bench: str, value: float, unit: str, baseline: float | None, **extra: Any) -> None:
    ratio = value / baseline if baseline else None
    print(
        json.dumps(
            {"bench": bench, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio}
            | extra
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--saturation-load", type=float, default=1.5)
    args = ap.parse_args()
    scenario = Scenario(devices=args.devices, hours=args.hours, seed=args.seed)
    names = ["fogmesh", *sorted(BATTERY_AGNOSTIC)]
    runs = {r.metrics.policy: r.metrics.outcome for r in run_policies(scenario, names)}
    fog = runs["fogmesh"]
    agnostic = {k: v for k, v in runs.items() if k in BATTERY_AGNOSTIC}
    batt_base = min(agnostic, key=lambda k: agnostic[k]["fog_battery_wh"])
    wait_base = min(agnostic, key=lambda k: agnostic[k]["wait_p95_s"])
    emit(
        "fog_battery_wh",
        fog["fog_battery_wh"],
        "Wh",
        agnostic[batt_base]["fog_battery_wh"],
        baseline_policy=batt_base,
        target_ratio_max=0.70,
    )
    emit(
        "devices_below20_by_fog_while_room",
        fog["devices_below20_by_fog_while_room"],
        "devices",
        agnostic[batt_base]["devices_below20_by_fog_while_room"],
        baseline_policy=batt_base,
        target=0,
    )
    emit(
        "task_s_above65",
        fog["task_s_above65"],
        "task-s",
        agnostic[batt_base]["task_s_above65"],
        baseline_policy=batt_base,
        target=0,
    )
    emit(
        "wait_p95",
        fog["wait_p95_s"],
        "s",
        agnostic[wait_base]["wait_p95_s"],
        baseline_policy=wait_base,
        target_ratio_max=1.10,
    )
    emit(
        "completion_pct",
        fog["completion_pct"],
        "%",
        agnostic[wait_base]["completion_pct"],
        baseline_policy=wait_base,
    )
    saturated = scenario.with_changes(load=args.saturation_load)
    sat = {r.metrics.policy: r.metrics.outcome for r in run_policies(saturated, ["fogmesh"])}
    emit(
        "utilisation_of_eligible_saturated",
        sat["fogmesh"]["utilisation_of_eligible"],
        "fraction",
        0.90,
        load=args.saturation_load,
        target_min=0.90,
    )


if __name__ == "__main__":
    main()
