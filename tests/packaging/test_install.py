"""A stranger's install: the built wheel in an empty venv, with no extras and with ``[agent]``.

The base install must run ``--help``, ``agent --help`` and the thin client, and every command
whose role extra is missing must say in one line which extra to install (exit 1, no
traceback). The ``[agent]`` install must enrol with a real coordinator, run real work that a
base install's ``fogmesh submit --wait`` sent it, and idle small.

Dependencies come from a wheelhouse kept in pytest's cache directory: filled by ``pip download``
(through pip's own cache) the first time, then installed with ``--no-index`` (a few seconds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fogmesh.cli.fogdemo import free_port, poll_until
from fogmesh.client import FogClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The agent process alone (not its warm workers), after idling; measured 39.3 MB here with
# only the agent extra (43.5 MB before the agent ran without the command line's stack,
# websockets' unused imports and ctypes; 51.5 MB before typer was kept below 0.29, 74.5 MB
# when the CLI imported every command). See docs/performance.md.
AGENT_IDLE_RSS_MB = 40.0


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("dist")
    (built,) = WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])
    return Path(built)


@pytest.fixture(scope="module")
def wheelhouse(request: pytest.FixtureRequest, wheel: Path) -> Path:
    house = Path(request.config.cache.mkdir("fogmesh-install-wheelhouse"))
    # Resolve against the wheelhouse first; download only what a changed pyproject now needs.
    probe = _pip(
        "download", "--no-index", "--find-links", str(house), "-d", str(house), f"{wheel}[agent]"
    )
    if probe.returncode != 0:
        fetched = _pip("download", "--find-links", str(house), "-d", str(house), f"{wheel}[agent]")
        assert fetched.returncode == 0, fetched.stderr
    for ours in house.glob("fogmesh-*"):
        ours.unlink()  # only dependencies live here; the wheel under test is always fresh
    return house


def _venv(where: Path, wheelhouse: Path, requirement: str) -> Path:
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    done = _pip(
        "--python", str(python), "install", "--no-index", "--find-links", str(wheelhouse),
        requirement,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return where / "bin" / "fogmesh"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, wheel: Path, wheelhouse: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("base") / "venv", wheelhouse, str(wheel))


@pytest.fixture(scope="module")
def agent_only(tmp_path_factory: pytest.TempPathFactory, wheel: Path, wheelhouse: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("agent") / "venv", wheelhouse, f"{wheel}[agent]")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FOGMESH_")}
    env.pop("PYTHONPATH", None)  # nothing of this checkout may leak into the empty venv
    return {**env, "FOGMESH_HOME": str(home), "COLUMNS": "120"}


def _run(exe: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=_env(home), timeout=60
    )


def _one_line_error(done: subprocess.CompletedProcess[str], extra: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'fogmesh[{extra}]'" in lines[0], lines[0]


def test_the_base_install_runs_help_and_the_thin_client_and_names_missing_extras(
    base: Path, tmp_path: Path
) -> None:
    python = base.with_name("python")
    installed = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print([m for m in "
         "('websockets', 'cryptography', 'fastapi', 'sqlalchemy', 'numpy', 'pydantic') "
         "if u.find_spec(m)])"],
        capture_output=True, text=True, check=True, env=_env(tmp_path),
    )  # fmt: skip
    assert installed.stdout.strip() == "[]"  # really no role stack in this venv

    top = _run(base, "--help", home=tmp_path)
    assert top.returncode == 0, top.stderr
    for command in ("agent", "coordinator", "submit", "token", "twin", "simulate"):
        assert command in top.stdout
    agent_help = _run(base, "agent", "--help", home=tmp_path)
    assert agent_help.returncode == 0, agent_help.stderr
    assert "--join" in agent_help.stdout
    assert _run(base, "version", home=tmp_path).returncode == 0
    detect = _run(base, "device", "detect", "--json", home=tmp_path)
    assert detect.returncode == 0, detect.stderr

    _one_line_error(_run(base, "agent", "--join", "fmj1.x", home=tmp_path), "agent")
    _one_line_error(_run(base, "coordinator", "--port", "0", home=tmp_path), "coordinator")
    _one_line_error(_run(base, "token", "create", home=tmp_path), "coordinator")
    _one_line_error(_run(base, "twin", "status", home=tmp_path), "twin")
    _one_line_error(_run(base, "simulate", "--help", home=tmp_path), "sim")
    _one_line_error(_run(base, "demo", home=tmp_path), "coordinator,agent")

    # The thin client runs: with nothing listening it says so in one line.
    closed = f"http://127.0.0.1:{free_port()}"
    submit = _run(
        base, "submit", "--url", closed, "--ticket", "x",
        "--function", "fogmesh.agent.workloads.linalg:matmul", home=tmp_path,
    )  # fmt: skip
    assert submit.returncode == 1, submit.stderr
    assert "Traceback" not in submit.stderr
    assert f"no coordinator at {closed}" in submit.stderr, submit.stderr


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def test_an_agent_only_install_joins_runs_work_from_a_base_install_and_idles_small(
    agent_only: Path, base: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    fog, phone = tmp_path / "fog", tmp_path / "phone"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The coordinator from this checkout's full install (its extra is not under test here).
    procs.append(
        _spawn(
            [sys.executable, "-c", "from fogmesh.cli import main; main()", "coordinator",
             "--data-dir", str(fog), "--port", str(port), "--scheduling-interval", "0.2",
             "--log-level", "warning"],
            tmp_path / "coordinator.log", _env(fog),
        )
    )  # fmt: skip
    poll_until(lambda: (fog / "admin.ticket").exists() and (fog / "coordinator.json").exists(),
               60, "the coordinator to start")  # fmt: skip
    ticket = (fog / "admin.ticket").read_text().strip()
    token = subprocess.run(
        [sys.executable, "-c", "from fogmesh.cli import main; main()", "token", "create",
         "--data-dir", str(fog), "--url", url],
        capture_output=True, text=True, check=True, env=_env(fog), timeout=60,
    ).stdout.strip()  # fmt: skip

    agent = _spawn(
        [str(agent_only), "agent", "--join", token, "--data-dir", str(phone), "--workers", "1",
         "--log-level", "warning"],
        tmp_path / "agent.log", _env(phone),
    )  # fmt: skip
    procs.append(agent)
    with FogClient(url, ticket) as client:

        def registered() -> bool:
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            return any(d.get("registered_at") for d in client.devices())

        poll_until(registered, 60, "the agent to register")

        # Work sent by the base install's thin client, run by the agent-only install.
        started = time.monotonic()
        submit = _run(
            base, "submit", "--url", url, "--ticket", ticket, "--type", "preprocessing",
            "--cpu", "0.5", "--memory", "64", "--duration", "1",
            "--function", "fogmesh.agent.workloads.linalg:matmul", "--args", '{"n": 16}',
            "--wait", "--json", home=tmp_path / "client",
        )  # fmt: skip
        assert submit.returncode == 0, (submit.stdout, submit.stderr)
        assert json.loads(submit.stdout)["state"] == "completed"

        # Idle: heartbeats only, for three of them.
        time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
        rss_mb = psutil.Process(agent.pid).memory_info().rss / 2**20
    print(f"agent-only install: idle agent RSS {rss_mb:.1f} MB")
    assert rss_mb <= AGENT_IDLE_RSS_MB
