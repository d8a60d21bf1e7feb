"""The fog demo: a real coordinator, this machine's agent and emulated devices running real work.

Everything runs as separate processes on 127.0.0.1 in a temporary data directory: the
coordinator, this machine's agent and a set of emulated phones, tablets, laptops, a desktop and a
Raspberry Pi whose battery and temperature follow the work they really do. A mixed workload of
built-in python payloads (matrix products, training steps, embeddings, preprocessing) is
submitted, its progress shown live, and every result recomputed locally. The summary shows where
the work went, the energy drawn from batteries versus the wall, and the work devices refused.
Every process the demo started is stopped (SIGTERM, then SIGKILL after a grace) in a ``finally``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fogmesh.client import TERMINAL_STATES, FogClient

__all__ = [
    "FLEET",
    "DemoAgent",
    "DemoError",
    "LocalFog",
    "build_workload",
    "free_port",
    "poll_until",
    "run_fog_demo",
]

T = TypeVar("T")
_CLI_DIR = Path(__file__).resolve().parent
# Each command module is loaded by file path and run with typer, so an agent process does not
# import every other command group (the fogmesh.cli package would), which matters on 2 cores.
_LAUNCH = (
    "import importlib.util as u, sys, typer; "
    "s = u.spec_from_file_location('_fogmesh_demo_cmd', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); f = getattr(m, sys.argv[2]); "
    "sys.argv[1:3] = []; typer.run(f)"
)
_WORKLOADS = "fogmesh.agent.workloads"


class DemoError(RuntimeError):
    """The demo could not bring its fog up or finish its workload in time."""


@dataclass(frozen=True, slots=True)
class DemoAgent:
    """One device of the demo fog: ``kind`` None is this machine's real agent."""

    name: str
    kind: str | None
    battery: float | None = None
    charging: bool = False
    ambient: float | None = None
    profile: str | None = None  # a preset to start from (e.g. phone-hot: a phone at 58.5 °C)

    @property
    def device_class(self) -> str:
        return "this machine" if self.kind is None else self.kind

    def describe(self) -> str:
        if self.kind is None:
            return "real sensors"
        parts = [self.profile] if self.profile else []
        if self.battery is not None:
            parts.append(f"{self.battery:g}%")
        if self.charging:
            parts.append("charging")
        if self.ambient is not None:
            parts.append(f"room {self.ambient:g}°C")
        return ", ".join(parts) or "mains"

    def args(self) -> list[str]:
        if self.kind is None:
            return []
        out = ["--emulate", self.kind]
        if self.profile:
            out += ["--profile", self.profile]
        if self.battery is not None:
            out += ["--battery", f"{self.battery:g}"]
        if self.charging:
            out.append("--charging")
        if self.ambient is not None:
            out += ["--ambient", f"{self.ambient:g}"]
        return out


# The order matters for smaller demos (--agents N takes the first N): this machine, the phone at
# 8 % that must get no ordinary work, then a device that can take work on mains.
FLEET: tuple[DemoAgent, ...] = (
    DemoAgent("this-machine", None),
    DemoAgent("phone-8pct", "phone", battery=8),
    DemoAgent("desktop", "desktop"),
    DemoAgent("laptop-on-battery", "laptop", battery=75),
    DemoAgent("phone-hot", "phone", battery=70, ambient=40, profile="phone-hot"),
    DemoAgent("phone-charging", "phone", battery=35, charging=True),
    DemoAgent("tablet-charging", "tablet", battery=50, charging=True),
    DemoAgent("phone-full", "phone", battery=95),
    DemoAgent("laptop-charging", "laptop", battery=40, charging=True),
    DemoAgent("tablet", "tablet", battery=60),
    DemoAgent("raspberry-pi", "raspberry_pi"),
)

_TEXTS = (
    "fog computing keeps work near the data",
    "phones on a charger can take a training step",
    "a hot phone should rest",
    "batteries are for people, not for batch jobs",
    "the raspberry pi in the hallway is always on",
)
_PRIORITIES = ("normal", "high", "low", "normal")
DEMO_MODEL = "tutor_agent_v1"


