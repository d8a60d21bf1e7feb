"""``fogmesh submit | tasks | task | explain | devices | clusters`` against a real coordinator.

One coordinator service (in-memory store) is served by uvicorn on a free 127.0.0.1 port in a
background thread, so every command goes through real HTTP. Its devices are registered straight
into the service and a stand-in agent, hooked in as the dispatcher, runs each leased task at
once: ``{"fail": reason}`` fails it for good, anything else completes with an echo of its args.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from fogmesh.cli import app, main
from fogmesh.cli.fogdemo import free_port
from fogmesh.cli.fogdemo import poll_until as poll
from fogmesh.client import FogClient, WaitTimeout, error_from_response, find_coordinator
from fogmesh.devices.emulated import preset
from fogmesh.errors import (
    ConfigError,
    FogmeshError,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    StaleAttempt,
    TaskNotFound,
    TicketError,
    TicketScopeError,
    TransportError,
)
from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.fog.tasks import PythonPayload, Task
from fogmesh.server import CoordinatorService, ServerConfig, create_app

T = TypeVar("T")
runner = CliRunner()
DEVICES = ("desktop", "phone-critical-battery")


class LiveFog:
    """A coordinator service on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = ServerConfig(
            data_dir=data_dir,
            port=self.port,
            db_url="memory",
            coordinator=CoordinatorConfig(scheduling_interval=0.2),
        )
        self.service = CoordinatorService(self.config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-fog", daemon=True)
        self._work: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20) or self._failure is not None:
            raise AssertionError(f"coordinator did not start: {self._failure!r}")

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        poll(healthy, 20, "/healthz")
        self.service.write_runtime(self.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(20)
        assert not self._thread.is_alive(), "coordinator thread did not stop"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which fails the test with it
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        # The stand-in agent replaces the WebSocket hub's push: the coordinator calls it with
        # each lease, exactly where it would send `assign` to a connected device.
        self.service.hub.dispatch = self._dispatch  # type: ignore[method-assign]
        await self.service.start()
        sock = socket.create_server(("127.0.0.1", self.port))
        app_ = create_app(self.config, service=self.service)
        self.server = uvicorn.Server(uvicorn.Config(app_, lifespan="off", log_level="warning"))
        self._ready.set()
        try:
            await self.server.serve(sockets=[sock])
        finally:
            sock.close()
            self.service.clear_runtime()
            await self.service.stop()

    def _dispatch(self, task: Task) -> None:
        job = asyncio.get_running_loop().create_task(self._run_task(task))
        self._work.add(job)
        job.add_done_callback(self._work.discard)

    async def _run_task(self, task: Task) -> None:
        coordinator = self.service.coordinator
        device = task.assigned_device or ""
        args = task.payload.args if isinstance(task.payload, PythonPayload) else {}
        await coordinator.report_started(task.id, device, task.attempt)
        if "fail" in args:
            error = {"code": "task_error", "reason": str(args["fail"])}
            await coordinator.report_failure(task.id, device, task.attempt, error, retry=False)
        else:
            await coordinator.report_result(task.id, device, task.attempt, {"echo": args})


@pytest.fixture(scope="module")
def fog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFog]:
    live = LiveFog(tmp_path_factory.mktemp("fog") / "coord")
    try:
        live.start()
        for name in DEVICES:
            live.call(live.service.coordinator.register_node(preset(name)))
        yield live
    finally:
        live.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("FOGMESH_COORDINATOR", "FOGMESH_TICKET"):
        monkeypatch.delenv(name, raising=False)
    # An empty home: only what a test passes can lead a command to a coordinator.
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("COLUMNS", "200")


def run(fog: LiveFog, *args: str) -> Result:
    return runner.invoke(app, [*args, "--data-dir", str(fog.data_dir)])


