"""``fogmesh submit | tasks | task ID | explain ID``: thin clients of a running coordinator.

Each command finds the coordinator and a ticket (``fogmesh.client.connect``), makes one or a few
REST calls and renders the answer as a Rich table, or as JSON with ``--json`` for scripts.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fogmesh.cli.resolve import device_names, resolve_task
from fogmesh.devices.model import DeviceType
from fogmesh.errors import ConfigError
from fogmesh.fog.tasks import TaskState, TaskType

if TYPE_CHECKING:
    from fogmesh.client import FogClient

__all__ = [
    "DataDirOption",
    "FingerprintOption",
    "InsecureHttpOption",
    "JsonOption",
    "TicketOption",
    "UrlOption",
    "cell",
    "client_for",
    "explain",
    "submit",
    "task",
    "tasks",
]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="coordinator URL (else FOGMESH_COORDINATOR, else the data dir's record)"
    ),
]
TicketOption = Annotated[
    str | None,
    typer.Option(
        "--ticket", help="bearer ticket (else FOGMESH_TICKET, else admin.ticket in the data dir)"
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="the coordinator's data directory (else FOGMESH_HOME)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
FingerprintOption = Annotated[
    str | None,
    typer.Option(
        "--fingerprint",
        help="pin the coordinator's HTTPS certificate, sha256:… as `fogmesh coordinator` prints "
        "it (else FOGMESH_FINGERPRINT, else the data dir's record)",
    ),
]
InsecureHttpOption = Annotated[
    bool,
    typer.Option(
        "--insecure-http",
        help="allow sending the ticket over plain http:// to another machine (trusted network)",
    ),
]

_PRIORITY_NAMES = {1: "low", 3: "normal", 7: "high", 10: "critical"}
_STATE_STYLE = {
    "pending": "yellow",
    "scheduled": "cyan",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}
_RESULT_CHARS = 4000  # a terminal is no place for a megabyte of JSON; --json prints it all


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


@contextmanager
def client_for(
    url: str | None,
    ticket: str | None,
    data_dir: Path | None,
    fingerprint: str | None = None,
    insecure_http: bool = False,
) -> Iterator[FogClient]:
    """A connected client, closed afterwards. Imported lazily so ``--help`` and the other
    command groups do not pay for httpx."""
    try:
        from fogmesh.client import connect
    except ImportError as exc:
        raise ConfigError(
            f"the client commands need httpx ({exc}); install fogmesh[server]", field="install"
        ) from exc
    client = connect(url, ticket, data_dir, fingerprint=fingerprint, insecure_http=insecure_http)
    try:
        yield client
    finally:
        client.close()


def cell(value: Any) -> Text:
    """A table cell that never interprets Rich markup in values that came over the wire."""
    if value is None or value == "":
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:g}")
    return Text(str(value))


def _state(value: Any) -> Text:
    return Text(str(value), style=_STATE_STYLE.get(str(value), ""))


def _priority(value: Any) -> str:
    return _PRIORITY_NAMES.get(value, str(value)) if isinstance(value, int) else str(value)


def _when(ts: Any) -> str | None:
    if not isinstance(ts, int | float) or ts <= 0:
        return None
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value))


def _payload(
    function: str | None,
    args: str | None,
    model: str | None,
    input_file: Path | None,
    command: str | None,
) -> dict[str, Any] | None:
    choices = (("--function", function), ("--model", model), ("--command", command))
    given = [flag for flag, value in choices if value]
    if len(given) > 1:
        raise ConfigError(f"give one payload, not {' and '.join(given)}", field=given[1])
    if args is not None and not function:
        raise ConfigError("goes with --function module:function", field="--args")
    if input_file is not None and not model:
        raise ConfigError("goes with --model ID", field="--input")
    if function:
        try:
            parsed = json.loads(args) if args is not None else {}
        except ValueError as exc:
            raise ConfigError(f"not JSON: {exc}", field="--args") from exc
        if not isinstance(parsed, dict):
            raise ConfigError('must be a JSON object, e.g. {"n": 64}', field="--args")
        return {"type": "python", "function": function, "args": parsed}
    if model:
        value: Any = None
        if input_file is not None:
            try:
                value = json.loads(input_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot read JSON from {input_file}: {exc}", field="--input"
                ) from exc
        return {"type": "model", "model_id": model, "input": value}
    if command:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"cannot split {command!r}: {exc}", field="--command") from exc
        if not argv:
            raise ConfigError("is empty", field="--command")
        return {"type": "command", "argv": argv}
    return None


def submit(
    task_type: Annotated[
        TaskType, typer.Option("--type", help="kind of work")
    ] = TaskType.INFERENCE,
    priority: Annotated[Priority, typer.Option("--priority", help="queue priority")] = (
        Priority.NORMAL
    ),
    cpu: Annotated[float, typer.Option("--cpu", help="CPU cores it needs")] = 1.0,
    memory: Annotated[int, typer.Option("--memory", help="memory it needs, MB")] = 256,
    duration: Annotated[float, typer.Option("--duration", help="estimated run time, s")] = 60.0,
    gpu: Annotated[bool, typer.Option("--gpu", help="needs a GPU")] = False,
    function: Annotated[
        str | None, typer.Option("--function", help="python payload: module:function")
    ] = None,
    args: Annotated[
        str | None, typer.Option("--args", help="keyword arguments for --function, a JSON object")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="model payload: model id")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="JSON file with the model's input")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option("--command", help="command payload, one shell-quoted string (agents opt in)"),
    ] = None,
    deadline: Annotated[
        float | None, typer.Option("--deadline", help="fail it if not placed within SECONDS")
    ] = None,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", help="tries before it fails for good")
    ] = 3,
    site: Annotated[
        str | None, typer.Option("--site", help="only on devices with this site label")
    ] = None,
    device_type: Annotated[
        list[DeviceType] | None,
        typer.Option("--device-type", help="only on devices of this type (repeat for several)"),
    ] = None,
    min_battery: Annotated[
        float | None,
        typer.Option("--min-battery", min=0, max=100, help="battery devices need at least this %"),
    ] = None,
    charging_only: Annotated[
        bool, typer.Option("--charging-only", help="battery devices must be charging")
    ] = False,
    unmetered_only: Annotated[
        bool, typer.Option("--unmetered-only", help="only devices on an unmetered network")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result, showing progress")] = (
        False
    ),
    timeout: Annotated[
        float, typer.Option("--timeout", help="with --wait: give up after SECONDS")
    ] = 300.0,
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a task to the coordinator; with --wait, follow it to its result.

    With --wait the exit code is 0 only if the task completed.

    Placement constraints (--site, --device-type, --min-battery, --charging-only,
    --unmetered-only) limit which devices may take it; `fogmesh explain ID` says why none did.

    Example: fogmesh submit --type inference --priority high --model tutor_v1 --input x.json --wait

    Example: fogmesh submit --function fogmesh.agent.workloads:matmul --args '{"n": 256}'
    --device-type laptop --device-type desktop --site home
    """
    payload = _payload(function, args, model, input_file, command)
    constraints: dict[str, Any] = {}
    if site is not None:
        constraints["site"] = site
    if device_type:
        constraints["device_types"] = sorted({t.value for t in device_type})
    if min_battery is not None:
        constraints["min_battery_percent"] = min_battery
    if charging_only:
        constraints["requires_charging"] = True
    if unmetered_only:
        constraints["requires_unmetered"] = True
    if deadline is not None and deadline <= 0:
        raise ConfigError("must be more than 0 seconds", field="--deadline")
    if timeout <= 0:
        raise ConfigError("must be more than 0 seconds", field="--timeout")
    if payload is None:
        # Accepted and placed, but an agent has nothing to run and refuses it until it fails.
        err_console.print(
            "note: no payload (--function, --model or --command); agents refuse such tasks",
            style="yellow",
            highlight=False,
        )
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        submitted = client.submit(
            task_type.value,
            priority=priority.value,
            cpu_cores=cpu,
            memory_mb=memory,
            estimated_duration=duration,
            requires_gpu=gpu,
            payload=payload,
            deadline=None if deadline is None else time.time() + deadline,
            max_attempts=max_attempts,
            constraints=constraints or None,
        )
        task_id = str(submitted["task_id"])
        if not wait:
            if as_json:
                _emit_json(submitted)
            else:
                console.print(f"submitted {task_id} ({submitted.get('state')})", highlight=False)
            return
        final = _follow(client, task_id, timeout)
    if as_json:
        _emit_json(final)
    else:
        print_task(final)
    if final.get("state") != "completed":
        raise typer.Exit(1)


