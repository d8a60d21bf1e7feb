"""``fogmesh cancel | drain | device rm | token list/revoke | --version``, id prefixes, names,
submit's placement flags and what ``fogmesh task`` shows of a failure — against a real
coordinator served over HTTP (``LiveFog`` from test_client_commands)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_client_commands import LiveFog, ticket
from typer.testing import CliRunner, Result

from fogmesh._version import __version__
from fogmesh.cli import app
from fogmesh.client import FogClient
from fogmesh.devices.emulated import preset
from fogmesh.errors import (
    DeviceNotFound,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    ReplayError,
    TaskNotFound,
    TicketScopeError,
)
from fogmesh.server import CoordinatorService, ServerConfig
from fogmesh.store import DeviceStatus

runner = CliRunner()


@pytest.fixture(scope="module")
def fog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFog]:
    live = LiveFog(tmp_path_factory.mktemp("ops") / "coord")
    try:
        live.start()
        coordinator = live.service.coordinator
        live.call(coordinator.register_node(preset("desktop"), labels={"name": "big-box"}))
        live.call(coordinator.register_node(preset("phone-critical-battery")))
        yield live
    finally:
        live.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("FOGMESH_COORDINATOR", "FOGMESH_TICKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("COLUMNS", "200")


def run(fog: LiveFog, *args: str) -> Result:
    return runner.invoke(app, [*args, "--data-dir", str(fog.data_dir)])


def run_json(fog: LiveFog, *args: str) -> Any:
    result = run(fog, *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def pending_task(fog: LiveFog) -> str:
    # No device has a GPU: the task stays pending.
    task_id: str = run_json(fog, "submit", "--type", "training", "--gpu")["task_id"]
    return task_id


# -- help and version -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [["cancel"], ["drain"], ["device", "rm"], ["token", "list"], ["token", "revoke"]],
)
def test_new_commands_have_help_with_an_example_and_json(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert f"Example: fogmesh {' '.join(command)}" in result.output
    assert "--json" in result.output


def test_version_option() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fogmesh {__version__}"


# -- cancel and id prefixes -----------------------------------------------------------------
def test_cancel_takes_a_unique_prefix(fog: LiveFog) -> None:
    task_id = pending_task(fog)
    done = run_json(fog, "cancel", task_id[:20].lower(), "--reason", "changed my mind")
    assert done["id"] == task_id and done["state"] == "cancelled"
    assert run_json(fog, "task", task_id[:22])["state"] == "cancelled"
    again = run(fog, "cancel", task_id)
    assert isinstance(again.exception, IllegalTransition), again.exception


def test_an_ambiguous_prefix_lists_the_candidates(fog: LiveFog) -> None:
    first, second = pending_task(fog), pending_task(fog)
    common = next((first[:i] for i in range(len(first), 0, -1) if second.startswith(first[:i])), "")
    assert common  # ULIDs made a moment apart share their time digits
    for command in ("task", "explain", "cancel"):
        result = run(fog, command, common)
        assert result.exit_code == 1
        assert isinstance(result.exception, InvalidRequest), result.exception
        assert "more than one task" in result.exception.reason
        assert first in result.exception.reason or second in result.exception.reason
    missing = run(fog, "task", "0000000")
    assert isinstance(missing.exception, TaskNotFound), missing.exception


def test_task_tables_show_whole_ids_in_a_narrow_terminal(
    fog: LiveFog, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = pending_task(fog)
    monkeypatch.setenv("COLUMNS", "80")
    listed = run(fog, "tasks", "--state", "pending", "--limit", "1000")
    assert listed.exit_code == 0, listed.output
    assert task_id in listed.stdout
    devices = run(fog, "devices")
    assert "phone-critical-battery" in devices.stdout
    assert "…" not in listed.stdout + devices.stdout  # wrapped where need be, never cut short


# -- devices: names, drain, rm --------------------------------------------------------------
def test_devices_show_their_name_and_rounded_readings(fog: LiveFog) -> None:
    table = run(fog, "devices")
    assert table.exit_code == 0
    row = next(line for line in table.stdout.splitlines() if "desktop" in line)
    assert "big-box" in row
    assert not re.search(r"\d\.\d{2,}", table.stdout), table.stdout  # no 57.123 %


def test_drain_by_name_then_undo(fog: LiveFog) -> None:
    drained = run_json(fog, "drain", "big-box")
    assert drained["device_id"] == "desktop" and drained["status"] == DeviceStatus.DRAINING
    table = run(fog, "drain", "desk", "--undo")  # a unique id prefix
    assert table.exit_code == 0, table.output
    assert "takes new work again" in table.stdout and "big-box" in table.stdout
    assert run_json(fog, "devices")[0]["status"] == DeviceStatus.READY
    unknown = run(fog, "drain", "nothing-like-it")
    assert isinstance(unknown.exception, DeviceNotFound), unknown.exception


def test_drain_needs_an_admin_ticket(fog: LiveFog) -> None:
    result = runner.invoke(
        app, ["drain", "desktop", "--url", fog.url, "--ticket", ticket(fog, "read", "submit")]
    )
    assert isinstance(result.exception, TicketScopeError), result.exception


def test_device_rm_forgets_the_device(fog: LiveFog) -> None:
    spare = preset("laptop-on-battery").replace(device_id="spare-laptop")
    fog.call(fog.service.coordinator.register_node(spare, labels={"name": "old-laptop"}))
    assert "spare-laptop" in [d["device_id"] for d in run_json(fog, "devices")]
    removed = run_json(fog, "device", "rm", "old-laptop")
    assert removed == {"device_id": "spare-laptop", "removed": True}
    assert "spare-laptop" not in [d["device_id"] for d in run_json(fog, "devices")]
    again = run(fog, "device", "rm", "spare-laptop")
    assert isinstance(again.exception, DeviceNotFound), again.exception


# -- submit's placement constraints ---------------------------------------------------------
def test_submit_placement_flags_become_constraints(fog: LiveFog) -> None:
    submitted = run_json(
        fog,
        "submit",
        "--function",
        "m:f",
        "--site",
        "home",
        "--device-type",
        "laptop",
        "--device-type",
        "desktop",
        "--min-battery",
        "30",
        "--charging-only",
        "--unmetered-only",
    )
    task = run_json(fog, "task", submitted["task_id"])
    task["constraints"]["device_types"].sort()  # a set on the server
    assert task["constraints"] == {
        "device_types": ["desktop", "laptop"],
        "min_battery_percent": 30.0,
        "requires_charging": True,
        "requires_unmetered": True,
        "site": "home",
    }
    bad = run(fog, "submit", "--min-battery", "120")
    assert bad.exit_code == 2  # refused by the option itself, before any request


# -- what task ID shows of a failure ----------------------------------------------------------
def test_print_task_renders_traceback_and_output_tail(capsys: pytest.CaptureFixture[str]) -> None:
    from fogmesh.cli.tasks import print_task

    lines = "".join(f"line {i}\n" for i in range(1, 31))
    print_task(
        {
            "id": "T1",
            "type": "preprocessing",
            "priority": 3,
            "state": "failed",
            "attempt": 1,
            "max_attempts": 1,
            "error": {
                "code": "task_error",
                "reason": "ZeroDivisionError: division by zero",
                "traceback": 'Traceback (most recent call last):\n  File "job.py", line 3\n'
                "ZeroDivisionError: division by zero\n",
            },
        }
    )
    failed = capsys.readouterr().out
    assert "traceback" in failed and 'File "job.py", line 3' in failed
    print_task(
        {
            "id": "T2",
            "type": "preprocessing",
            "priority": 3,
            "state": "completed",
            "result": {"returncode": 0, "stdout": lines, "stderr": ""},
        }
    )
    done = capsys.readouterr().out
    assert "exit status 0" in done and "line 30" in done and "line 11" in done
    assert "line 10\n" not in done and "10 lines before" in done


# -- join tokens ----------------------------------------------------------------------------
def test_token_list_and_revoke(fog: LiveFog) -> None:
    # One token from the REST API, one from the offline command on the coordinator's machine.
    with FogClient(fog.url, fog.service.admin_ticket) as client:
        created = client.create_token(ttl=600)
    offline = runner.invoke(
        app, ["token", "create", "--ttl", "10m", "--data-dir", str(fog.data_dir), "--json"]
    )
    assert offline.exit_code == 0, offline.output
    offline_id = json.loads(offline.stdout)["ticket_id"]
    listed = {t["id"]: t for t in run_json(fog, "token", "list")}
    assert listed[created["id"]]["state"] == "unused"
    assert listed[offline_id]["state"] == "unused" and "enrol" in listed[offline_id]["scopes"]
    assert "token" not in json.dumps(listed).replace('"token_', "")  # ids only, never tokens

    revoked = run_json(fog, "token", "revoke", created["id"][:10])
    assert revoked["id"] == created["id"] and revoked["state"] == "revoked"
    assert {t["id"]: t for t in run_json(fog, "token", "list")}[created["id"]]["state"] == (
        "revoked"
    )
    # A revoked token no longer enrols a device.
    from fogmesh.security.tokens import JoinToken

    service = fog.service
    with pytest.raises(ReplayError):
        service.verifier.verify(
            JoinToken.parse(created["token"]).ticket, audience=service.keys.audience, scope="enrol"
        )
    assert run_json(fog, "token", "revoke", created["id"])["state"] == "revoked"  # idempotent

    # A used token cannot be revoked.
    used = JoinToken.parse(json.loads(offline.stdout)["token"]).ticket
    service.verifier.verify(used, audience=service.keys.audience, scope="enrol")
    assert {t["id"]: t for t in run_json(fog, "token", "list")}[offline_id]["state"] == "used"
    refused = run(fog, "token", "revoke", offline_id)
    assert isinstance(refused.exception, IllegalTransition), refused.exception
    unknown = run(fog, "token", "revoke", "no-such-token")
    assert isinstance(unknown.exception, NotFound), unknown.exception
    table = run(fog, "token", "list")
    assert table.exit_code == 0 and "revoked" in table.stdout and "used" in table.stdout


def test_tokens_need_an_admin_ticket(fog: LiveFog) -> None:
    reader = ticket(fog, "read", "submit")
    for command in (["token", "list"], ["token", "revoke", "x"]):
        result = runner.invoke(app, [*command, "--url", fog.url, "--ticket", reader])
        assert isinstance(result.exception, TicketScopeError), (command, result.exception)


def test_openapi_declares_the_token_routes_answers(fog: LiveFog) -> None:
    import httpx

    spec = httpx.get(f"{fog.url}/openapi.json", timeout=5).json()
    revoke = spec["paths"]["/v1/tokens/{token_id}"]["delete"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= revoke.keys()
    listing = spec["paths"]["/v1/tokens"]["get"]["responses"]
    assert {"200", "401", "403", "422"} <= listing.keys()


async def test_a_revoked_token_stays_revoked_after_a_restart(tmp_path: Path) -> None:
    from fogmesh.security.tokens import JoinToken, create_join_token

    config = ServerConfig(data_dir=tmp_path, port=0)  # SQLite in the data dir
    first = CoordinatorService(config)
    await first.start()
    try:
        join, claims = create_join_token(
            first.keys, url="http://127.0.0.1:1", ttl=600, clock=first.clock
        )
        first.record_token(claims, "http://127.0.0.1:1")
        assert (await first.revoke_token(claims.ticket_id))["state"] == "revoked"
    finally:
        await first.stop()
    second = CoordinatorService(config)
    await second.start()
    try:
        with pytest.raises(ReplayError):
            second.verifier.verify(
                JoinToken.parse(join.encode()).ticket,
                audience=second.keys.audience,
                scope="enrol",
            )
        listed = await second.list_tokens()
        assert [(t["id"], t["state"]) for t in listed] == [(claims.ticket_id, "revoked")]
    finally:
        await second.stop()


def test_clusters_show_devices_by_name(fog: LiveFog) -> None:
    from test_client_commands import poll

    poll(lambda: "big-box" in run(fog, "clusters").stdout, 15, "a cluster naming big-box")
    assert "desktop" in json.dumps(run_json(fog, "clusters"))  # JSON keeps the ids
