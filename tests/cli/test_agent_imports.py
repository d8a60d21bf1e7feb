"""The agent process stays small: ``fogmesh agent`` checks its options with the command line's
stack, then becomes ``python -m fogmesh.agent.service`` (same pid), which imports only what an
idle agent needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fogmesh.agent.link import _proxy_option
from fogmesh.security.tokens import JoinToken

# Loaded on first use only: settings without pydantic, ticket signing (pyseto) on the
# coordinator, the emulated presets for --emulate/--profile, sealed storage; nothing of the
# command line (typer, its click, Rich) once the agent runs; and what websockets imports at its
# top but an idle agent never uses (importlib.metadata with email and zipfile; urllib.request
# with http.client when no proxy is configured).
NOT_IN_THE_AGENT = (
    "typer",
    "click",
    "rich",
    "fogmesh.cli",
    "pydantic",
    "pydantic_settings",
    "pyseto",
    "platformdirs",
    "httpx",
    "sqlalchemy",
    "numpy",
    "email",
    "zipfile",
    "http.client",
    "tempfile",
    "ctypes",
    "fogmesh.devices.emulated",
    "fogmesh.security.tickets",
    "fogmesh.security.sealed",
    "fogmesh.fog.coordinator",
    "fogmesh.edge",
    "fogmesh.client",
    "fogmesh.twin",
)

# A --runner factory that reports the process it runs in, then ends it (status 0), or fails as
# a runner that cannot start would.
_PROBE = textwrap.dedent(
    f"""
    import json, os, sys
    from fogmesh.errors import ConfigError

    def report():
        print(json.dumps({{
            "pid": os.getpid(),
            "unwanted": [n for n in {NOT_IN_THE_AGENT!r} if n in sys.modules],
            "daemon": "fogmesh.agent.daemon" in sys.modules,
            "metadata_deferred": type(sys.modules["importlib.metadata"]).__name__,
            "cmdline": open("/proc/self/cmdline", "rb").read().decode(errors="replace"),
            "cwd_on_path": any(p in ("", os.getcwd()) for p in sys.path),
        }}), flush=True)
        raise SystemExit(0)

    def broken():
        raise ConfigError("this runner cannot start", field="--runner")
    """
)

_TOKEN = JoinToken(
    "http://127.0.0.1:9", b"\x01" * 32, "v4.public.AAAAAAAAAAAA.AAAA"
).encode()  # well formed; the agent stops before it would dial


def _agent(tmp_path: Path, runner: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "fogmesh_probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    env = {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", "from fogmesh.cli import main; main()", "agent",
         "--data-dir", str(tmp_path / "device"), "--join", _TOKEN, "--runner", runner],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_the_agent_runs_in_the_same_process_without_the_command_lines_stack(
    tmp_path: Path,
) -> None:
    out = _agent(tmp_path, "fogmesh_probe:report")
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["unwanted"] == []
    assert seen["daemon"] is True  # the agent's own stack was loaded
    assert seen["metadata_deferred"] == "_Deferred"
    assert "fogmesh.agent.service" in seen["cmdline"]
    assert _TOKEN not in seen["cmdline"]  # the secret travelled in a file descriptor
    assert seen["cwd_on_path"] is False  # no file where it was started can stand in for a module


def test_the_agent_keeps_its_pid_across_the_switch(tmp_path: Path) -> None:
    (tmp_path / "fogmesh_probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from fogmesh.cli import main; main()", "agent",
         "--data-dir", str(tmp_path / "device"), "--join", _TOKEN,
         "--runner", "fogmesh_probe:report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    # Signals sent to the pid that was started (a supervisor's SIGTERM) reach the agent itself.
    assert json.loads(stdout.strip().splitlines()[-1])["pid"] == proc.pid


def test_an_error_after_the_switch_is_one_line(tmp_path: Path) -> None:
    out = _agent(tmp_path, "fogmesh_probe:broken")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: --runner: this runner cannot start", out.stderr


def test_started_by_hand_the_service_says_how_to_start_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fogmesh.agent.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "run 'fogmesh agent --help'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"no_proxy": "localhost"}, None),  # no proxy to bypass
        ({"HTTPS_PROXY": ""}, None),  # empty is unset, for urllib too
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"all_proxy": "socks5h://proxy:1080"}, True),
    ],
)
def test_a_proxy_is_looked_for_only_where_the_environment_can_name_one(
    environ: dict[str, str], expected: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if sys.platform == "darwin" or os.name == "nt":
        assert _proxy_option() is True  # the system's settings may name one
        return
    assert _proxy_option() is expected
    # None only where websockets would have found none (it reads urllib.request's answer).
    if expected is None:
        assert not {"ws", "wss", "socks", "https", "http"} & set(urllib.request.getproxies())


def test_a_deferred_module_runs_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "from fogmesh._lazy import defer_imports\n"
        "defer_imports('calendar')\n"
        "import calendar\n"
        "print(type(sys.modules['calendar']).__name__, 'datetime' in sys.modules)\n"
        "print(calendar.isleap(2024), type(sys.modules['calendar']).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["_Deferred", "False", "True", "module"]


def test_where_the_process_cannot_be_replaced_the_agent_runs_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from fogmesh.cli.app import main

    def refused(path: str, argv: list[str]) -> None:
        raise PermissionError(13, "exec refused", path)

    (tmp_path / "fogmesh_probe.py").write_text(_PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(os, "execv", refused)
    argv = ["fogmesh", "agent", "--data-dir", str(tmp_path / "device"), "--join", _TOKEN,
            "--runner", "fogmesh_probe:report"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with pytest.raises(SystemExit) as ended:
            main()
    finally:
        root.handlers[:] = handlers  # the agent configured logging in this process
        root.setLevel(level)
    assert ended.value.code == 0
    seen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen["pid"] == os.getpid() and seen["daemon"] is True
