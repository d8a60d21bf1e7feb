"""Root Typer app. Each command lives in its own module, imported only when that command runs.

``pip install fogmesh`` (no extras) holds what ``--help`` and the thin client need; each role's
stack is an extra (``agent``, ``coordinator``, ``sim``, ``twin`` …). So the root must not import
any command module to list them: ``SUBCOMMANDS`` names each command's module, its one-line summary
for ``fogmesh --help`` and the extras it needs, and the root group imports a module when its
command is invoked. A module whose imports are not installed becomes one line naming the extra
to install (``missing_extra``), never a traceback.

To add a command: one ``SUBCOMMANDS`` entry (``tests/cli/test_cli_registry.py`` checks that the
summary matches the command's own help and that every entry loads).
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
from dataclasses import dataclass
from typing import Any, Final

import typer
from typer.core import TyperCommand, TyperGroup

from fogmesh._version import __version__
from fogmesh.errors import ConfigError, FogmeshError

__all__ = ["SUBCOMMANDS", "Subcommand", "app", "load_subcommand", "main", "missing_extra"]


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A ``fogmesh`` command whose module is imported only when the command runs."""

    module: str  # under fogmesh.cli
    attr: str  # the command function, or the Typer app of a command group
    summary: str  # its line in `fogmesh --help` (the command's own first help line)
    extras: tuple[str, ...] = ()  # what it needs beyond the base install


SUBCOMMANDS: Final[dict[str, Subcommand]] = {
    # operators: run a fog and use it
    "demo": Subcommand(
        "demo",
        "demo",
        "Run a fog on this machine: a coordinator, this machine's agent and emulated devices.",
        ("coordinator", "agent"),
    ),
    "coordinator": Subcommand(
        "coordinator",
        "coordinator",
        "Run the coordinator: REST API + OpenAPI (/docs), agent WebSocket, /metrics, /healthz.",
        ("coordinator",),
    ),
    "agent": Subcommand(
        "agent",
        "agent",
        "Connect this device to a coordinator and run the work it is given.",
        ("agent",),
    ),
    "token": Subcommand(
        "token",
        "app",
        "Join tokens that let a device enrol with this coordinator: create, list, revoke.",
        ("coordinator",),
    ),
    "ticket": Subcommand(
        "ticket",
        "app",
        "Issue REST tickets (submit, read, admin) so nobody has to hand out admin.ticket.",
        ("coordinator",),
    ),
    "submit": Subcommand(
        "tasks", "submit", "Submit a task to the coordinator; with --wait, follow it to its result."
    ),
    "tasks": Subcommand("tasks", "tasks", "List tasks in creation order."),
    "task": Subcommand(
        "tasks",
        "task",
        "Show one task: its state, attempts history, and result or error (with the traceback,"
        " and a command's output tail).",
    ),
    "explain": Subcommand(
        "tasks",
        "explain",
        "Why a task is where it is: the chosen device's score breakdown, or, when it is not"
        " placed, how many devices were turned down for each reason.",
    ),
    "cancel": Subcommand(
        "ops", "cancel", "Cancel a task that has not finished; a device running it is told to stop."
    ),
    "drain": Subcommand(
        "ops",
        "drain",
        "Stop placing new work on a device; the work it is running finishes. Needs an admin"
        " ticket.",
    ),
    "devices": Subcommand(
        "fleet",
        "devices",
        "List the devices the coordinator knows: status, link, battery, heat and capacity.",
    ),
    "clusters": Subcommand(
        "fleet",
        "clusters",
        "List the device clusters the coordinator formed, with their heads and members.",
    ),
    # models and deployments
    "model": Subcommand(
        "model",
        "app",
        "Register ONNX models (fp32/int8 variants) that deployments send to devices.",
        ("coordinator",),
    ),
    "deploy": Subcommand(
        "deploy",
        "deploy",
        "Deploy a model to a device: variant choice, chunked transfer, SHA-256 check, ORT run.",
        ("coordinator", "onnx"),
    ),
    # this device, its twin, and the fleet simulator
    "device": Subcommand(
        "device",
        "app",
        "Inspect this device (capabilities, live readings, the resource decision); "
        "remove one from the fog (rm).",
    ),
    "twin": Subcommand(
        "twin",
        "app",
        "Your private on-device digital twin: consented, encrypted, self-deleting data.",
        ("twin",),
    ),
    "simulate": Subcommand(
        "simulate",
        "simulate",
        "Simulate a fleet under each placement policy and compare them.",
        ("sim",),
    ),
}

