"""``fogmesh device detect|optimize`` through Typer's runner, main(), and one real process."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fogmesh.cli import app, main
from fogmesh.cli import device as device_cli
from fogmesh.errors import ConfigError

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_profile_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_PROFILE", raising=False)
    monkeypatch.delenv("FOGMESH_DEVICE_TYPE", raising=False)


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["device", *args])
    return result.exit_code, result.output


def test_detect_json_for_this_machine() -> None:
    code, out = invoke("detect", "--json", "--cpu-sample", "0.1")
    assert code == 0, out
    data = json.loads(out)
    assert data["source"] == "this machine"
    assert data["classification"]["device_type"] == data["profile"]["device_type"]
    assert data["classification"]["reason"]
    assert data["profile"]["capabilities"]["ram_total_mb"] > 0
    # the sample window gave the CPU load time to be measured
    assert 0 <= data["profile"]["cpu_percent"] <= 100


def test_detect_json_for_a_preset() -> None:
    code, out = invoke("detect", "--json", "--profile", "phone-hot")
    assert code == 0, out
    data = json.loads(out)
    assert data["source"] == "preset phone-hot"
    assert data["profile"]["device_type"] == "smartphone"
    assert data["profile"]["battery_percent"] == 64.0
    assert data["profile"]["platform_thermal"] == {"platform": "android", "status": 3}


def test_detect_table_shows_absent_readings_as_a_dash() -> None:
    code, out = invoke("detect", "-p", "raspberry-pi")
    assert code == 0, out
    assert "Raspberry Pi 4 Model B" in out
    battery_line = next(line for line in out.splitlines() if "battery level" in line)
    assert "—" in battery_line


def test_detect_uses_the_environment_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_PROFILE", "desktop-gpu")
    code, out = invoke("detect", "--json")
    assert code == 0, out
    assert json.loads(out)["profile"]["capabilities"]["gpu_memory_mb"] == 12288


def test_optimize_json_for_a_critical_phone() -> None:
    code, out = invoke("optimize", "--json", "-p", "phone-critical-battery")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["device_id"] == "phone-critical-battery"
    assert data["readings"]["battery_percent"] == 7.0
    decision = data["optimization"]
    assert decision["power_mode"] == "critical"
    assert decision["cpu_limit_percent"] <= 20  # seed: critical battery → CPU 20 %
    assert decision["reasons"]


def test_optimize_table() -> None:
    code, out = invoke("optimize", "-p", "phone-hot")
    assert code == 0, out
    assert "power mode" in out and "power_save" in out
    assert "chunk size" in out and "transport" in out


def test_optimize_count_gives_one_json_object_per_reading() -> None:
    code, out = invoke(
        "optimize", "-p", "laptop-on-cellular", "--json", "--count", "3", "--interval", "0.05"
    )
    assert code == 0, out
    readings = [json.loads(line) for line in out.strip().splitlines()]
    assert len(readings) == 3
    stamps = [r["timestamp"] for r in readings]
    assert stamps == sorted(stamps) and stamps[0] < stamps[-1]


def test_watch_ends_cleanly_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(device_cli.asyncio, "sleep", interrupted)
    code, out = invoke("optimize", "-p", "desktop", "--watch", "--json")
    assert code == 0, out
    assert len(out.strip().splitlines()) == 1


def test_interval_must_be_positive() -> None:
    code, _ = invoke("optimize", "-p", "desktop", "--watch", "--interval", "0")
    assert code == 2


@pytest.mark.parametrize("command", ["detect", "optimize"])
def test_help_has_an_example(command: str) -> None:
    code, out = invoke(command, "--help")
    assert code == 0
    assert f"Example: fogmesh device {command}" in out
    assert "--profile" in out and "--json" in out


def test_bad_profile_is_a_config_error_with_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("battery_percent = 120\n", encoding="utf-8")
    result = runner.invoke(app, ["device", "detect", "--profile", str(bad)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert result.exception.field == "battery_percent"


def test_main_prints_one_line_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    bad = tmp_path / "bad.json"
    bad.write_text('{"cpu_percent": 250}', encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["fogmesh", "device", "optimize", "-p", str(bad)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: cpu_percent: must be 0–100, not 250.0 (in {bad})"]


def test_real_process(tmp_path: Path) -> None:
    fogmesh = Path(sys.executable).parent / "fogmesh"
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "phone-hot"\ncharging = "yes"\n', encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)}
    failed = subprocess.run(
        [str(fogmesh), "device", "detect", "--profile", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines() == [
        f"error: charging: Input should be a valid boolean (in {bad})"
    ]
    ok = subprocess.run(
        [str(fogmesh), "device", "optimize", "--json", "-p", "tablet-charging"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["device_type"] == "tablet"


def test_real_process_watch_stops_on_sigint(tmp_path: Path) -> None:
    fogmesh = Path(sys.executable).parent / "fogmesh"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [str(fogmesh), "device", "optimize", "-p", "phone-hot", "--watch", "--json", "-i", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while len(lines) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                lines.append(proc.stdout.readline())
        assert len(lines) == 2, "watch did not produce two readings in 30 s"
        assert all(json.loads(line)["device_id"] == "phone-hot" for line in lines)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err
