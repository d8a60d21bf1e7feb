"""The agent's own process: what ``fogmesh agent`` becomes once its options are checked.

``fogmesh agent`` parses and checks its options with the command line's stack (typer, click),
then replaces itself (``os.execv``, same pid) with ``python -m fogmesh.agent.service``, which
imports only the daemon's stack. The command line's modules, and the heap they fragmented, are
not carried through the agent's life: 2 MB of an idle agent's 44 (docs/performance.md).

The checked options travel as an ``AgentLaunch`` in an unlinked 0600 temporary file whose
descriptor the new process inherits: the join token is a secret, so it is never on a command
line (the new process's, shown by ``ps``, holds only the descriptor's number).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fogmesh.errors import ConfigError, FogmeshError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from fogmesh.agent.daemon import AgentConfig, AgentDaemon, Runner
    from fogmesh.devices.sensors import SensorSource

__all__ = ["AgentLaunch", "load_runner_factory", "main", "run_agent", "start_agent"]

_FD_OPTION = "--launch-fd"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLaunch:
    """``fogmesh agent``'s options, checked (``fogmesh.cli.agent``), as the agent runs them."""

    home: str  # the data directory, resolved
    join: str | None = None
    heartbeat: float = 30.0
    labels: dict[str, str] = field(default_factory=dict)
    backoff_max: float = 30.0
    stop_grace: float = 10.0
    allow_commands: bool = False
    allow_modules: list[str] = field(default_factory=list)
    workers: int = 2
    runner: str | None = None  # "module:factory" (tests, embedders)
    profile: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    emulate: str | None = None
    battery: float | None = None
    charging: bool = False
    ambient: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AgentLaunch:
        return cls(**json.loads(text))


def start_agent(launch: AgentLaunch) -> None:
    """Become ``python -m fogmesh.agent.service`` running ``launch`` (same pid, same stdio);
    where that cannot be done (no interpreter path, Windows, no temporary file), run it here."""
    if sys.executable and os.name == "posix":
        # An OSError replaced nothing: the agent runs in this process, only larger.
        with contextlib.suppress(OSError):
            _exec_agent(launch)
    run_agent(launch)


def _exec_agent(launch: AgentLaunch) -> None:
    import tempfile

    with tempfile.TemporaryFile() as carrier:  # 0600, and unlinked before anything is written
        carrier.write(launch.to_json().encode("utf-8"))
        carrier.flush()
        os.lseek(carrier.fileno(), 0, os.SEEK_SET)
        os.set_inheritable(carrier.fileno(), True)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        argv = [
            sys.executable,
            # the interpreter's own options (-X, -W, -u, -P …), as multiprocessing passes them on
            *subprocess._args_from_interpreter_flags(),  # type: ignore[attr-defined]
            *_safe_path(),
            "-m",
            "fogmesh.agent.service",
            _FD_OPTION,
            str(carrier.fileno()),
        ]
        os.execv(sys.executable, argv)


def _safe_path() -> list[str]:
    """``-P`` unless already given: ``-m`` would put the working directory first on
    ``sys.path``, where any file could stand in for a module the agent imports. Kept only when
    this fogmesh was itself found there (a source tree run from its root)."""
    if sys.flags.safe_path:
        return []
    from pathlib import Path

    import fogmesh

    try:
        found_in_cwd = Path(fogmesh.__file__).resolve().parents[1] == Path.cwd().resolve()
    except OSError:  # the working directory is gone
        found_in_cwd = False
    return [] if found_in_cwd else ["-P"]


def _read_launch(argv: Sequence[str]) -> AgentLaunch:
    if len(argv) != 2 or argv[0] != _FD_OPTION or not argv[1].isdigit():
        raise ConfigError(
            "started by 'fogmesh agent', not by hand: run 'fogmesh agent --help'", field="argv"
        )
    try:
        with os.fdopen(int(argv[1]), "rb") as carrier:
            return AgentLaunch.from_json(carrier.read().decode("utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the agent's options: {exc}", field=_FD_OPTION) from None


def load_runner_factory(spec: str) -> Any:
    """The ``--runner module:factory`` (for tests and embedders), imported; not yet called."""
    module, _, name = spec.partition(":")
    try:
        import importlib

        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load runner {spec!r}: {exc}", field="--runner") from exc


def _runner(launch: AgentLaunch, data_dir: Path) -> Runner:
    if launch.runner:
        runner: Runner = load_runner_factory(launch.runner)()
        return runner
    from fogmesh.agent.daemon import model_resolver
    from fogmesh.agent.runner import RunnerConfig, TaskRunner

    base = RunnerConfig().allowed_modules
    return TaskRunner(
        RunnerConfig(
            allowed_modules=(*base, *(m for m in launch.allow_modules if m not in base)),
            allow_commands=launch.allow_commands,
            workers=launch.workers,
            model_resolver=model_resolver(data_dir),  # models fetched over the link land here
        )
    )


def emulated(
    launch: AgentLaunch, config: AgentConfig, task_runner: Runner
) -> tuple[SensorSource, Runner]:
    """An emulated device whose power model is fed the CPU time the real runner measures."""
    from fogmesh.agent.emulated_power import MeteredRunner, emulated_device

    assert launch.emulate is not None
    sensors = emulated_device(
        launch.emulate,
        profile=launch.profile,
        battery=launch.battery,
        charging=launch.charging,
        ambient_c=launch.ambient,
        energy_file=config.data_dir / "energy.json",
    )
    return sensors, MeteredRunner(task_runner, sensors)


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


def run_agent(launch: AgentLaunch) -> None:
    """Run the agent ``launch`` describes until SIGINT/SIGTERM."""
    from pathlib import Path

    from fogmesh._lazy import defer_imports

    # websockets imports these at its top; an idle agent never uses them (docs/performance.md):
    # importlib.metadata only for a development version's number, urllib.request only to find
    # a proxy, which fogmesh.agent.link does without it where the environment is the only
    # source. Both are first used, if ever, on the event loop's thread.
    defer_imports("importlib.metadata", "urllib.request")

    from fogmesh._eventloop import run_service
    from fogmesh._version import __version__
    from fogmesh.agent.daemon import AgentConfig, AgentDaemon
    from fogmesh.devices.sensors import sensor_source_from_env
    from fogmesh.logs import configure_logging

    configure_logging(launch.log_level, launch.log_format)
    config = AgentConfig(
        data_dir=Path(launch.home),
        join_token=launch.join,
        heartbeat=launch.heartbeat,
        labels=launch.labels,
        backoff_max=launch.backoff_max,
        stop_grace=launch.stop_grace,
        agent_version=__version__,
    )
    task_runner = _runner(launch, config.data_dir)
    sensors: SensorSource
    if launch.emulate is not None:
        sensors, task_runner = emulated(launch, config, task_runner)
    else:
        sensors = sensor_source_from_env(launch.profile)
    daemon = AgentDaemon(config, task_runner, sensors=sensors)
    run_service(_serve(daemon), fast_loop=False)  # see fogmesh._eventloop


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point after ``exec_agent``: a FogmeshError is one line on stderr and exit code 1,
    as ``fogmesh``'s own ``main`` makes it."""
    try:
        run_agent(_read_launch(sys.argv[1:] if argv is None else argv))
    except FogmeshError as exc:
        # click's style for the word (red, bold) where stderr is a terminal, as click.echo does
        label = "\x1b[31m\x1b[1merror\x1b[0m" if sys.stderr.isatty() else "error"
        print(f"{label}: {exc.reason}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
