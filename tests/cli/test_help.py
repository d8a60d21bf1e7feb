"""Every command has --help text with an example, and --json (the long-running services have
--log-format json instead)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from fogmesh.cli import app
from fogmesh.cli.app import SUBCOMMANDS, load_subcommand

SERVICES = {"coordinator", "agent"}


def _commands(command: Any, path: list[str]) -> Iterator[list[str]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield path


def _tree() -> Iterator[list[str]]:
    # The root lists commands without importing them (cli/app.py): load each one here.
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        if name in SUBCOMMANDS:
            yield from _commands(load_subcommand(name), [name])
        else:
            yield [name]


ALL = [" ".join(p) for p in _tree()]


def test_the_tree_has_the_commands_users_reach_for() -> None:
    for wanted in ("cancel", "drain", "device rm", "token list", "token revoke", "token create"):
        assert wanted in ALL


@pytest.mark.parametrize("command", ALL)
def test_help_has_an_example_and_json(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"Example: fogmesh {command}" in " ".join(result.output.split())
    expected = "--log-format" if command in SERVICES else "--json"
    assert expected in result.output
