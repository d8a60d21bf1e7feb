"""The agent process stays small: what it does not need at start-up is not imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fogmesh.cli.fogdemo

AGENT_CLI = Path(fogmesh.cli.fogdemo.__file__).with_name("agent.py")

# Loaded on first use only: settings without pydantic, ticket signing (pyseto) on the
# coordinator, the emulated presets for --emulate/--profile, sealed storage.
NOT_AT_START = (
    "pydantic_settings",
    "pyseto",
    "platformdirs",
    "fogmesh.devices.emulated",
    "fogmesh.security.tickets",
    "fogmesh.security.sealed",
    "fogmesh.fog.coordinator",
    "fogmesh.edge",
)


def test_agent_start_up_imports_only_what_an_idle_agent_needs() -> None:
    # As fogdemo's launcher does: the command module by file path, not the fogmesh.cli package.
    code = (
        "import importlib.util as u, sys\n"
        "s = u.spec_from_file_location('_agent_cmd', sys.argv[1])\n"
        "m = u.module_from_spec(s); s.loader.exec_module(m)\n"
        "m.sensor_source_from_env(None).read()\n"
        "from fogmesh.security.tokens import JoinToken\n"
        "from fogmesh.agent.link import open_link\n"
        f"print(','.join(n for n in {NOT_AT_START!r} if n in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(AGENT_CLI)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert out.stdout.strip() == ""