def build_workload(n: int, model_path: str | None = None) -> list[dict[str, Any]]:
    """``n`` tasks cycling matrix products, training steps, embeddings and preprocessing; with
    ``model_path``, every sixth task is a ``model`` task for the registered ``tutor_agent_v1``
    (its file, the same model, is what the result is recomputed with)."""
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 4
        args: dict[str, Any]
        if model_path is not None and i % 6 == 5:
            values = [[((i + r * 16 + c) % 11) / 10.0 for c in range(16)] for r in range(4)]
            # The agents run it from their model cache; ``function``/``args`` are only how the
            # result is recomputed here, from the demo's own copy of the file.
            args = {"path": model_path, "input": values}
            tasks.append(
                {
                    "type": "inference",
                    "priority": _PRIORITIES[i % len(_PRIORITIES)],
                    "function": "fogmesh.agent._inference:run_cached_model",
                    "args": args,
                    "cpu_cores": 1.0,
                    "model_id": DEMO_MODEL,
                }
            )
            continue
        elif kind == 0:
            task_type, function = "optimization", "linalg:matmul"
            args = {"n": 1024 + 128 * (i % 4), "seed": i}
        elif kind == 1:
            task_type, function = "training", "train:train_logreg"
            args = {"samples": 16384, "features": 64, "steps": 300, "seed": i}
        elif kind == 2:
            task_type, function = "embedding", "text:embed"
            args = {"texts": [_TEXTS[(i + j) % len(_TEXTS)] for j in range(3)], "dim": 64}
        else:
            task_type, function = "preprocessing", "text:preprocess"
            args = {
                "values": [float((i * 7 + j * 3) % 23) for j in range(40)],
                "texts": [_TEXTS[i % 5]],
            }
        tasks.append(
            {
                "type": task_type,
                "priority": _PRIORITIES[i % len(_PRIORITIES)],
                "function": f"{_WORKLOADS}.{function}",
                "args": args,
                "cpu_cores": 2.0 if kind < 2 else 1.0,
            }
        )
    return tasks


