"""``fogmesh simulate``: run the fleet simulator and write metrics, plots and a report.

Thin: ``fogmesh.sim`` does the work; this module parses options, shows a progress bar and prints
the summary. A bad scenario file is a ``ConfigError`` naming the field (one line on stderr).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fogmesh.errors import ConfigError
from fogmesh.sim.baselines import POLICY_NAMES
from fogmesh.sim.report import run_policies, write_outputs
from fogmesh.sim.scenario import Scenario, load_scenario

__all__ = ["simulate"]

console = Console()
_OUT = typer.Option(Path("sim-out"), "--out", help="directory for results")
_SCENARIO = typer.Option(
    None, "--scenario", help="JSON or TOML scenario file (keys: Scenario fields)"
)


def simulate(
    devices: int | None = typer.Option(None, "--devices", help="fleet size (default 1000)"),
    hours: float | None = typer.Option(None, "--hours", help="simulated hours (default 24)"),
    policy: str = typer.Option(
        "all", "--policy", help=f"'all' or a comma list of: {', '.join(POLICY_NAMES)}"
    ),
    seed: int | None = typer.Option(None, "--seed", help="random seed (default 1)"),
    out: Path = _OUT,
    scenario_file: Path | None = _SCENARIO,
    load: float | None = typer.Option(None, "--load", help="offered load (default 0.6)"),
    as_json: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
) -> None:
    """Simulate a fleet under each placement policy and compare them.

    Example: fogmesh simulate --devices 1000 --hours 24 --policy all --seed 1 --out results
    """
    overrides = {"devices": devices, "hours": hours, "seed": seed, "load": load}
    if scenario_file is not None:
        scenario = load_scenario(scenario_file, **overrides)
    else:
        scenario = Scenario.from_dict({k: v for k, v in overrides.items() if v is not None})
    names = list(POLICY_NAMES) if policy == "all" else [p.strip() for p in policy.split(",")]
    for name in names:
        if name not in POLICY_NAMES:
            raise ConfigError(
                f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}", field="policy"
            )
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=as_json, transient=True) as bar:
        ids = {n: bar.add_task(n, total=1.0) for n in names}
        runs = run_policies(scenario, names, progress=lambda n, f: bar.update(ids[n], completed=f))
    paths = write_outputs(scenario, runs, out)
    if as_json:
        typer.echo(json.dumps(json.loads(paths["json"].read_text(encoding="utf-8"))))
        return
    table = Table(title=f"{scenario.devices} devices × {scenario.hours:g} h, seed {scenario.seed}")
    for col in ("policy", "done %", "batt Wh", "<20 %", "task-s ≥65 °C", "p95 wait s", "util"):
        table.add_column(col)
    for r in runs:
        o = r.metrics.outcome
        table.add_row(
            r.metrics.policy,
            f"{o['completion_pct']:.1f}",
            f"{o['fog_battery_wh']:.0f}",
            str(o["devices_below20_by_fog"]),
            f"{o['task_s_above65']:.0f}",
            f"{o['wait_p95_s']:.0f}",
            f"{o['utilisation_of_eligible']:.3f}",
        )
    console.print(table)
    console.print(f"report: {paths['report']}")
