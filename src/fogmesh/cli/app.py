"""Root Typer app; each command group lives in its own module."""

from __future__ import annotations

import json
import platform
import sys

import typer
from rich.console import Console

from fogmesh._version import __version__
from fogmesh.errors import FogmeshError

__all__ = ["app", "main"]

app = typer.Typer(
    name="fogmesh",
    help="Turn everyday devices into one battery- and thermal-aware fog for AI work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fogmesh {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """Turn everyday devices into one battery- and thermal-aware fog for AI work."""


@app.command()
def version(
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Print the fogmesh version.

    Example: fogmesh version --json
    """
    info = {
        "fogmesh": __version__,
        "python": platform.python_version(),
        "platform": sys.platform,
    }
    if as_json:
        typer.echo(json.dumps(info))
    else:
        console.print(f"fogmesh {__version__} (Python {info['python']}, {info['platform']})")


def _register_groups() -> None:
    from fogmesh.cli import (
        agent,
        coordinator,
        demo,
        deploy,
        device,
        fleet,
        model,
        ops,
        simulate,
        tasks,
        token,
        twin,
    )

    # operators: run a fog and use it
    app.command(name="demo")(demo.demo)
    app.command(name="coordinator")(coordinator.coordinator)
    app.command(name="agent")(agent.agent)
    app.add_typer(token.app, name="token")
    app.command(name="submit")(tasks.submit)
    app.command(name="tasks")(tasks.tasks)
    app.command(name="task")(tasks.task)
    app.command(name="explain")(tasks.explain)
    app.command(name="cancel")(ops.cancel)
    app.command(name="drain")(ops.drain)
    app.command(name="devices")(fleet.devices)
    app.command(name="clusters")(fleet.clusters)
    # models and deployments
    app.add_typer(model.app, name="model")
    app.command(name="deploy")(deploy.deploy)
    # this device, its twin, and the fleet simulator
    app.add_typer(device.app, name="device")
    app.add_typer(twin.app, name="twin")
    app.command(name="simulate")(simulate.simulate)


_register_groups()


def main() -> None:
    """Entry point: FogmeshError becomes one clear line on stderr and exit code 1."""
    try:
        app()
    except FogmeshError as exc:
        err_console.print(f"[bold red]error[/]: {exc.reason}", highlight=False)
        raise SystemExit(1) from None
