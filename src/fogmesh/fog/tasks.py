"""Tasks: what the fog runs, and the only legal ways a task's state may change.

Priority scale (one scale, everywhere): CRITICAL 10 > HIGH 7 > NORMAL 3 > LOW 1.

Lifecycle::

    PENDING ──place──▶ SCHEDULED ──start──▶ RUNNING ──▶ COMPLETED | FAILED
       ▲  │               │  │                 │
       │  └─▶ CANCELLED ◀─┘  └──▶ COMPLETED    ├──▶ CANCELLED
       │  └─▶ FAILED (deadline / bad)          │
       └────────── requeue (lost device, timeout, refusal, preemption) ◀──┘

A placement is a *lease* on (device, attempt). Every placement increments ``attempt``; a result
or status carrying an older attempt number is stale and rejected (fencing), so a device that comes
back late cannot overwrite the retry.
"""

from __future__ import annotations

import os
import re
import threading
from enum import IntEnum, StrEnum
from typing import Any, Final

import msgspec

from fogmesh.devices.model import Accepts, DeviceType
from fogmesh.errors import IllegalTransition, InvalidRequest
from fogmesh.fog.payload_bounds import check_payload_bounds

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MODEL_ID_PATTERN",
    "NOT_ACCEPTED_CODES",
    "TERMINAL_STATES",
    "AttemptRecord",
    "CommandPayload",
    "ModelPayload",
    "Payload",
    "PythonPayload",
    "Task",
    "TaskConstraints",
    "TaskIdFactory",
    "TaskPriority",
    "TaskResources",
    "TaskState",
    "TaskType",
    "check_transition",
    "is_legal_transition",
    "payload_refusal",
    "python_function_problem",
    "validate_task",
]

MAX_PAYLOAD_BYTES: Final = 1 << 20  # encoded payload; bigger inputs travel as artefacts
# Model ids name files in every device's model cache: one safe alphabet, checked at submit
# (edge.models.check_model_id applies the same one when a model is added).
MODEL_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Refusal codes that mean "this device does not take this payload" (its allow-list, commands
# off, no model runtime, a model it cannot get) rather than "not now" (policy, busy): the task
# moves to another device and does not come back to this one (fog.scheduler.RefusedFilter).
NOT_ACCEPTED_CODES: Final = frozenset(
    {
        "not_allowed",
        "bad_function",
        "commands_disabled",
        "bad_command",
        "no_payload",
        "models_unsupported",
        "model_unavailable",
    }
)


class TaskType(StrEnum):
    INFERENCE = "inference"
    TRAINING = "training"
    EMBEDDING = "embedding"
    PREPROCESSING = "preprocessing"
    OPTIMIZATION = "optimization"
    VALIDATION = "validation"


class TaskPriority(IntEnum):
    LOW = 1
    NORMAL = 3
    HIGH = 7
    CRITICAL = 10


class TaskState(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES: Final = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})

