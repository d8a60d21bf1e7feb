"""``fogmesh agent``: enrol this device once, then keep it connected and running fog work."""

from __future__ import annotations

import asyncio
import importlib
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fogmesh._eventloop import run_service
from fogmesh._logopts import LogFormatOption, LogLevelOption
from fogmesh._version import __version__
from fogmesh.config import load_settings
from fogmesh.errors import ConfigError
from fogmesh.logs import configure_logging

if TYPE_CHECKING:
    from fogmesh.agent.daemon import AgentConfig, AgentDaemon, Runner
    from fogmesh.devices.sensors import SensorSource

__all__ = ["agent"]


def _labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"labels are key=value, not {value!r}", field="--label")
        labels[key.strip()] = val.strip()
    return labels


def _named(labels: dict[str, str], name: str | None) -> dict[str, str]:
    """The labels with ``name`` (``--name``, else a ``name=`` label, else the hostname): how
    ``fogmesh devices`` shows this device beside its id."""
    chosen = (name if name is not None else labels.get("name") or socket.gethostname()).strip()
    if not chosen or len(chosen) > 64 or not chosen.isprintable():
        raise ConfigError("must be 1 to 64 printable characters", field="--name")
    return {**labels, "name": chosen}


def _runner(
    spec: str | None,
    allow_commands: bool,
    workers: int,
    data_dir: Path,
    allow_modules: Sequence[str] = (),
) -> Runner:
    if spec:
        # For tests and embedders: "module:factory" returning an object with the runner interface.
        module, _, name = spec.partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load runner {spec!r}: {exc}", field="--runner") from exc
        runner: Runner = factory()
        return runner
    from fogmesh.agent.daemon import model_resolver
    from fogmesh.agent.runner import RunnerConfig, TaskRunner

    base = RunnerConfig().allowed_modules
    return TaskRunner(
        RunnerConfig(
            allowed_modules=(*base, *(m for m in allow_modules if m not in base)),
            allow_commands=allow_commands,
            workers=workers,
            model_resolver=model_resolver(data_dir),  # models fetched over the link land here
        )
    )


async def _serve(daemon: AgentDaemon) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def agent(
    join: Annotated[
        str | None,
        typer.Option("--join", help="one-use join token from 'fogmesh token create' (first run)"),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="where this device keeps its identity (FOGMESH_HOME)"),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="emulate: preset name or JSON/TOML profile file"),
    ] = None,
    heartbeat: Annotated[
        float,
        typer.Option("--heartbeat", help="seconds between heartbeats (longer on low battery)"),
    ] = 30.0,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="key=value for placement (e.g. site=home)")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="name shown beside the device id (default: the hostname)"),
    ] = None,
    allow_commands: Annotated[
        bool, typer.Option("--allow-commands", help="also run 'command' payloads (argv)")
    ] = False,
    allow_module: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-module",
            help="also run python payloads from this module and its submodules (repeatable); "
            "fogmesh.agent.workloads is always allowed",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="warm worker processes")] = 2,
    stop_grace: Annotated[
        float,
        typer.Option("--stop-grace", help="seconds running tasks may finish after SIGTERM"),
    ] = 10.0,
    runner: Annotated[str | None, typer.Option("--runner", hidden=True)] = None,
    backoff_max: Annotated[
        float, typer.Option("--backoff-max", help="longest wait between reconnect attempts")
    ] = 30.0,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    # -- emulated devices (docs/emulation.md) --
    emulate: Annotated[
        str | None,
        typer.Option(
            "--emulate",
            help="phone|tablet|laptop|desktop|raspberry_pi: battery and heat follow real work",
        ),
    ] = None,
    battery: Annotated[
        float | None, typer.Option("--battery", help="with --emulate: starting battery %")
    ] = None,
    charging: Annotated[
        bool, typer.Option("--charging", help="with --emulate: plugged in (charges per model)")
    ] = False,
    ambient: Annotated[
        float | None, typer.Option("--ambient", help="with --emulate: room temperature °C")
    ] = None,
) -> None:
    """Connect this device to a coordinator and run the work it is given.

    The first run needs --join; the identity and agent ticket are then kept (0600) in the data
    directory and later runs reuse them.

    Example: fogmesh agent --join fmj1.… --profile phone-charging --heartbeat 5
    Example: fogmesh agent --allow-module mylab.tasks   (run python payloads from mylab.tasks)
    """
    if not heartbeat > 0:
        raise ConfigError("must be > 0 seconds", field="--heartbeat")
    if not backoff_max > 0:
        raise ConfigError("must be > 0 seconds", field="--backoff-max")
    # The agent's stack (Noise, WebSocket, psutil) is the `agent` extra: imported here, not at
    # module level, so `fogmesh agent --help` works on the base install.
    from fogmesh.agent.daemon import AgentConfig, AgentDaemon
    from fogmesh.devices.sensors import sensor_source_from_env

    configure_logging(log_level, log_format)
    settings = load_settings(home=data_dir)
    config = AgentConfig(
        data_dir=settings.home,
        join_token=join,
        heartbeat=heartbeat,
        labels=_named(_labels(label), name),
        backoff_max=backoff_max,
        stop_grace=max(0.0, stop_grace),
        agent_version=__version__,
    )
    modules = list(allow_module or ())
    for module in modules:
        if not all(part.isidentifier() for part in module.split(".")):
            raise ConfigError(f"{module!r} is not a dotted module name", field="--allow-module")
    task_runner = _runner(runner, allow_commands, workers, settings.home, modules)
    sensors: SensorSource
    if emulate is not None:
        sensors, task_runner = _emulated(
            emulate, profile, battery, charging, ambient, config, task_runner
        )
    elif battery is not None or charging or ambient is not None:
        raise ConfigError("--battery, --charging and --ambient need --emulate", field="--emulate")
    else:
        sensors = sensor_source_from_env(profile)
    daemon = AgentDaemon(config, task_runner, sensors=sensors)
    run_service(_serve(daemon), fast_loop=False)  # see fogmesh._eventloop


def _emulated(
    kind: str,
    profile: str | None,
    battery: float | None,
    charging: bool,
    ambient: float | None,
    config: AgentConfig,
    task_runner: Runner,
) -> tuple[SensorSource, Runner]:
    """An emulated device whose power model is fed the CPU time the real runner measures."""
    from fogmesh.agent.emulated_power import MeteredRunner, emulated_device

    sensors = emulated_device(
        kind,
        profile=profile,
        battery=battery,
        charging=charging,
        ambient_c=ambient,
        energy_file=config.data_dir / "energy.json",
    )
    return sensors, MeteredRunner(task_runner, sensors)
