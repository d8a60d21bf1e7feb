"""``fogmesh simulate`` end to end on a tiny fleet: files written, JSON, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fogmesh.cli.app import app
from fogmesh.errors import ConfigError

runner = CliRunner()


def test_simulate_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["simulate", "--devices", "30", "--hours", "2", "--policy", "fogmesh,random"]
    result = runner.invoke(app, [*args, "--seed", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [p["policy"] for p in summary["policies"]] == ["fogmesh", "random"]
    assert summary["scenario"]["devices"] == 30
    for name in ("metrics.json", "metrics.csv", "series.csv", "report.md"):
        assert (out / name).stat().st_size > 0
    for plot in ("battery_by_class", "battery_energy", "utilisation", "wait_cdf", "temperature"):
        assert (out / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| metric | fogmesh | random |" in report
    assert "best battery-agnostic baseline" in report
    # the same seed reproduces the same outcome
    again = runner.invoke(app, [*args, "--seed", "2", "--out", str(tmp_path / "o2"), "--json"])
    assert [p["outcome"] for p in json.loads(again.output)["policies"]] == [
        p["outcome"] for p in summary["policies"]
    ]


def test_bad_scenario_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"devices": 10, "overnight_charging": 2}))
    result = runner.invoke(app, ["simulate", "--scenario", str(bad), "--out", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.field == "overnight_charging"


def test_unknown_policy_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--policy", "magic", "--out", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.field == "policy"
