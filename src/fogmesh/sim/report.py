"""Run several policies on one scenario and write JSON, CSV, PNG plots and a Markdown report."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fogmesh.sim.baselines import BATTERY_AGNOSTIC
from fogmesh.sim.engine import RunData, Simulation
from fogmesh.sim.metrics import Metrics, compute_metrics
from fogmesh.sim.scenario import Scenario

__all__ = ["PolicyRun", "compare", "run_policies", "write_outputs"]


@dataclass(frozen=True, slots=True)
class PolicyRun:
    metrics: Metrics
    series: dict[str, list[Any]]
    waits: list[float]
    temp_hist: dict[int, int]


def run_policies(
    scenario: Scenario,
    policies: Sequence[str],
    progress: Callable[[str, float], None] | None = None,
) -> list[PolicyRun]:
    """Each policy on a fresh copy of the same fleet and workload (same seed)."""
    runs: list[PolicyRun] = []
    for name in policies:
        cb = None if progress is None else (lambda f, n=name: progress(n, f))
        data: RunData = Simulation(scenario, name, progress=cb).run()
        waits = [t.first_start - t.spec.arrival for t in data.tasks if t.first_start is not None]
        runs.append(PolicyRun(compute_metrics(data), data.series, waits, data.temp_hist))
    return runs


def compare(runs: Sequence[PolicyRun]) -> dict[str, Any]:
    """fogmesh against the best battery-agnostic baseline, per target of issue 6."""
    by = {r.metrics.policy: r.metrics.outcome for r in runs}
    fog = by.get("fogmesh")
    agnostic = {k: v for k, v in by.items() if k in BATTERY_AGNOSTIC}
    if fog is None or not agnostic:
        return {}
    least_batt = min(agnostic, key=lambda k: (agnostic[k]["fog_battery_wh"], k))
    best_wait = min(agnostic, key=lambda k: (agnostic[k]["wait_p95_s"], k))
    base_wh = agnostic[least_batt]["fog_battery_wh"]
    base_wait = agnostic[best_wait]["wait_p95_s"]
    return {
        "battery_baseline": least_batt,
        "battery_saving_pct": 100.0 * (1 - fog["fog_battery_wh"] / base_wh) if base_wh else 0.0,
        "wait_baseline": best_wait,
        "wait_p95_ratio": fog["wait_p95_s"] / base_wait if base_wait else 0.0,
        "devices_below20_by_fog_while_room": fog["devices_below20_by_fog_while_room"],
        "task_s_above65": fog["task_s_above65"],
    }


_CSV_FIELDS = (
    "completion_pct",
    "fog_battery_wh",
    "fog_mains_wh",
    "charging_mains_wh",
    "devices_below20_by_fog",
    "devices_driven_below20_by_fog",
    "devices_below20_by_fog_while_room",
    "devices_below10_by_fog",
    "device_s_above55",
    "device_s_above65",
    "task_s_above65",
    "throttle_events",
    "deadline_missed",
    "wait_p50_s",
    "wait_p95_s",
    "makespan_s",
    "utilisation_of_eligible",
    "utilisation_of_hardware",
    "offered_of_eligible",
    "fairness_jain",
    "evictions",
    "cluster_reforms",
    "cluster_head_changes",
)


def write_outputs(scenario: Scenario, runs: Sequence[PolicyRun], out: Path) -> dict[str, Path]:
    """``metrics.json``, ``metrics.csv``, ``series.csv``, plots and ``report.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    comparison = compare(runs)
    summary: dict[str, Any] = {
        "scenario": scenario.to_dict(),
        "policies": [r.metrics.to_dict() for r in runs],
        "comparison": comparison,
    }
    paths["json"] = out / "metrics.json"
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    paths["csv"] = out / "metrics.csv"
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["policy", *_CSV_FIELDS, "cpu_us_per_placement"])
        for r in runs:
            o = r.metrics.outcome
            w.writerow(
                [
                    r.metrics.policy,
                    *(_fmt(o[f]) for f in _CSV_FIELDS),
                    _fmt(r.metrics.timing["cpu_us_per_placement"]),
                ]
            )
    paths["series"] = out / "series.csv"
    with paths["series"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["policy", "series", "t_h", "value"])
        for r in runs:
            hours = r.series.get("t_h", [])
            for key, values in sorted(r.series.items()):
                if key != "t_h":
                    for h, v in zip(hours, values, strict=False):
                        w.writerow([r.metrics.policy, key, _fmt(h), _fmt(v)])
    paths.update(_plots(runs, out))
    paths["report"] = out / "report.md"
    paths["report"].write_text(_markdown(scenario, runs, comparison, paths), "utf-8")
    return paths


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _plots(runs: Sequence[PolicyRun], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}

    def save(name: str, fig: Any) -> None:
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths[name] = path

    classes = sorted({k for r in runs for k in r.series if k.startswith("soc_")})
    fig, axes = plt.subplots(1, max(1, len(classes)), figsize=(4 * max(1, len(classes)), 3.2))
    axes_list = list(axes) if len(classes) > 1 else [axes]
    for ax, cls in zip(axes_list, classes, strict=False):
        for r in runs:
            ax.plot(r.series["t_h"][: len(r.series[cls])], r.series[cls], label=r.metrics.policy)
        ax.set_title(cls.removeprefix("soc_"))
        ax.set_xlabel("hour")
        ax.set_ylabel("mean battery %")
    axes_list[0].legend(fontsize=7)
    save("battery_by_class", fig)

    for key, ylabel, name in (
        ("fog_battery_wh", "battery Wh drawn by fog work", "battery_energy"),
        ("utilisation", "busy / eligible cores", "utilisation"),
    ):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in runs:
            ax.plot(r.series["t_h"], r.series[key], label=r.metrics.policy)
        ax.set_xlabel("hour")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        save(name, fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in runs:
        w = sorted(r.waits)
        if w:
            ax.plot(w, [(i + 1) / len(w) for i in range(len(w))], label=r.metrics.policy)
    ax.set_xscale("symlog")
    ax.set_xlabel("wait before first start (s)")
    ax.set_ylabel("fraction of started tasks")
    ax.legend(fontsize=7)
    save("wait_cdf", fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in runs:
        temps = sorted(r.temp_hist)
        total = sum(r.temp_hist.values()) or 1
        ax.step(temps, [r.temp_hist[t] / total for t in temps], where="mid", label=r.metrics.policy)
    ax.axvline(65, color="red", linestyle=":")
    ax.set_xlabel("device °C (sampled every 15 min)")
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=7)
    save("temperature", fig)
    return paths


_TABLE = (
    ("completion %", "completion_pct", "{:.1f}"),
    ("battery Wh by fog", "fog_battery_wh", "{:.0f}"),
    ("mains Wh by fog", "fog_mains_wh", "{:.0f}"),
    ("charging Wh (wall)", "charging_mains_wh", "{:.0f}"),
    ("devices <20 % by fog energy", "devices_below20_by_fog", "{}"),
    ("devices driven <20 % by fog", "devices_driven_below20_by_fog", "{}"),
    ("… while room on mains", "devices_below20_by_fog_while_room", "{}"),
    ("devices <10 % by fog", "devices_below10_by_fog", "{}"),
    ("device-h ≥ 55 °C", "device_s_above55", "h"),
    ("task-s ≥ 65 °C", "task_s_above65", "{:.0f}"),
    ("throttle events", "throttle_events", "{}"),
    ("deadline misses", "deadline_missed", "{}"),
    ("wait p50 (s)", "wait_p50_s", "{:.0f}"),
    ("wait p95 (s)", "wait_p95_s", "{:.0f}"),
    ("makespan (h)", "makespan_s", "h"),
    ("utilisation of eligible", "utilisation_of_eligible", "{:.3f}"),
    ("utilisation of hardware", "utilisation_of_hardware", "{:.3f}"),
    ("fairness (Jain)", "fairness_jain", "{:.3f}"),
    ("evictions (battery floor)", "evictions", "{}"),
    ("cluster head changes", "cluster_head_changes", "{}"),
)


def _markdown(
    scenario: Scenario,
    runs: Sequence[PolicyRun],
    comparison: dict[str, Any],
    paths: dict[str, Path],
) -> str:
    names = [r.metrics.policy for r in runs]
    lines = [
        "# fogmesh fleet simulation",
        "",
        f"{scenario.devices} devices, {scenario.hours:g} h, offered load {scenario.load:g}, "
        f"seed {scenario.seed}.",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, key, fmt in _TABLE:
        cells = []
        for r in runs:
            v = r.metrics.outcome[key]
            cells.append(f"{v / 3600:.1f}" if fmt == "h" else fmt.format(v))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cpu = [f"{r.metrics.timing['cpu_us_per_placement']:.0f}" for r in runs]
    lines.append("| scheduler µs / placement | " + " | ".join(cpu) + " |")
    misses = []
    for r in runs:
        m = r.metrics.outcome["deadline_missed_by_priority"]
        misses.append(" ".join(f"{k[0]}{v}" for k, v in m.items()))
    lines.append("| misses by priority (l/n/h/c) | " + " | ".join(misses) + " |")
    if comparison:
        lines += [
            "",
            "## fogmesh against the best battery-agnostic baseline",
            "",
            f"* battery energy by fog work: {comparison['battery_saving_pct']:.1f} % less than "
            f"`{comparison['battery_baseline']}` (target ≥ 30 %)",
            f"* p95 wait: {comparison['wait_p95_ratio']:.2f}× `{comparison['wait_baseline']}` "
            "(target ≤ 1.10×)",
            "* devices pushed below 20 % by fog work while a plugged device had room: "
            f"{comparison['devices_below20_by_fog_while_room']} (target 0)",
            f"* task-seconds at ≥ 65 °C: {comparison['task_s_above65']:.0f} (target 0)",
        ]
    lines += ["", "## Plots", ""]
    for key in ("battery_by_class", "battery_energy", "utilisation", "wait_cdf", "temperature"):
        if key in paths:
            lines.append(f"![{key}]({paths[key].name})")
    return "\n".join(lines) + "\n"
