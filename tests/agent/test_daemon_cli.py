"""``fogmesh agent`` / ``fogmesh coordinator`` errors: one clear line, exit code 1, no traceback."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from fogmesh.cli.app import main


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["agent"], "run 'fogmesh agent --join TOKEN' first"),
        (["agent", "--join", "fmj1.AAAAAAAAAAAA"], "join token"),
        (["agent", "--join", "hello"], "not a fogmesh join token"),
        (["agent", "--heartbeat", "0"], "--heartbeat: must be > 0"),
        (["agent", "--label", "nolabel"], "key=value"),
        (["coordinator", "--port", "70000"], "port"),
    ],
)
def test_errors_are_one_line(
    args: list[str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["fogmesh", *args, "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert err.strip().count("\n") == 0, err


def test_coordinator_port_in_use_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["fogmesh", "coordinator", "--port", port, "--data-dir", str(tmp_path)]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1:" in err and "Traceback" not in err
    assert not (tmp_path / "admin.ticket").exists()  # nothing started
