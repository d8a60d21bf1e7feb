"""The root command lists every command without importing it, and names a missing extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fogmesh.cli.app import SUBCOMMANDS, app, load_subcommand, missing_extra
from fogmesh.errors import ConfigError

runner = CliRunner()
ROLE_EXTRAS = {"agent", "client", "coordinator", "postgres", "onnx", "sim", "twin"}


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_entry_loads_and_its_summary_is_the_commands_own(name: str) -> None:
    command = load_subcommand(name)
    own = (command.help or "").split("\n\n")[0]
    assert SUBCOMMANDS[name].summary == " ".join(own.split())
    assert set(SUBCOMMANDS[name].extras) <= ROLE_EXTRAS
    assert runner.invoke(app, [name, "--help"]).exit_code == 0


def test_help_lists_every_command_and_imports_none() -> None:
    code = (
        "import sys\n"
        "from fogmesh.cli import main\n"
        "sys.argv = ['fogmesh', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('fogmesh.cli.') and m not in "
        "('fogmesh.cli.app',)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    for name in SUBCOMMANDS:
        assert f" {name} " in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_typo_is_still_suggested() -> None:
    result = runner.invoke(app, ["tokn"])
    assert result.exit_code == 2
    assert "Did you mean 'token'" in result.output


def test_missing_extra_names_the_role_or_the_module_s_own_extra() -> None:
    def error(command: str, module: str) -> str:
        found = missing_extra(
            command, ModuleNotFoundError(f"No module named {module!r}", name=module)
        )
        assert isinstance(found, ConfigError)
        return found.reason

    assert error("agent", "websockets") == (
        "fogmesh agent needs the agent extra (no module 'websockets'): pip install 'fogmesh[agent]'"
    )
    assert "pip install 'fogmesh[coordinator,agent]'" in error("demo", "sqlalchemy.ext")
    assert "pip install 'fogmesh[postgres]'" in error("coordinator", "asyncpg")
    assert "pip install 'fogmesh[onnx]'" in error("agent", "onnxruntime")
    assert "reinstall" in error("submit", "httpx")
    own = ModuleNotFoundError("No module named 'fogmesh.nope'", name="fogmesh.nope")
    assert missing_extra("agent", own) is None  # a bug of ours is shown as it is


def test_a_missing_extra_inside_a_running_command_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--db postgresql+asyncpg://…` without the postgres extra: the store imports asyncpg only
    # when it opens such a URL, long after the command's module loaded.
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    result = runner.invoke(
        app,
        ["coordinator", "--data-dir", str(tmp_path), "--port", "0",
         "--db", "postgresql+asyncpg://fog@127.0.0.1:1/fogmesh"],
    )  # fmt: skip
    assert isinstance(result.exception, ConfigError)
    assert result.exception.reason == (
        "fogmesh coordinator needs the postgres extra (no module 'asyncpg'): "
        "pip install 'fogmesh[postgres]'"
    )


def test_a_command_module_failing_to_import_is_one_error() -> None:
    # In a child process: re-importing the simulator here would leave this one's modules mixed.
    code = (
        "import sys\n"
        "sys.modules['simpy'] = None\n"
        "sys.argv = ['fogmesh', 'simulate', '--help']\n"
        "from fogmesh.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: fogmesh simulate needs the sim extra (no module 'simpy'): "
        "pip install 'fogmesh[sim]'"
    )


def test_the_root_stays_a_group_of_typer_commands() -> None:
    assert isinstance(app, typer.Typer)
    result = runner.invoke(app, ["version", "--json"])
    assert result.exit_code == 0 and '"fogmesh"' in result.stdout