def _recompute(function: str, args: dict[str, Any]) -> Any:
    module, _, name = function.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return json.loads(json.dumps(fn(**args)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def poll_until(check: Callable[[], T | None], within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {within:g} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class LocalFog:
    """A coordinator and agents as local subprocesses on 127.0.0.1, all stopped by
    ``stop_all`` (the demo and ``benchmarks/bench_e2e.py`` share it)."""

    root: Path
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)
    children: list[Any] = field(default_factory=list)  # psutil.Process of the agents' workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, name: str, command: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("FOGMESH_PROFILE", None)
        argv = [sys.executable, "-c", _LAUNCH, str(_CLI_DIR / f"{command}.py"), command, *args]
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        self.procs[name] = proc
        self.pids.add(proc.pid)

    def log_tail(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-1500:]

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise DemoError(f"{name} exited ({proc.returncode}):\n{self.log_tail(name)}")

    def wait_for_coordinator(self, data_dir: Path, within: float = 40) -> str:
        """Wait until the coordinator started with ``data_dir`` answers ``/healthz``; returns
        the admin ticket it wrote there."""
        ticket_file = data_dir / "admin.ticket"

        def up() -> bool:
            self.check_alive()
            if not ticket_file.exists():
                return False
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        poll_until(up, within, "the coordinator to answer /healthz")
        return ticket_file.read_text().strip()

    def note_children(self) -> None:
        """Remember worker processes too, so the caller can check they are all gone."""
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil is a dependency
            return
        for proc in self.procs.values():
            try:
                found = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                continue
            self.children += [c for c in found if c.pid not in self.pids]
            self.pids.update(c.pid for c in found)

    def stop_all(self, grace: float = 10.0) -> None:
        agents = [p for n, p in self.procs.items() if n != "coordinator"]
        coordinator = self.procs.get("coordinator")
        # Agents first (they say goodbye to the coordinator), then the coordinator.
        for group in (agents, [coordinator] if coordinator else []):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()
        # A worker whose agent had to be killed may outlive it; psutil checks it is the same
        # process (pid and start time) before signalling it.
        for child in self.children:
            try:
                if child.is_running():
                    child.kill()
            except Exception:
                continue


def _device_names(
    fog: LocalFog, agents: list[DemoAgent], devices: list[dict[str, Any]]
) -> dict[str, DemoAgent]:
    by_id: dict[str, DemoAgent] = {}
    for agent in agents:
        state = fog.root / agent.name / "agent" / "agent.json"
        try:
            text = state.read_text()
        except OSError:
            continue
        for d in devices:
            if d["device_id"] in text:
                by_id[d["device_id"]] = agent
    return by_id


def _state_line(counts: dict[str, int]) -> str:
    order = ("pending", "scheduled", "running", "completed", "failed", "cancelled")
    return "  ".join(
        f"{s} {counts.get(s, 0)}" for s in order if counts.get(s, 0) or s == "completed"
    )


def run_fog_demo(
    *,
    agents: int = len(FLEET),
    tasks: int = 48,
    keep: bool = False,
    console: Console | None = None,
    timeout: float = 100.0,
) -> dict[str, Any]:
    """Run the whole demo and return its summary; raises ``DemoError`` if the fog fails."""
    out = console or Console(stderr=True)
    started = time.monotonic()
    fleet = list(FLEET[: max(1, min(agents, len(FLEET)))])
    root = Path(tempfile.mkdtemp(prefix="fogmesh-demo-"))
    fog = LocalFog(root)
    summary: dict[str, Any] = {"data_dir": str(root), "kept": keep}
    try:
        out.print(f"[bold]fogmesh demo[/]: coordinator on {fog.url}, data in {root}")
        fog.spawn(
            "coordinator",
            "coordinator",
            [
                "--data-dir", str(root / "coordinator"),
                "--port", str(fog.port),
                "--heartbeat-interval", "1",
                "--scheduling-interval", "0.2",
                "--dispatch-timeout", "10",
                "--log-level", "warning",
            ],
        )  # fmt: skip
        ticket = fog.wait_for_coordinator(root / "coordinator")
        client = FogClient(fog.url, ticket, timeout=10)
        try:
            for agent in fleet:
                response = httpx.post(
                    f"{fog.url}/v1/tokens",
                    json={"ttl": 600},
                    headers={"Authorization": f"Bearer {ticket}"},
                    timeout=10,
                )
                if response.status_code != 201:
                    raise DemoError(f"cannot create a join token: {response.text}")
                fog.spawn(
                    agent.name,
                    "agent",
                    [
                        "--join", response.json()["token"],
                        "--data-dir", str(root / agent.name),
                        "--name", agent.name,  # all on one host: the hostname would not tell
                        "--heartbeat", "1",
                        "--workers", "1",
                        "--backoff-max", "1",
                        "--stop-grace", "3",
                        "--log-level", "warning",
                        *agent.args(),
                    ],
                )  # fmt: skip
            out.print(f"started {len(fleet)} agents: " + ", ".join(a.name for a in fleet))

            def all_ready() -> list[dict[str, Any]] | None:
                fog.check_alive()
                devices = [d for d in client.devices() if d.get("connected")]
                return devices if len(devices) >= len(fleet) else None

            devices = poll_until(all_ready, 60, f"{len(fleet)} agents to register")
            names = _device_names(fog, fleet, devices)
            fog.note_children()
            out.print(
                f"all {len(devices)} devices registered after {time.monotonic() - started:.1f} s"
            )

            policies = _policies(client, names)
            model = _write_model(root)
            summary["model"] = model
            workload = build_workload(tasks, model)
            submitted = _submit_all(client, workload)
            finished = _progress(client, fog, len(submitted), out, timeout)
            summary.update(_summarise(client, fog, fleet, names, submitted, finished))
            summary["policies"] = policies
        finally:
            client.close()
        fog.note_children()
    finally:
        fog.stop_all()
        summary["pids"] = sorted(fog.pids)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    return summary


# Reason codes that follow from the constraints rather than being one.
_DERIVED = ("mode_", "chunk_", "transport_")


def _policies(client: FogClient, names: dict[str, DemoAgent]) -> dict[str, dict[str, Any]]:
    """Each device's policy as the coordinator evaluates it from the profile it last reported."""
    from fogmesh.mobile import ResourcePolicy, evaluate
    from fogmesh.store.base import profile_from_dict

    policy = ResourcePolicy()
    out: dict[str, dict[str, Any]] = {}
    for record in client.devices():
        agent = names.get(record["device_id"])
        if agent is None:
            continue
        profile = profile_from_dict(record["profile"])
        decision = evaluate(profile, policy)
        out[agent.name] = {
            "power_mode": decision.power_mode.value,
            "max_concurrent_tasks": decision.max_concurrent_tasks,
            "cpu_limit_percent": decision.cpu_limit_percent,
            "battery_percent": profile.battery_percent,
            "cpu_temp_c": profile.cpu_temp_c,
            "reasons": [r.text for r in decision.reasons if not r.code.startswith(_DERIVED)],
        }
    return out


def _write_model(root: Path) -> str | None:
    """Generate the small built-in ONNX classifier and register it with the coordinator (None
    without onnx). Agents fetch it over their link when given a task for it; the file stays in
    the demo dir so results can be recomputed here."""
    try:
        from fogmesh.edge.builtin import write_builtin_model
        from fogmesh.edge.models import ModelRegistry

        path = root / "models" / "tutor_agent_v1.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_builtin_model("tutor_agent_v1", path)
        import onnxruntime  # noqa: F401  (the agents and the result check need it too)
    except ImportError:
        return None
    registry = ModelRegistry(root / "coordinator")  # what `fogmesh model add` does
    try:
        registry.add(path, DEMO_MODEL)
    finally:
        registry.close()
    return str(path)


def _submit_all(client: FogClient, workload: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Submit the workload from a few threads at once, so the scheduler sees a real backlog."""

    def one(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = (
            # The agents fetch the model from the coordinator over the link the first time.
            {"type": "model", "model_id": spec["model_id"], "input": spec["args"]["input"]}
            if "model_id" in spec
            else {"type": "python", "function": spec["function"], "args": spec["args"]}
        )
        reply = client.submit(
            spec["type"],
            priority=spec["priority"],
            cpu_cores=spec["cpu_cores"],
            memory_mb=256,
            estimated_duration=5,
            payload=payload,
        )
        return str(reply["task_id"]), spec

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, workload))


def _progress(
    client: FogClient, fog: LocalFog, total: int, out: Console, timeout: float
) -> dict[str, int]:
    with Progress(
        TextColumn("[bold]tasks"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as bar:
        job = bar.add_task("", total=total)

        def done() -> dict[str, int] | None:
            fog.check_alive()
            counts: dict[str, int] = dict(client.status()["tasks"])
            finished = sum(counts.get(s, 0) for s in TERMINAL_STATES)
            bar.update(job, completed=finished, description=_state_line(counts))
            return counts if finished >= total else None

        return poll_until(done, timeout, f"{total} tasks to finish")


def _summarise(
    client: FogClient,
    fog: LocalFog,
    fleet: list[DemoAgent],
    names: dict[str, DemoAgent],
    submitted: dict[str, dict[str, Any]],
    counts: dict[str, int],
) -> dict[str, Any]:
    per_device: Counter[str] = Counter()
    per_class: Counter[str] = Counter()
    refusals: list[dict[str, Any]] = []
    wrong: list[str] = []
    correct = 0
    states: Counter[str] = Counter()
    steered: Counter[tuple[str, str, str]] = Counter()
    examples: dict[tuple[str, str, str], str] = {}
    for task_id, spec in submitted.items():
        task = client.task(task_id)
        decision = client.explain(task_id).get("decision") or {}
        for r in decision.get("rejected", []):
            who = names.get(str(r.get("device_id")))
            key = (
                who.name if who else str(r.get("device_id")),
                str(r.get("kind")),
                str(r.get("code")),
            )
            steered[key] += 1
            examples.setdefault(key, str(r.get("text")))
        states[task["state"]] += 1
        agent = names.get(task.get("assigned_device") or "")
        name = agent.name if agent else str(task.get("assigned_device"))
        if task["state"] == "completed":
            per_device[name] += 1
            per_class[agent.device_class if agent else "unknown"] += 1
            if _same(task.get("result"), _recompute(spec["function"], spec["args"])):
                correct += 1
            else:
                wrong.append(task_id)
        for h in task.get("history", []):
            if h.get("outcome") not in (None, "completed"):
                who = names.get(h.get("device_id", ""))
                refusals.append(
                    {
                        "task": task_id,
                        "device": who.name if who else h.get("device_id"),
                        "outcome": h.get("outcome"),
                        "reason": h.get("reason"),
                    }
                )
    energy: dict[str, dict[str, Any]] = {}
    for agent in fleet:
        path = fog.root / agent.name / "energy.json"
        if agent.kind is None:
            energy[agent.name] = {"class": agent.device_class, "metered": False}
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        energy[agent.name] = {
            "class": agent.device_class,
            "metered": bool(data),
            "battery_wh": float(data.get("battery_wh", 0.0)),
            "mains_wh": float(data.get("mains_wh", 0.0)),
            "battery_percent": data.get("battery_percent"),
            "cpu_temp_c": data.get("cpu_temp_c"),
            "plugged": data.get("plugged"),
        }
    return {
        "devices": [
            {
                "name": a.name,
                "class": a.device_class,
                "state": a.describe(),
                "tasks": per_device.get(a.name, 0),
            }
            for a in fleet
        ],
        "tasks": {"submitted": len(submitted), **dict(states)},
        "tasks_per_type": dict(Counter(str(spec["type"]) for spec in submitted.values())),
        "tasks_per_class": dict(per_class),
        "tasks_per_device": dict(per_device),
        "energy": energy,
        "energy_totals": {
            "battery_wh": round(sum(e.get("battery_wh", 0.0) for e in energy.values()), 6),
            "mains_wh": round(sum(e.get("mains_wh", 0.0) for e in energy.values()), 6),
        },
        "steered_away": [
            {"device": d, "kind": k, "code": c, "tasks": n, "example": examples[(d, k, c)]}
            for (d, k, c), n in steered.most_common()
        ],
        "refused": refusals,
        "refused_by_reason": dict(Counter(str(r["reason"]) for r in refusals)),
        "results": {"checked": correct + len(wrong), "correct": correct, "wrong": wrong},
        "coordinator_counts": counts,
    }


def _wh(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 1000:.2f} mWh"


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """The summary as tables: where the work went, energy, refusals and result checks."""
    table = Table(title="Where the work ran", title_justify="left")
    for column in ("device", "class", "started as", "tasks", "battery", "mains", "now"):
        table.add_column(column, no_wrap=True)
    energy: dict[str, dict[str, Any]] = summary["energy"]
    for device in summary["devices"]:
        e = energy.get(device["name"], {})
        now = "not metered"
        if e.get("metered"):
            pct = e.get("battery_percent")
            now = ("mains" if pct is None else f"{pct:.1f}%") + (
                "⚡" if e.get("plugged") and pct is not None else ""
            )
            now += f" {e.get('cpu_temp_c', 0.0):.0f}°C"
        table.add_row(
            device["name"],
            device["class"],
            device["state"],
            str(device["tasks"]),
            _wh(e.get("battery_wh")) if e.get("metered") else "—",
            _wh(e.get("mains_wh")) if e.get("metered") else "—",
            now,
        )
    console.print(table)
    kinds = ", ".join(f"{k} {v}" for k, v in summary["tasks_per_type"].items())
    model = (
        " (an ONNX classifier registered with the coordinator; agents fetch it over the link)"
        if summary.get("model")
        else ""
    )
    console.print(f"[bold]workload[/]: {kinds}{model}")
    per_class = ", ".join(f"{k} {v}" for k, v in sorted(summary["tasks_per_class"].items()))
    console.print(f"[bold]tasks per class[/]: {per_class}")
    totals = summary["energy_totals"]
    console.print(
        f"[bold]energy (emulated devices)[/]: {_wh(totals['battery_wh'])} from batteries, "
        f"{_wh(totals['mains_wh'])} from the wall (mains or charging)"
    )
    console.print("[bold]work steered away[/] (device policy when the work arrived):")
    for name, p in summary["policies"].items():
        if p["power_mode"] == "performance":
            continue
        why = "; ".join(p["reasons"]) or "—"
        console.print(
            f"  {name}: {p['power_mode']}, at most {p['max_concurrent_tasks']} tasks "
            f"at {p['cpu_limit_percent']:g}% CPU — {why}",
            highlight=False,
        )
    for s in summary["steered_away"][:8]:
        console.print(
            f"  {s['device']}: {s['kind']} {s['code']} for {s['tasks']} tasks — {s['example']}",
            highlight=False,
        )
    refused = summary["refused_by_reason"]
    if refused:
        console.print(f"[bold]refused by devices[/] ({len(summary['refused'])} attempts):")
        for reason, n in sorted(refused.items(), key=lambda kv: -kv[1]):
            devices = sorted(
                {str(r["device"]) for r in summary["refused"] if r["reason"] == reason}
            )
            console.print(f"  {n}× {reason}  [dim]({', '.join(devices)})[/]", highlight=False)
    else:
        console.print("[bold]refused by devices[/]: none (the scheduler kept work off them)")
    results = summary["results"]
    tasks = summary["tasks"]
    console.print(
        f"[bold]results[/]: {tasks.get('completed', 0)}/{tasks['submitted']} completed, "
        f"{results['correct']}/{results['checked']} recomputed locally and identical"
        + (f", WRONG: {', '.join(results['wrong'])}" if results["wrong"] else "")
    )
    console.print(
        f"[bold]wall time[/]: {summary['wall_s']} s; all processes stopped"
        + ("" if not summary["kept"] else f"; data kept in {summary['data_dir']}")
    )
