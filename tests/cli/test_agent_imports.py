"""The agent process stays small: what it does not need at start-up is not imported."""

from __future__ import annotations

import os
import subprocess
import sys

# Loaded on first use only: settings without pydantic, ticket signing (pyseto) on the
# coordinator, the emulated presets for --emulate/--profile, sealed storage; and nothing of the
# other commands (the CLI imports a command's module only when it runs): no Rich tables, no
# HTTP client, no store, no pydantic (typer ≥ 0.29 would validate every option through it).
NOT_AT_START = (
    "pydantic",
    "pydantic_settings",
    "pyseto",
    "platformdirs",
    "rich",
    "httpx",
    "sqlalchemy",
    "numpy",
    "fogmesh.devices.emulated",
    "fogmesh.security.tickets",
    "fogmesh.security.sealed",
    "fogmesh.fog.coordinator",
    "fogmesh.edge",
    "fogmesh.client",
    "fogmesh.cli.tasks",
    "fogmesh.cli.device",
    "fogmesh.twin",
)


def test_the_agent_command_imports_only_what_an_idle_agent_needs(tmp_path: object) -> None:
    # The real command line, parsed by typer, up to the point where the agent would start: a
    # runner that cannot be loaded stops it right after the agent's stack is imported.
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print(','.join(n for n in {NOT_AT_START!r} "
        "if n in sys.modules), 'fogmesh.agent.daemon' in sys.modules))\n"
        "sys.argv = ['fogmesh', 'agent', '--data-dir', sys.argv[1], '--runner', 'no_such:x']\n"
        "from fogmesh.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert "cannot load runner" in out.stderr
    assert out.stdout.strip() == "True"  # no unwanted module; the agent's own stack was loaded
