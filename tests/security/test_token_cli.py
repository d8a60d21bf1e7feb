"""``fogmesh token create`` through the root CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fogmesh.cli.app import app
from fogmesh.cli.token import parse_duration
from fogmesh.clock import WallClock
from fogmesh.errors import ConfigError, KeyFileError
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.tickets import MemorySeenStore
from fogmesh.security.tokens import JoinToken

runner = CliRunner()


def test_create_prints_only_the_token_on_stdout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["token", "create", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "\n" not in token
    join = JoinToken.parse(token)
    keys = CoordinatorKeys.load_or_create(tmp_path)
    assert join.coordinator_key == keys.noise.public
    assert join.coordinator_url == "http://127.0.0.1:8700"
    clock = WallClock()
    ticket = keys.verifier(clock, seen=MemorySeenStore(clock)).verify(
        join.ticket, audience=keys.audience, scope="enrol"
    )
    assert ticket.expires_at - ticket.issued_at == 24 * 3600


def test_create_json(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "token",
            "create",
            "--data-dir",
            str(tmp_path),
            "--ttl",
            "15m",
            "--scope",
            "submit,read",
            "--scope",
            "enrol",
            "--url",
            "https://fog.example",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["scopes"] == ["enrol", "submit", "read"]
    assert info["coordinator_url"] == "https://fog.example"
    join = JoinToken.parse(info["token"])
    assert join.coordinator_key.hex() == info["coordinator_key"]
    assert join.coordinator_url == "https://fog.example"


def test_keys_are_reused_across_invocations(tmp_path: Path) -> None:
    tokens = [
        runner.invoke(app, ["token", "create", "--data-dir", str(tmp_path)]).stdout.strip()
        for _ in range(2)
    ]
    first, second = (JoinToken.parse(t) for t in tokens)
    assert first.coordinator_key == second.coordinator_key
    assert first.ticket != second.ticket


def test_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path))
    monkeypatch.setenv("FOGMESH_COORDINATOR", "http://192.168.1.20:8700")
    result = runner.invoke(app, ["token", "create"])
    assert result.exit_code == 0, result.output
    assert JoinToken.parse(result.stdout).coordinator_url == "http://192.168.1.20:8700"
    assert (tmp_path / "keys" / "coordinator-noise.key").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--ttl", "soon"], ConfigError),
        (["--ttl", "0"], ConfigError),
        (["--ttl", "31d"], ConfigError),
        (["--scope", "root"], ConfigError),
    ],
)
def test_bad_options_are_config_errors(
    tmp_path: Path, args: list[str], error: type[Exception]
) -> None:
    result = runner.invoke(app, ["token", "create", "--data-dir", str(tmp_path), *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, error)


def test_world_readable_signing_key_stops_the_command(tmp_path: Path) -> None:
    CoordinatorKeys.load_or_create(tmp_path)
    (tmp_path / "keys" / "ticket-signing.key").chmod(0o604)
    result = runner.invoke(app, ["token", "create", "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, KeyFileError)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