# A module only one optional extra provides: naming it beats naming the command's role extras.
_OPTIONAL_MODULES: Final = {
    "asyncpg": "postgres",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "simpy": "sim",
    "matplotlib": "sim",
    "icalendar": "twin",
    "dp_accounting": "twin",
}


def missing_extra(command: str, exc: ModuleNotFoundError) -> FogmeshError | None:
    """The one-line error for ``fogmesh COMMAND`` failing to import ``exc.name``, or None when the
    missing module is fogmesh's own (a bug to show as it is, not an install to fix)."""
    missing = (exc.name or "").partition(".")[0]
    if not missing or missing == "fogmesh":
        return None
    entry = SUBCOMMANDS.get(command)
    extras: tuple[str, ...] = (_OPTIONAL_MODULES[missing],) if missing in _OPTIONAL_MODULES else ()
    if not extras and entry is not None:
        extras = entry.extras
    if not extras:
        return ConfigError(
            f"fogmesh {command} cannot import {missing!r}, which the base install provides: "
            "pip install --force-reinstall fogmesh"
        )
    which = " and ".join(extras)
    plural = "extras" if len(extras) > 1 else "extra"
    return ConfigError(
        f"fogmesh {command} needs the {which} {plural} (no module {missing!r}): "
        f"pip install 'fogmesh[{','.join(extras)}]'"
    )


def load_subcommand(name: str) -> Any:
    """The click command of ``SUBCOMMANDS[name]``, importing its module now."""
    entry = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(f"fogmesh.cli.{entry.module}")
    except ModuleNotFoundError as exc:
        error = missing_extra(name, exc)
        if error is None:
            raise
        raise error from None
    target = getattr(module, entry.attr)
    # Built inside a parent app, as `app.command()`/`app.add_typer()` would build it (a Typer
    # app converted on its own would also get the shell-completion options).
    holder = typer.Typer(add_completion=False)
    holder.callback()(_root)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name=name)(target)
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


class _Placeholder(TyperCommand):
    """What ``fogmesh --help`` lists for a command that is not imported yet."""


class _RootGroup(TyperGroup):
    """Lists every ``SUBCOMMANDS`` entry, imports one only when it is invoked."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in SUBCOMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name=name, help=entry.summary))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Placeholder) and name is not None:
            command = load_subcommand(name)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            # A command imports part of its stack only when it needs it (the coordinator's
            # service, an ONNX runtime, asyncpg for a PostgreSQL URL).
            error = missing_extra(ctx.invoked_subcommand or "", exc)
            if error is None:
                raise
            raise error from None


app = typer.Typer(
    name="fogmesh",
    help="Turn everyday devices into one battery- and thermal-aware fog for AI work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_RootGroup,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fogmesh {__version__}")
        raise typer.Exit()


# Root options go here. Having a callback also keeps the root a group: with one eagerly
# registered command Typer would make `fogmesh` that command itself.
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
        typer.echo(f"fogmesh {__version__} (Python {info['python']}, {info['platform']})")


def main() -> None:
    """Entry point: FogmeshError becomes one clear line on stderr and exit code 1."""
    try:
        app()
    except FogmeshError as exc:
        # click's styling, not Rich: an agent that fails at start does not load Rich for a line.
        typer.echo(f"{typer.style('error', fg='red', bold=True)}: {exc.reason}", err=True)
        raise SystemExit(1) from None
