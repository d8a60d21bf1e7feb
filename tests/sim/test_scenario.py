"""Scenario validation: a bad file names the offending field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fogmesh.errors import ConfigError
from fogmesh.sim.scenario import Scenario, load_scenario


def test_default_is_the_issue_scenario() -> None:
    s = Scenario()
    assert (s.devices, s.hours, s.load) == (1000, 24.0, 0.6)
    assert s.duration_s == 86400.0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"devices": 0}, "devices"),
        ({"devices": 2.5}, "devices"),
        ({"hours": -1}, "hours"),
        ({"load": "high"}, "load"),
        ({"seed": True}, "seed"),
        ({"deadline_share": 1.5}, "deadline_share"),
        ({"round_s": float("nan")}, "round_s"),
        ({"mix": {"toaster": 1.0}}, "mix.toaster"),
        ({"mix": {"laptop": -1}}, "mix.laptop"),
        ({"mix": {"laptop": 0}}, "mix"),
        ({"mix": []}, "mix"),
        ({"devcies": 10}, "devcies"),
    ],
)
def test_bad_values_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        Scenario.from_dict(data)
    assert err.value.field == field
    assert str(err.value).startswith(field)


def test_json_and_toml_files(tmp_path: Path) -> None:
    j = tmp_path / "s.json"
    j.write_text(json.dumps({"devices": 12, "hours": 2}))
    assert load_scenario(j).devices == 12
    t = tmp_path / "s.toml"
    t.write_text("devices = 7\nload = 1.2\n[mix]\nlaptop = 1.0\n")
    s = load_scenario(t, seed=9)
    assert (s.devices, s.load, s.seed, s.mix) == (7, 1.2, 9, {"laptop": 1.0})


def test_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('hours = "two"\n')
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    assert err.value.field == "hours"
    broken = tmp_path / "broken.json"
    broken.write_text("{devices: 3")
    with pytest.raises(ConfigError) as err:
        load_scenario(broken)
    assert err.value.field == "scenario"
    with pytest.raises(ConfigError):
        load_scenario(tmp_path / "missing.json")
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError) as err:
        load_scenario(listing)
    assert err.value.field == "scenario"