def run_json(fog: LiveFog, *args: str) -> Any:
    result = run(fog, *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def ticket(fog: LiveFog, *scopes: str) -> str:
    service = fog.service
    return service.issuer.issue(
        subject="tester", audience=service.keys.audience, scopes=scopes, ttl=600
    )


# -- help -----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["submit", "tasks", "task", "explain", "devices", "clusters"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: fogmesh {command}" in result.output
    for option in ("--json", "--url", "--ticket", "--data-dir"):
        assert option in result.output


# -- submit, task, tasks --------------------------------------------------------------------
def test_submit_wait_prints_the_result_and_the_attempt(fog: LiveFog) -> None:
    result = run(
        fog,
        "submit",
        "--type",
        "embedding",
        "--priority",
        "high",
        "--function",
        "fogmesh.agent.workloads:embed",
        "--args",
        '{"text": "hello fog"}',
        "--wait",
        "--timeout",
        "20",
    )
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    assert "completed" in out and "embedding · high" in out
    assert '"text": "hello fog"' in out  # the stand-in agent's echo, through the store and HTTP
    assert "desktop" in out  # the attempts table names the device that ran it


def test_submit_wait_json_is_the_finished_task(fog: LiveFog) -> None:
    done = run_json(
        fog,
        "submit",
        "--function",
        "m:f",
        "--args",
        '{"n": 3}',
        "--cpu",
        "2",
        "--memory",
        "512",
        "--duration",
        "5",
        "--wait",
        "--timeout",
        "20",
    )
    assert done["state"] == "completed"
    assert done["result"] == {"echo": {"n": 3}}
    assert done["resources"]["cpu_cores"] == 2.0 and done["resources"]["memory_mb"] == 512
    assert [h["outcome"] for h in done["history"]] == ["completed"]
    assert done["history"][0]["device_id"] == "desktop"


def test_a_failed_task_exits_1_and_shows_its_error(fog: LiveFog) -> None:
    result = run(
        fog,
        "submit",
        "--function",
        "m:f",
        "--args",
        '{"fail": "out of cheese"}',
        "--wait",
        "--timeout",
        "20",
    )
    assert result.exit_code == 1
    assert "failed" in result.stdout and "task_error: out of cheese" in result.stdout


def test_submit_then_task_and_tasks(fog: LiveFog) -> None:
    submitted = run_json(fog, "submit", "--type", "training", "--gpu", "--priority", "low")
    task_id = submitted["task_id"]
    assert submitted["state"] == "pending"

    shown = run_json(fog, "task", task_id)
    assert shown["id"] == task_id and shown["type"] == "training"
    assert shown["resources"]["requires_gpu"] is True
    # No device has a GPU, so it stays pending: listed under that state, not under completed.
    pending = [t["id"] for t in run_json(fog, "tasks", "--state", "pending")]
    completed = [t["id"] for t in run_json(fog, "tasks", "--state", "completed")]
    assert task_id in pending and task_id not in completed

    bare = run(fog, "submit", "--type", "training", "--gpu")
    assert bare.exit_code == 0 and bare.stdout.startswith("submitted ")
    assert "note: no payload" in bare.stderr  # an agent would refuse it

    table = run(fog, "tasks", "--state", "pending")
    assert table.exit_code == 0
    assert task_id in table.stdout and "training" in table.stdout and "low" in table.stdout

    page = run_json(fog, "tasks", "--limit", "1")
    assert len(page) == 1
    after = run_json(fog, "tasks", "--after", page[0]["id"], "--limit", "1000")
    assert page[0]["id"] not in [t["id"] for t in after]


def test_model_payload_reads_its_input_file(fog: LiveFog, tmp_path: Path) -> None:
    data = tmp_path / "x.json"
    data.write_text('{"input": [[1.0, 2.0]]}', encoding="utf-8")
    submitted = run_json(fog, "submit", "--model", "tutor_v1", "--input", str(data))
    shown = run_json(fog, "task", submitted["task_id"])
    assert shown["payload"]["model_id"] == "tutor_v1"
    assert shown["payload"]["input"] == {"input": [[1.0, 2.0]]}


def test_command_payload_is_split_like_a_shell(fog: LiveFog) -> None:
    submitted = run_json(fog, "submit", "--command", "python -c 'print(1 + 1)'")
    shown = run_json(fog, "task", submitted["task_id"])
    assert shown["payload"]["argv"] == ["python", "-c", "print(1 + 1)"]


def test_deadline_is_relative_seconds(fog: LiveFog) -> None:
    before = time.time()
    submitted = run_json(fog, "submit", "--gpu", "--deadline", "3600")
    deadline = run_json(fog, "task", submitted["task_id"])["deadline"]
    assert before + 3600 <= deadline <= time.time() + 3600


# -- explain --------------------------------------------------------------------------------
def test_explain_unplaced_counts_devices_per_reason(fog: LiveFog) -> None:
    task_id = run_json(fog, "submit", "--gpu")["task_id"]

    def decided() -> Any:
        found = run_json(fog, "explain", task_id)
        return found if found["decision"] else None

    found = poll(decided, 15, "a scheduling decision")
    assert found["decision"]["kind"] == "unplaced"
    counts = found["decision"]["counts"]
    assert sum(c["count"] for c in counts) == len(DEVICES)
    assert any(c["code"] == "requires_gpu" for c in counts)

    table = run(fog, "explain", task_id)
    assert table.exit_code == 0
    assert "not placed" in table.stdout and "requires_gpu" in table.stdout


def test_explain_placed_shows_the_score_breakdown(fog: LiveFog) -> None:
    done = run_json(fog, "submit", "--function", "m:f", "--wait", "--timeout", "20")
    found = run_json(fog, "explain", done["id"])
    decision = found["decision"]
    assert decision["kind"] == "placed" and decision["device_id"] == "desktop"
    assert decision["breakdown"] and 0 <= decision["score"] <= 1
    table = run(fog, "explain", done["id"])
    assert table.exit_code == 0
    assert "placed on desktop" in table.stdout and "score breakdown" in table.stdout
    for part in decision["breakdown"]:
        assert part["name"] in table.stdout


# -- devices, clusters ----------------------------------------------------------------------
def test_devices_lists_the_registry(fog: LiveFog) -> None:
    found = run_json(fog, "devices")
    assert sorted(d["device_id"] for d in found) == sorted(DEVICES)
    assert all(d["connected"] is False for d in found)  # registered directly, no agent link
    table = run(fog, "devices")
    assert table.exit_code == 0
    assert "phone-critical-battery" in table.stdout and "smartphone" in table.stdout


def test_clusters_come_from_status(fog: LiveFog) -> None:
    found = poll(lambda: run_json(fog, "clusters"), 15, "a cluster of the registered devices")
    assert found == json.loads(json.dumps(fog.service.status()["clusters"]))
    members = [m for c in found for m in c["members"]]
    assert sorted(members) == sorted(DEVICES)  # every ready device is in exactly one cluster
    table = run(fog, "clusters")
    assert table.exit_code == 0
    for cluster in found:
        assert cluster["id"] in table.stdout and str(cluster["head"]) in table.stdout


# -- finding the coordinator and the ticket -------------------------------------------------
def test_url_and_ticket_from_options(fog: LiveFog) -> None:
    result = runner.invoke(
        app, ["devices", "--json", "--url", fog.url, "--ticket", ticket(fog, "read")]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(json.loads(result.stdout)) == len(DEVICES)


def test_url_and_ticket_from_the_environment(fog: LiveFog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_COORDINATOR", fog.url)
    monkeypatch.setenv("FOGMESH_TICKET", ticket(fog, "read"))
    result = runner.invoke(app, ["devices", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(json.loads(result.stdout)) == len(DEVICES)


def test_home_with_a_running_coordinator_is_enough(
    fog: LiveFog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(fog.data_dir))
    assert find_coordinator() == fog.url
    result = runner.invoke(app, ["clusters", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)


def test_no_coordinator_record_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tasks", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, TransportError)
    assert "fogmesh coordinator" in result.exception.reason
    assert str(tmp_path / "coordinator.json") in result.exception.reason


def test_no_ticket_is_a_ticket_error(fog: LiveFog, tmp_path: Path) -> None:
    result = runner.invoke(app, ["tasks", "--url", fog.url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, TicketError)
    assert "--ticket" in result.exception.reason


# -- errors ---------------------------------------------------------------------------------
def test_unknown_task_is_task_not_found(fog: LiveFog) -> None:
    for command in ("task", "explain"):
        result = run(fog, command, "01NOSUCHTASK")
        assert result.exit_code == 1
        assert isinstance(result.exception, TaskNotFound), result.exception
        assert "01NOSUCHTASK" in result.exception.reason


def test_a_read_ticket_cannot_submit(fog: LiveFog) -> None:
    read_only = ticket(fog, "read")
    result = runner.invoke(app, ["submit", "--url", fog.url, "--ticket", read_only])
    assert result.exit_code == 1
    assert isinstance(result.exception, TicketScopeError), result.exception


def test_a_forged_ticket_is_a_ticket_error(fog: LiveFog) -> None:
    forged = ticket(fog, "read")[:-6] + "AAAAAA"
    result = runner.invoke(app, ["tasks", "--url", fog.url, "--ticket", forged])
    assert result.exit_code == 1
    assert isinstance(result.exception, TicketError), result.exception
    assert not isinstance(result.exception, TicketScopeError)


def test_out_of_range_values_come_back_as_invalid_request(fog: LiveFog) -> None:
    result = run(fog, "submit", "--cpu", "5000")
    assert result.exit_code == 1
    assert isinstance(result.exception, InvalidRequest), result.exception
    assert "cpu_cores" in result.exception.reason


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--function", "m:f", "--args", "{not json"], "--args"),
        (["--function", "m:f", "--args", "[1, 2]"], "--args"),
        (["--args", "{}"], "--args"),
        (["--function", "m:f", "--model", "x"], "--model"),
        (["--model", "x", "--input", "/nonexistent/x.json"], "--input"),
        (["--deadline", "0"], "--deadline"),
        (["--wait", "--timeout", "-1"], "--timeout"),
    ],
)
def test_bad_options_fail_before_any_request(args: list[str], field: str, tmp_path: Path) -> None:
    # Nothing listens on this data dir, so a request would fail differently.
    result = runner.invoke(app, ["submit", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError), result.exception
    assert result.exception.field == field


def test_nothing_listening_is_one_line_through_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(sys, "argv", ["fogmesh", "tasks", "--url", url, "--ticket", "t"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no coordinator at {url}; start one with `fogmesh coordinator`"]


def test_wait_gives_up_at_its_deadline(fog: LiveFog) -> None:
    started = time.monotonic()
    result = run(fog, "submit", "--gpu", "--wait", "--timeout", "0.5")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert isinstance(result.exception, WaitTimeout), result.exception
    assert "still pending after 0.5 s" in result.exception.reason
    assert elapsed < 5


# -- the client alone -----------------------------------------------------------------------
def _answering(status: int, body: Any) -> FogClient:
    def handler(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return FogClient("http://localhost", "t", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (409, "stale_attempt", StaleAttempt),
        (409, "illegal_transition", IllegalTransition),
        (404, "device_not_found", NotFound),
        (404, "not_found", TaskNotFound),  # a bare 404 on a task route is about the task
        (403, "something_new", TicketScopeError),
        (401, "ticket_expired", TicketError),
        (422, "invalid_request", InvalidRequest),
        (413, "too_large", InvalidRequest),
    ],
)
def test_error_bodies_become_the_matching_error(
    status: int, code: str, expected: type[FogmeshError]
) -> None:
    client = _answering(status, {"error": {"code": code, "reason": "why"}})
    with pytest.raises(expected) as caught:
        client.task("x")
    assert caught.value.reason.startswith("why")
    assert caught.value.details["status"] == status


def test_device_not_found_keeps_its_type() -> None:
    response = httpx.Response(404, json={"error": {"code": "device_not_found", "reason": "r"}})
    assert type(error_from_response(response)).__name__ == "DeviceNotFound"


def test_a_non_json_answer_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="other than JSON"):
        _answering(200, "<html>hello</html>").status()
    with pytest.raises(FogmeshError, match="HTTP 502"):
        _answering(502, "bad gateway").devices()


def test_client_cancel_and_a_second_cancel_is_illegal(fog: LiveFog) -> None:
    with FogClient(fog.url, fog.service.admin_ticket) as client:
        task_id = client.submit("inference", requires_gpu=True)["task_id"]
        assert client.cancel(task_id, "changed my mind")["state"] == "cancelled"
        assert client.wait(task_id, timeout=1)["state"] == "cancelled"
        with pytest.raises(IllegalTransition):
            client.cancel(task_id)


def test_client_submit_many_and_wait(fog: LiveFog) -> None:
    from fogmesh.client import FogClient

    with FogClient(fog.url, ticket(fog, "submit", "read")) as client:
        specs = [
            {
                "type": "validation",
                "cpu_cores": 0.1,
                "memory_mb": 16,
                "estimated_duration": 1,
                "payload": {
                    "type": "python",
                    "function": "fogmesh.agent.workloads.basic:echo",
                    "args": {"x": i},
                },
            }
            for i in range(3)
        ]
        ids = client.submit_many(specs)
        assert len(ids) == 3
        for i, task_id in enumerate(ids):
            done = client.wait(task_id, timeout=30)
            assert done["state"] == "completed" and done["result"] == {"echo": {"x": i}}
        with pytest.raises(FogmeshError, match="task 0"):
            client.submit_many([{**specs[0], "deadline": 1.0}])