_LEGAL: Final[dict[TaskState, frozenset[TaskState]]] = {
    TaskState.PENDING: frozenset({TaskState.SCHEDULED, TaskState.FAILED, TaskState.CANCELLED}),
    # SCHEDULED → COMPLETED/FAILED: a fast task's "running" report may be overtaken by its result.
    TaskState.SCHEDULED: frozenset(
        {
            TaskState.RUNNING,
            TaskState.PENDING,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELLED,
        }
    ),
    TaskState.RUNNING: frozenset(
        {TaskState.COMPLETED, TaskState.FAILED, TaskState.PENDING, TaskState.CANCELLED}
    ),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


def is_legal_transition(old: TaskState, new: TaskState) -> bool:
    return new in _LEGAL[old]


def check_transition(task_id: str, old: TaskState, new: TaskState) -> None:
    """Raise ``IllegalTransition`` unless ``old → new`` is allowed."""
    if new not in _LEGAL[old]:
        raise IllegalTransition(
            f"task {task_id}: {old.value} → {new.value} is not allowed",
            task_id=task_id,
            state=old.value,
            requested=new.value,
        )


class TaskResources(msgspec.Struct, frozen=True, kw_only=True):
    cpu_cores: float = 1.0
    memory_mb: int = 256
    requires_gpu: bool = False
    estimated_duration: float = 60.0  # seconds
    input_mb: float = 0.0  # size of the input the device must fetch (scheduler: network cost)


class TaskConstraints(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    device_types: frozenset[DeviceType] | None = None  # None: any type
    min_battery_percent: float | None = None  # battery devices only; mains devices pass
    requires_charging: bool = False  # battery devices must be charging (mains devices pass)
    requires_unmetered: bool = False
    requires_model: str | None = None  # a deployed model id
    site: str | None = None  # locality label


class PythonPayload(msgspec.Struct, frozen=True, tag="python"):
    function: str  # "module:function", allow-listed by the agent
    args: dict[str, Any] = msgspec.field(default_factory=dict)


class ModelPayload(msgspec.Struct, frozen=True, tag="model"):
    model_id: str
    input: Any = None


class CommandPayload(msgspec.Struct, frozen=True, tag="command"):
    argv: list[str]


Payload = PythonPayload | ModelPayload | CommandPayload


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    device_id: str
    placed_at: float
    ended_at: float | None = None
    outcome: str | None = None  # completed | failed | lost | timeout | refused | preempted | ...
    reason: str | None = None


class Task(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: TaskType
    priority: TaskPriority = TaskPriority.NORMAL
    resources: TaskResources = TaskResources()
    constraints: TaskConstraints = TaskConstraints()
    payload: Payload | None = None
    deadline: float | None = None  # epoch seconds; expired while pending → failed("deadline")
    max_attempts: int = 3
    attempt: int = 0  # fencing token: incremented on every placement
    state: TaskState = TaskState.PENDING
    assigned_device: str | None = None
    created_at: float = 0.0
    scheduled_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None  # {"code": ..., "reason": ...}
    history: tuple[AttemptRecord, ...] = ()

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def validate_task(task: Task) -> Task:
    """Check a new task's values; raise ``InvalidRequest`` naming the field. Returns ``task``."""
    r = task.resources
    if not (r.cpu_cores > 0 and r.cpu_cores <= 1024):
        raise InvalidRequest("cpu_cores must be > 0 and ≤ 1024", field="cpu_cores")
    if not (0 < r.memory_mb <= 1 << 24):
        raise InvalidRequest("memory_mb must be > 0 and ≤ 16 TiB", field="memory_mb")
    if not (r.estimated_duration > 0 and r.estimated_duration <= 7 * 24 * 3600):
        raise InvalidRequest(
            "estimated_duration must be > 0 s and ≤ 7 days", field="estimated_duration"
        )
    if not (0 <= r.input_mb <= 1 << 30):
        raise InvalidRequest("input_mb must be ≥ 0 and ≤ 1 PiB", field="input_mb")
    if not 1 <= task.max_attempts <= 100:
        raise InvalidRequest("max_attempts must be 1–100", field="max_attempts")
    c = task.constraints
    if c.min_battery_percent is not None and not 0 <= c.min_battery_percent <= 100:
        raise InvalidRequest("min_battery_percent must be 0–100", field="min_battery_percent")
    if c.device_types is not None and not c.device_types:
        raise InvalidRequest("device_types, when given, must name at least one type")
    if c.requires_model is not None and not _is_model_id(c.requires_model):
        raise InvalidRequest(_model_id_text(c.requires_model), field="requires_model")
    p = task.payload
    if isinstance(p, PythonPayload):
        problem = python_function_problem(p.function)
        if problem is not None:
            raise InvalidRequest(problem, field="payload.function")
    if isinstance(p, ModelPayload) and not _is_model_id(p.model_id):
        raise InvalidRequest(_model_id_text(p.model_id), field="payload.model_id")
    if isinstance(p, CommandPayload) and not p.argv:
        raise InvalidRequest("command payload needs a non-empty argv", field="payload")
    if p is not None:
        check_payload_bounds(p, MAX_PAYLOAD_BYTES)
    return task


def _is_model_id(value: object) -> bool:
    return isinstance(value, str) and MODEL_ID_PATTERN.fullmatch(value) is not None


def _model_id_text(value: object) -> str:
    return (
        f"model id {str(value)[:200]!r} must be 1–128 characters of letters, digits, '.', "
        "'_', '-' and start with a letter or digit"
    )


def python_function_problem(function: str) -> str | None:
    """Why ``function`` cannot name a task entry point (``None`` if it can): ``module:name``,
    dotted identifiers, none private — what every agent requires before it imports anything."""
    module, sep, name = function.partition(":")
    parts = [*module.split("."), name]
    if not sep or not all(
        p.isascii() and p.isidentifier() and not p.startswith("_") for p in parts
    ):
        return (
            f"python payload function {function[:200]!r} must be 'module:function' with "
            "public dotted ASCII names (no leading '_')"
        )
    return None


def payload_refusal(accepts: Accepts, payload: Payload | None) -> tuple[str, str] | None:
    """(code, reason) if a device that ``accepts`` this would refuse ``payload``; else None.
    The scheduler's PayloadFilter asks it; the agent's runner refuses with the same codes."""
    if isinstance(payload, PythonPayload):
        module = payload.function.partition(":")[0]
        if accepts.allows_module(module):
            return None
        return "not_allowed", f"module {module!r} is not in the device's allow-list"
    if isinstance(payload, CommandPayload):
        if accepts.commands:
            return None
        return "commands_disabled", "the device does not run command payloads"
    if isinstance(payload, ModelPayload):
        if accepts.models:
            return None
        return "models_unsupported", "the device does not run model payloads"
    return None


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class TaskIdFactory:
    """ULID-style ids: 48-bit millisecond time + 80 random bits, Crockford base32, 26 chars.

    Lexicographic order is creation order, also within one millisecond (the random part is
    incremented, as the ULID spec's monotonic mode does), so two submits in the same instant
    never collide (the original's ids did).
    """

    def __init__(self, randbytes: Any = os.urandom) -> None:
        self._randbytes = randbytes
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new(self, epoch_seconds: float) -> str:
        ms = int(epoch_seconds * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                rand = self._last_rand + 1
                if rand >= 1 << 80:
                    ms += 1
                    rand = int.from_bytes(self._randbytes(10), "big")
            else:
                rand = int.from_bytes(self._randbytes(10), "big")
            self._last_ms, self._last_rand = ms, rand
        value = (ms << 80) | rand
        return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))