def _follow(client: FogClient, task_id: str, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    with err_console.status(f"{task_id}: submitted", spinner="dots") as status:

        def show(current: dict[str, Any]) -> None:
            where = current.get("assigned_device")
            status.update(
                f"{task_id}: {current.get('state')}"
                + (f" on {where}" if where else "")
                + f" (attempt {current.get('attempt')}, {time.monotonic() - started:.0f} s)"
            )

        return client.wait(task_id, timeout, on_poll=show)


def tasks(
    state: Annotated[TaskState | None, typer.Option("--state", help="only tasks in this state")] = (
        None
    ),
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="at most this many tasks")
    ] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="tasks created after this task id (paging)")
    ] = None,
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """List tasks in creation order.

    Example: fogmesh tasks --state running --limit 20
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        if after is not None:
            after = resolve_task(client, after)
        found = client.tasks(None if state is None else state.value, limit=limit, after=after)
        names = device_names(client.devices()) if not as_json and found else {}
    if as_json:
        _emit_json(found)
        return
    table = Table()
    # Ids are never shortened: they are what the other commands take (a prefix will do too).
    table.add_column("task", no_wrap=True, min_width=26)
    for name in ("type", "priority", "state", "attempt", "device", "created"):
        table.add_column(name, overflow="fold")  # wrapped, never cut short
    for t in found:
        table.add_row(
            cell(t.get("id")),
            cell(t.get("type")),
            cell(_priority(t.get("priority"))),
            _state(t.get("state")),
            cell(t.get("attempt")),
            cell(_device(t.get("assigned_device"), names)),
            cell(_when(t.get("created_at"))),
        )
    console.print(table)
    if not found:
        console.print("no tasks" + (f" in state {state.value}" if state else ""), style="dim")


def _device(device_id: Any, names: dict[str, str]) -> str | None:
    if not device_id:
        return None
    name = names.get(str(device_id))
    return f"{name} ({device_id})" if name else str(device_id)


def task(
    task_id: Annotated[str, typer.Argument(help="task id or a unique prefix", show_default=False)],
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show one task: its state, attempts history, and result or error (with the traceback,
    and a command's output tail).

    Example: fogmesh task 01JD5V7Q3M --json
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.task(resolve_task(client, task_id))
    if as_json:
        _emit_json(found)
    else:
        print_task(found)


def print_task(t: dict[str, Any]) -> None:
    head = Text.assemble(
        (f"task {t.get('id')}", "bold"),
        f"  {t.get('type')} · {_priority(t.get('priority'))} · ",
        _state(t.get("state")),
    )
    console.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    device = t.get("assigned_device") or "—"
    attempts = f"attempt {t.get('attempt')} of {t.get('max_attempts')}"
    grid.add_row("device", cell(f"{device} ({attempts})"))
    times = [
        f"{name} {_when(t.get(key))}"
        for name, key in (
            ("created", "created_at"),
            ("scheduled", "scheduled_at"),
            ("started", "started_at"),
            ("finished", "finished_at"),
        )
        if _when(t.get(key))
    ]
    grid.add_row("times", cell("  ".join(times)))
    res = t.get("resources") or {}
    grid.add_row(
        "needs",
        cell(
            f"{res.get('cpu_cores')} CPU, {res.get('memory_mb')} MB, "
            f"~{res.get('estimated_duration')} s" + (", GPU" if res.get("requires_gpu") else "")
        ),
    )
    payload = t.get("payload")
    if isinstance(payload, dict):
        what = payload.get("function") or payload.get("model_id") or payload.get("argv")
        grid.add_row("payload", cell(f"{payload.get('type')} {what}"))
    console.print(grid)
    _print_history(t.get("history") or [])
    error = t.get("error")
    if isinstance(error, dict):
        console.print(
            Text.assemble(("error ", "bold red"), f"{error.get('code')}: {error.get('reason')}")
        )
        for key, title in (("traceback", "traceback"), ("stdout", "output (last lines)")):
            _print_tail(title, error.get(key))
    result = t.get("result")
    if t.get("state") == "completed" and isinstance(result, dict) and _is_command_output(result):
        # A command's output: its last lines read better than a JSON string with \n in it.
        console.print(Text(f"exit status {result['returncode']}", style="bold green"))
        _print_tail("output (last lines)", result.get("stdout"))
        _print_tail("stderr (last lines)", result.get("stderr"))
    elif t.get("state") == "completed":
        text = json.dumps(t.get("result"), indent=2)
        if len(text) > _RESULT_CHARS:
            text = text[:_RESULT_CHARS] + f"\n… ({len(text)} characters; --json prints all)"
        console.print(Text("result", style="bold green"))
        console.print(Text(text))


_TAIL_LINES = 20


def _is_command_output(result: Any) -> bool:
    return isinstance(result, dict) and {"returncode", "stdout", "stderr"} <= result.keys()


def _print_tail(title: str, text: Any) -> None:
    """The last lines of ``text`` under ``title`` (nothing for an empty or absent text)."""
    if not isinstance(text, str) or not text.strip():
        return
    lines = text.rstrip().splitlines()
    console.print(Text(title, style="bold"))
    if len(lines) > _TAIL_LINES:
        console.print(Text(f"… {len(lines) - _TAIL_LINES} lines before (--json has all)", "dim"))
    console.print(Text("\n".join(lines[-_TAIL_LINES:])))


def _print_history(history: list[Any]) -> None:
    if not history:
        return
    table = Table("attempt", "device", "placed", "ended", "outcome", "reason", title="attempts")
    for h in history:
        if not isinstance(h, dict):
            continue
        table.add_row(
            cell(h.get("attempt")),
            cell(h.get("device_id")),
            cell(_when(h.get("placed_at"))),
            cell(_when(h.get("ended_at"))),
            cell(h.get("outcome")),
            cell(h.get("reason")),
        )
    console.print(table)


def explain(
    task_id: Annotated[str, typer.Argument(help="task id or a unique prefix", show_default=False)],
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Why a task is where it is: the chosen device's score breakdown, or, when it is not
    placed, how many devices were turned down for each reason.

    Example: fogmesh explain 01JD5V7Q3M
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.explain(resolve_task(client, task_id))
    if as_json:
        _emit_json(found)
        return
    console.print(
        Text.assemble(
            (f"task {found.get('task_id')}", "bold"),
            f"  {found.get('type')} · {found.get('priority')} · ",
            _state(found.get("state")),
            f" · device {found.get('device') or '—'} · attempt {found.get('attempt')}",
        )
    )
    decision = found.get("decision")
    if not isinstance(decision, dict):
        console.print(Text(str(found.get("text") or "no scheduling decision yet")))
    elif decision.get("kind") == "placed":
        _print_placement(decision)
    elif decision.get("kind") == "unplaced":
        _print_unplaced(decision)
    else:
        console.print(Text(f"failed by the scheduler: {decision.get('text')}", style="red"))
    _print_history(found.get("history") or [])
    error = found.get("error")
    if isinstance(error, dict):
        console.print(
            Text.assemble(("error ", "bold red"), f"{error.get('code')}: {error.get('reason')}")
        )


def _print_placement(d: dict[str, Any]) -> None:
    console.print(
        Text.assemble(
            "placed on ",
            (str(d.get("device_id")), "bold"),
            f" with score {float(d.get('score') or 0):.3f}"
            f" ({d.get('evaluated')} devices evaluated)",
        )
    )
    parts = Table("scorer", "value", "weight", "reason", title="score breakdown")
    for p in d.get("breakdown") or []:
        parts.add_row(
            cell(p.get("name")),
            Text(f"{float(p.get('value') or 0):.3f}"),
            cell(p.get("weight")),
            cell(p.get("reason")),
        )
    console.print(parts)
    for c in d.get("runners_up") or []:
        console.print(Text(f"runner-up {c.get('device_id')} score {float(c.get('score')):.3f}"))
    if d.get("preempts"):
        console.print(Text(f"preempts {', '.join(map(str, d['preempts']))}"))
    _print_rejected(d.get("rejected") or [])


def _print_unplaced(d: dict[str, Any]) -> None:
    console.print(Text(f"not placed: {d.get('summary')}", style="yellow"))
    counts = Table("devices", "kind", "reason", "example", title="turned down")
    for c in d.get("counts") or []:
        counts.add_row(
            cell(c.get("count")), cell(c.get("kind")), cell(c.get("code")), cell(c.get("example"))
        )
    if d.get("counts"):
        console.print(counts)


def _print_rejected(rejected: list[Any]) -> None:
    if not rejected:
        return
    table = Table("device", "kind", "reason", "detail", title="not there")
    for r in rejected:
        table.add_row(
            cell(r.get("device_id")), cell(r.get("kind")), cell(r.get("code")), cell(r.get("text"))
        )
    console.print(table)
