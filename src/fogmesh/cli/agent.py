"""``fogmesh agent``: enrol this device once, then keep it connected and running fog work."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from fogmesh._logopts import LogFormatOption, LogLevelOption
from fogmesh.config import load_settings, setting
from fogmesh.errors import ConfigError
from fogmesh.logs import resolve_log_settings

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
    level, fmt = resolve_log_settings(log_level, log_format)
    home = load_settings(home=data_dir).home
    labels = _named(_labels(label), name)
    modules = list(allow_module or ())
    for module in modules:
        if not all(part.isidentifier() for part in module.split(".")):
            raise ConfigError(f"{module!r} is not a dotted module name", field="--allow-module")
    # The agent's stack (Noise, WebSocket, psutil) is the `agent` extra: imported here, not at
    # module level, so `fogmesh agent --help` works on the base install.
    from fogmesh.agent.link import AgentCredentials
    from fogmesh.agent.service import AgentLaunch, load_runner_factory, start_agent

    launch = AgentLaunch(
        home=str(home),
        join=join,
        heartbeat=heartbeat,
        labels=labels,
        backoff_max=backoff_max,
        stop_grace=max(0.0, stop_grace),
        allow_commands=allow_commands,
        allow_modules=modules,
        workers=workers,
        runner=runner,
        profile=profile,
        log_level=level,
        log_format=fmt,
        emulate=emulate,
        battery=battery,
        charging=charging,
        ambient=ambient,
    )
    if runner:
        load_runner_factory(runner)
    if emulate is not None:
        from fogmesh.agent.emulated_power import emulated_device

        emulated_device(
            emulate, profile=profile, battery=battery, charging=charging, ambient_c=ambient
        )
    elif battery is not None or charging or ambient is not None:
        raise ConfigError("--battery, --charging and --ambient need --emulate", field="--emulate")
    elif profile or setting("profile"):
        # A preset or profile file that cannot be read is told here. Real sensors cannot fail
        # to open, and their stack (psutil, detection) is the agent process's to import.
        from fogmesh.devices.emulated import resolve_profile

        resolve_profile(
            profile or setting("profile"), field="profile" if profile else "FOGMESH_PROFILE"
        )
    # A token that cannot be read, or a device that never enrolled, is told here, at once.
    if join:
        AgentCredentials.from_join_token(home, join)
    else:
        AgentCredentials.load(home)
    start_agent(launch)  # the agent itself runs without the command line's stack (its module doc)
