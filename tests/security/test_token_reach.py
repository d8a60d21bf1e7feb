"""``fogmesh token create`` warns when its URL cannot reach where the coordinator listens.

The README's "Run a fog" gave a LAN URL to a coordinator bound to 127.0.0.1: the token enrolled
nobody and the device only timed out. The coordinator records its bind address in
``coordinator.json``; token create reads it from the same data directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fogmesh.cli._reach import reach_warning, runtime_url
from fogmesh.cli.app import app
from fogmesh.cli.fogdemo import free_port, poll_until
from fogmesh.security.tokens import JoinToken

runner = CliRunner()


def _runtime(host: str, port: int = 8700, url: str | None = None) -> dict[str, Any]:
    return {"url": url or f"http://{host}:{port}", "pid": 1, "host": host, "port": port}


@pytest.mark.parametrize(
    ("url", "runtime", "says"),
    [
        # loopback bind: only this machine
        ("http://192.168.1.20:8700", _runtime("127.0.0.1"), "--host 0.0.0.0"),
        ("http://fog.home:8700", _runtime("127.0.0.1"), "--host fog.home"),
        ("http://[::1]:8700", _runtime("127.0.0.1"), None),
        ("http://localhost:8700", _runtime("127.0.0.1"), None),
        ("http://127.0.0.1:8700", _runtime("localhost"), None),
        # every interface: any address does, loopback only from here
        ("http://192.168.1.20:8700", _runtime("0.0.0.0"), None),
        ("http://fog.home:8700", _runtime("::"), None),
        ("http://127.0.0.1:8700", _runtime("0.0.0.0"), "from this machine only"),
        # one address
        ("http://192.168.1.20:8700", _runtime("192.168.1.20"), None),
        ("http://192.168.1.21:8700", _runtime("192.168.1.20"), "listens on 192.168.1.20:8700"),
        ("http://127.0.0.1:8700", _runtime("192.168.1.20"), "--host 0.0.0.0"),
        ("http://fog.home:8700", _runtime("192.168.1.20"), None),  # not resolved: benefit of doubt
        # the port
        ("http://127.0.0.1:8701", _runtime("127.0.0.1"), "listens on port 8700"),
        ("http://192.168.1.20", _runtime("0.0.0.0"), "says 80"),
        # what the coordinator was told devices dial (--url, e.g. behind a proxy) is trusted
        ("https://fog.example", _runtime("127.0.0.1", url="https://fog.example"), None),
        ("https://fog.example:443", _runtime("127.0.0.1", url="https://fog.example/"), None),
        # nothing recorded: nothing to check against
        ("http://192.168.1.20:8700", {}, None),
        ("http://192.168.1.20:8700", {"url": "http://127.0.0.1:8700", "pid": 1}, None),
    ],
)
def test_reach_warning(url: str, runtime: dict[str, Any], says: str | None) -> None:
    warning = reach_warning(url, runtime)
    if says is None:
        assert warning is None
    else:
        assert warning is not None and says in warning, warning


def test_runtime_url_is_a_url_a_device_can_dial() -> None:
    assert runtime_url(_runtime("127.0.0.1", 9000)) == "http://127.0.0.1:9000"
    assert runtime_url(_runtime("0.0.0.0")) is None
    assert runtime_url(_runtime("::", url="http://[::]:8700")) is None
    assert runtime_url({}) is None


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A real coordinator process on 127.0.0.1 (the default bind), stopped afterwards."""
    data_dir, port = tmp_path / "fog", free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    with (tmp_path / "coordinator.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from fogmesh.cli import main; main()", "coordinator",
             "--data-dir", str(data_dir), "--port", str(port), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:

        def started() -> bool:
            assert proc.poll() is None, (tmp_path / "coordinator.log").read_text()
            return (data_dir / "coordinator.json").exists()

        poll_until(started, 60, "the coordinator to write coordinator.json")
        yield data_dir, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_token_create_warns_when_its_url_cannot_reach_the_coordinator(
    coordinator: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, port = coordinator
    monkeypatch.delenv("FOGMESH_COORDINATOR", raising=False)
    runtime = json.loads((data_dir / "coordinator.json").read_text())
    assert (runtime["host"], runtime["port"]) == ("127.0.0.1", port)

    def create(*args: str) -> tuple[str, str]:
        result = runner.invoke(app, ["token", "create", "--data-dir", str(data_dir), *args])
        assert result.exit_code == 0, result.output  # a warning, not a refusal
        return JoinToken.parse(result.stdout.strip()).coordinator_url, result.stderr

    # The README's two machines: a LAN URL for a coordinator bound to 127.0.0.1.
    url, err = create("--url", f"http://192.168.1.20:{port}")
    assert url == f"http://192.168.1.20:{port}"
    assert "warning" in err and f"127.0.0.1:{port} only" in err and "--host 0.0.0.0" in err

    url, err = create("--url", f"http://127.0.0.1:{port + 1}")
    assert f"listens on port {port}" in err

    url, err = create("--url", f"http://127.0.0.1:{port}")
    assert "warning" not in err

    # No --url: the running coordinator's own URL (its real port, not the default 8700).
    url, err = create()
    assert url == f"http://127.0.0.1:{port}"
    assert "warning" not in err
