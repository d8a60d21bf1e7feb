"""``fogmesh device detect|optimize``: this device's capabilities and live optimisation.

Thin: a sensor source from ``fogmesh.devices`` (real, or an emulated preset/file) and the
``MobileResourceManager`` decide; this module only formats. Errors (a bad profile file) are
``FogmeshError`` and become one line on stderr in ``fogmesh.cli.app.main``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fogmesh.cli.ops import remove_device
from fogmesh.cli.units import celsius, percent
from fogmesh.devices import (
    DeviceProfile,
    EmulatedSensors,
    RealSensors,
    sensor_source_from_env,
)
from fogmesh.devices.classify import Classification
from fogmesh.mobile import MobileResourceManager, ResourceOptimization

__all__ = ["app"]

app = typer.Typer(
    help="Inspect this device (capabilities, live readings, the resource decision); "
    "remove one from the fog (rm).",
    no_args_is_help=True,
)
app.command("rm")(remove_device)
console = Console()

ABSENT = "—"

_PROFILE_HELP = (
    "preset name (e.g. phone-hot) or JSON/TOML profile file; default: FOGMESH_PROFILE, "
    "else this machine"
)
_CPU_SAMPLE_HELP = (
    "seconds to measure CPU load over before the first reading of this machine "
    "(0: report it only once a window has passed)"
)


def _open(profile: str | None) -> RealSensors | EmulatedSensors:
    return sensor_source_from_env(profile)


def _settle_cpu(source: RealSensors | EmulatedSensors, seconds: float) -> None:
    # CPU % is a rate: one instant has none. The real source starts its window when created, so
    # the first reading needs this much time behind it.
    if isinstance(source, RealSensors) and seconds > 0:
        source.capabilities()
        time.sleep(seconds)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return ABSENT
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if unit == "%":
            return percent(value)
        if unit == "°C":
            return celsius(value)
        text = f"{value:.1f}".removesuffix(".0")
    elif isinstance(value, tuple | list):
        text = ", ".join(str(v) for v in value) or ABSENT
    else:
        text = str(getattr(value, "value", value))
    return f"{text} {unit}".rstrip() if unit and text != ABSENT else text


def _thermal(profile: DeviceProfile) -> str:
    pt = profile.platform_thermal
    if pt is None:
        return ABSENT
    return f"{pt.platform} status {pt.status} ({pt.level.name.lower()})"


def _detect_table(profile: DeviceProfile, classification: Classification, label: str) -> Table:
    caps = profile.capabilities
    table = Table(title=f"{profile.device_id} — {label}", show_header=False, title_justify="left")
    table.add_column("section", style="dim")
    table.add_column("reading", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str, str]] = [
        ("device", "type", f"{profile.device_type.value} ({classification.reason})"),
        ("", "id", profile.device_id),
        ("capabilities", "CPU", _fmt(caps.cpu_model)),
        (
            "",
            "cores (logical/physical)",
            f"{_fmt(caps.cpu_cores_logical)}/{_fmt(caps.cpu_cores_physical)}",
        ),
        ("", "max frequency", _fmt(caps.cpu_freq_mhz, "MHz")),
        ("", "RAM", _fmt(caps.ram_total_mb, "MB")),
        (
            "",
            "storage total / free",
            f"{_fmt(caps.storage_total_gb, 'GB')} / {_fmt(caps.storage_free_gb, 'GB')}",
        ),
        ("", "GPU", _fmt(caps.gpu_name) if caps.has_gpu else _fmt(caps.has_gpu)),
        ("", "GPU memory", _fmt(caps.gpu_memory_mb, "MB")),
        ("", "battery", _fmt(caps.has_battery)),
        ("", "board", _fmt(caps.board_model)),
        ("", "OS / arch", f"{_fmt(caps.os)} {_fmt(caps.os_release)} / {_fmt(caps.arch)}"),
        ("", "transports", _fmt(caps.supported_transports)),
        ("live", "battery level", _fmt(profile.battery_percent, "%")),
        ("", "charging", _fmt(profile.charging)),
        ("", "low power mode", _fmt(profile.low_power_mode)),
        ("", "CPU temperature", _fmt(profile.cpu_temp_c, "°C")),
        ("", "platform thermal", _thermal(profile)),
        ("", "CPU load", _fmt(profile.cpu_percent, "%")),
        (
            "",
            "RAM used / available",
            f"{_fmt(profile.ram_used_mb, 'MB')} / {_fmt(profile.ram_available_mb, 'MB')}",
        ),
        ("", "network", _fmt(profile.network_type)),
        ("", "metered", _fmt(profile.metered)),
        ("", "latency", _fmt(profile.latency_ms, "ms")),
        ("", "mesh neighbours", _fmt(profile.mesh_neighbours)),
        ("", "in use by owner", _fmt(profile.foreground)),
    ]
    for row in rows:
        table.add_row(*row)
    return table


@app.command()
def detect(
    profile: str | None = typer.Option(None, "--profile", "-p", help=_PROFILE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object for scripts"),
    cpu_sample: float = typer.Option(0.25, "--cpu-sample", min=0.0, help=_CPU_SAMPLE_HELP),
) -> None:
    """Show the device's capabilities and live readings (absent readings show as —).

    Example: fogmesh device detect --profile phone-hot --json
    """
    source = _open(profile)
    _settle_cpu(source, cpu_sample)
    reading = source.read()
    classification = source.classification()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "source": source.label,
                    "classification": {
                        "device_type": classification.device_type.value,
                        "rule": classification.rule,
                        "reason": classification.reason,
                    },
                    "profile": reading.to_dict(),
                }
            )
        )
        return
    console.print(_detect_table(reading, classification, source.label))


def _readings(profile: DeviceProfile) -> dict[str, Any]:
    pt = profile.platform_thermal
    return {
        "battery_percent": profile.battery_percent,
        "charging": profile.charging,
        "low_power_mode": profile.low_power_mode,
        "cpu_temp_c": profile.cpu_temp_c,
        "platform_thermal": {"platform": pt.platform, "status": pt.status} if pt else None,
        "cpu_percent": profile.cpu_percent,
        "ram_available_mb": profile.ram_available_mb,
        "network_type": profile.network_type.value if profile.network_type else None,
        "metered": profile.metered,
        "latency_ms": profile.latency_ms,
    }


def _decision_json(
    profile: DeviceProfile, decision: ResourceOptimization, label: str
) -> dict[str, Any]:
    return {
        "source": label,
        "device_id": profile.device_id,
        "device_type": profile.device_type.value,
        "timestamp": profile.timestamp,
        "readings": _readings(profile),
        "optimization": decision.to_dict(),
    }


def _print_decision(profile: DeviceProfile, decision: ResourceOptimization, label: str) -> None:
    when = time.strftime("%H:%M:%S", time.localtime(profile.timestamp or 0))
    live = (
        f"battery {_fmt(profile.battery_percent, '%')}"
        f"{' charging' if profile.charging else ''}, "
        f"CPU {_fmt(profile.cpu_temp_c, '°C')}, load {_fmt(profile.cpu_percent, '%')}, "
        f"{_fmt(profile.network_type)}"
    )
    table = Table(
        title=f"{profile.device_id} ({profile.device_type.value}, {label}) at {when}: {live}",
        show_header=False,
        title_justify="left",
    )
    table.add_column("decision", style="bold")
    table.add_column("value")
    memory = decision.memory_limit_mb
    table.add_row("power mode", decision.power_mode.value)
    table.add_row("CPU limit", _fmt(decision.cpu_limit_percent, "%"))
    table.add_row("memory limit", "none" if memory is None else f"{memory} MB per task")
    table.add_row("concurrent tasks", str(decision.max_concurrent_tasks))
    table.add_row("chunk size", f"{decision.chunking_config.effective_chunk_size()} B")
    table.add_row("transport", decision.transport_preference.value)
    for reason in decision.reasons:
        table.add_row(f"[dim]{reason.code}[/]", reason.text)
    console.print(table)


async def _optimize_loop(
    source: RealSensors | EmulatedSensors,
    readings: int | None,
    interval: float,
    as_json: bool,
) -> None:
    manager = MobileResourceManager(sensors=source)
    done = 0
    while readings is None or done < readings:
        if done:
            await asyncio.sleep(interval)
        profile = await asyncio.to_thread(source.read)
        decision = await manager.optimize_for_device(profile)
        if as_json:
            typer.echo(json.dumps(_decision_json(profile, decision, source.label)))
        else:
            _print_decision(profile, decision, source.label)
        done += 1


@app.command()
def optimize(
    profile: str | None = typer.Option(None, "--profile", "-p", help=_PROFILE_HELP),
    watch: bool = typer.Option(False, "--watch", "-w", help="keep reading until Ctrl-C"),
    interval: float = typer.Option(
        2.0, "--interval", "-i", min=0.05, help="seconds between readings with --watch"
    ),
    count: int | None = typer.Option(
        None, "--count", "-n", min=1, help="stop after this many readings (implies --watch)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per reading"),
    cpu_sample: float = typer.Option(0.25, "--cpu-sample", min=0.0, help=_CPU_SAMPLE_HELP),
) -> None:
    """Show what the Mobile Resource Manager decides for the device now: power mode, CPU and
    memory limits, concurrency, chunk size, transport, and the reasons.

    Example: fogmesh device optimize --profile phone-critical-battery --watch --interval 1 --count 3
    """
    source = _open(profile)
    _settle_cpu(source, cpu_sample)
    readings = count if count is not None else (None if watch else 1)
    try:
        asyncio.run(_optimize_loop(source, readings, interval, as_json))
    except KeyboardInterrupt:
        # Ctrl-C is how --watch is meant to end.
        raise typer.Exit(0) from None
