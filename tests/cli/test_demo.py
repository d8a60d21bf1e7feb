from __future__ import annotations

import json

from typer.testing import CliRunner

from fogmesh.cli.app import app
from fogmesh.cli.demo import DEMO_PRESETS


def test_demo_json_shows_this_machine_and_every_emulated_preset() -> None:
    result = CliRunner().invoke(app, ["demo", "--devices-only", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["this_machine"]["optimization"]["power_mode"] in {
        "performance",
        "balanced",
        "power_save",
        "critical",
    }
    assert list(out["emulated"]) == list(DEMO_PRESETS)
    critical = out["emulated"]["phone-critical-battery"]["optimization"]
    assert (critical["power_mode"], critical["transport_preference"]) == (
        "critical",
        "bitchat_only",
    )
    assert out["emulated"]["desktop-gpu"]["optimization"]["power_mode"] == "performance"


def test_demo_table_names_the_reasons() -> None:
    result = CliRunner().invoke(app, ["demo", "--devices-only"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "phone-critical-battery" in result.output
    assert "critical 10%" in result.output
