"""``fogmesh demo``: a whole fog on this machine, or (``--devices-only``) the device view.

By default the demo starts a coordinator, this machine's agent and emulated devices as real
processes on 127.0.0.1 and runs a mixed workload through them (``fogmesh.cli.fogdemo``).

``--devices-only`` shows the foundation at work without starting anything: real detection of this
machine, the Mobile Resource Manager's live decision for it, and the same decision for a handful
of emulated device states side by side — the same code path the coordinator and agents use.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import time
from types import FrameType
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from fogmesh.cli.device import _detect_table, _print_decision
from fogmesh.cli.units import celsius, percent
from fogmesh.devices import DeviceProfile, RealSensors, preset, preset_names
from fogmesh.mobile import ResourceOptimization, ResourcePolicy, evaluate

__all__ = ["demo"]

# Piped output (make demo in a log, CI) gets a fixed width wide enough for the table.
console = Console(width=None if sys.stdout.isatty() else 120)

# The emulated states worth seeing side by side: each shows a different rule at work.
DEMO_PRESETS = (
    "desktop-gpu",
    "laptop-on-battery",
    "laptop-on-cellular",
    "tablet-charging",
    "phone-charging",
    "phone-low-battery",
    "phone-low-power-mode",
    "phone-hot",
    "phone-critical-battery",
    "raspberry-pi",
)


# Reason codes that follow from the constraints rather than being one (the table shows them).
_DERIVED = ("mode_", "chunk_", "transport_")


def _cell(value: float | None, unit: str) -> str:
    if unit == "%":
        return percent(value)
    if unit == "°C":
        return celsius(value).replace(" ", "")
    return "—" if value is None else f"{value:g}{unit}"


def _side_by_side(rows: list[tuple[str, DeviceProfile, ResourceOptimization]]) -> Table:
    table = Table(
        title="Emulated devices: what each may do right now",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("device", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for name in ("mode", "CPU", "mem/task", "tasks", "chunk", "transport"):
        table.add_column(name, style="bold", no_wrap=True)
    for name, p, d in rows:
        battery = _cell(p.battery_percent, "%") + ("⚡" if p.charging else "")
        if p.capabilities.has_battery is False:
            battery = "mains"
        net = "—" if p.network_type is None else p.network_type.value
        if p.metered:
            net += "$"
        memory = "—" if d.memory_limit_mb is None else f"{d.memory_limit_mb}MB"
        table.add_row(
            name,
            f"{battery} {_cell(p.cpu_temp_c, '°C')} {net}",
            d.power_mode.value,
            percent(d.cpu_limit_percent),
            memory,
            str(d.max_concurrent_tasks),
            f"{d.chunking_config.effective_chunk_size()}B",
            d.transport_preference.value,
        )
    return table


def demo(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object for scripts"),
    devices_only: bool = typer.Option(
        False, "--devices-only", help="only show this machine and emulated devices side by side"
    ),
    agents: int = typer.Option(11, "--agents", min=1, max=11, help="devices in the demo fog"),
    tasks: int = typer.Option(48, "--tasks", min=1, max=500, help="tasks to run"),
    keep: bool = typer.Option(False, "--keep", help="keep the temporary data dir and logs"),
) -> None:
    """Run a fog on this machine: a coordinator, this machine's agent and emulated devices.

    Starts every process on 127.0.0.1 in a temporary data dir, runs a mixed workload (matrix
    products, training steps, embeddings, preprocessing) with live progress, checks every result
    and shows where the work ran, the energy drawn from batteries versus the wall and the work
    steered away — then stops everything it started. --devices-only shows this machine's
    detected capabilities and live decision next to emulated devices instead, starting nothing.

    Example: fogmesh demo --agents 3 --tasks 8 --json
    """
    if devices_only:
        _devices_view(as_json)
        return
    # The fog runs the coordinator's and the agent's stacks in child processes: a missing extra
    # is one line here (the root group names it), not a child's traceback in the demo's error.
    importlib.import_module("fogmesh.server.app")
    importlib.import_module("fogmesh.agent.daemon")
    from fogmesh.cli.fogdemo import DemoError, render_summary, run_fog_demo

    progress = Console(stderr=True) if as_json else console
    # SIGTERM unwinds like Ctrl-C, so the demo's finally stops every process it started.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = run_fog_demo(agents=agents, tasks=tasks, keep=keep, console=progress)
    except KeyboardInterrupt:
        Console(stderr=True).print("demo interrupted; everything it started is stopped")
        raise typer.Exit(130) from None
    except DemoError as exc:
        Console(stderr=True).print(f"[red]demo failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        render_summary(summary, console)
    ok = summary["tasks"].get("completed", 0) == summary["tasks"]["submitted"]
    if not ok or summary["results"]["wrong"]:
        raise typer.Exit(1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _devices_view(as_json: bool) -> None:
    policy = ResourcePolicy()
    sensors = RealSensors()
    sensors.capabilities()
    # CPU load is a rate; give the real source a short window before its first reading.
    time.sleep(0.25)
    here = sensors.read()
    here_decision = evaluate(here, policy)
    known = set(preset_names())
    rows = [(n, p, evaluate(p, policy)) for n in DEMO_PRESETS if n in known for p in [preset(n)]]

    if as_json:
        out: dict[str, Any] = {
            "this_machine": {
                "classification": sensors.classification().reason,
                "profile": here.to_dict(),
                "optimization": here_decision.to_dict(),
            },
            "emulated": {
                n: {"profile": p.to_dict(), "optimization": d.to_dict()} for n, p, d in rows
            },
        }
        typer.echo(json.dumps(out))
        return

    console.rule("[bold]fogmesh demo: this machine")
    console.print(_detect_table(here, sensors.classification(), sensors.label))
    _print_decision(here, here_decision, sensors.label)
    console.rule("[bold]fogmesh demo: emulated devices")
    console.print(_side_by_side(rows))
    console.print("⚡ charging   $ metered network   — no reading / no limit", style="dim")
    for name, _, d in rows:
        constraints = [r.text for r in d.reasons if not r.code.startswith(_DERIVED)]
        if constraints:
            console.print(f"[bold]{name}[/]: " + "; ".join(constraints), highlight=False)
    console.print(
        "Same pure [bold]evaluate(profile, policy)[/] for all rows; try "
        "[cyan]fogmesh device optimize --profile phone-hot --watch[/] or "
        "[cyan]FOGMESH_PROFILE=my-phone.toml fogmesh device optimize[/]."
    )
