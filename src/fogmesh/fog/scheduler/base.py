"""The contract every filter and scorer follows (DESIGN.md §5), and what they are given.

* A ``Filter`` answers ``PASS``, ``not_now(code, text)`` (may pass later: hot, low battery, busy)
  or ``never(code, text)`` (cannot pass while the device stays what it is: no GPU, too little RAM).
* A ``Scorer`` answers a value in [0, 1] from ``score()`` and says why from ``reason()``. The two
  are split so the hot path never formats text: reasons are produced only for the devices an
  explanation shows.
* Both read a ``TaskNeed`` (the task's requirements, unpacked once per task) and
  ``Reservations`` (what earlier placements of the same plan have taken from each device).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from fogmesh.devices.model import DeviceType
from fogmesh.fog.tasks import CommandPayload, ModelPayload, PythonPayload, Task, TaskPriority

if TYPE_CHECKING:
    from fogmesh.fog.scheduler.config import SchedulerConfig
    from fogmesh.fog.scheduler.snapshot import NodeView

__all__ = [
    "PASS",
    "Filter",
    "Reservations",
    "Scorer",
    "TaskNeed",
    "Verdict",
    "VerdictKind",
    "cpu_bound",
    "mem_bound",
    "never",
    "not_now",
]


class VerdictKind(StrEnum):
    PASS = "pass"
    NOT_NOW = "not_now"
    NEVER = "never"


class Verdict:
    """A filter's answer. ``code`` is stable and machine-readable; ``text`` is for people."""

    __slots__ = ("code", "kind", "text")

    def __init__(self, kind: VerdictKind, code: str, text: str) -> None:
        self.kind = kind
        self.code = code
        self.text = text

    @property
    def passed(self) -> bool:
        return self.kind is VerdictKind.PASS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verdict) and (self.kind, self.code, self.text) == (
            other.kind,
            other.code,
            other.text,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.code, self.text))

    def __repr__(self) -> str:
        if self.kind is VerdictKind.PASS:
            return "PASS"
        return f"{self.kind.value}({self.code!r}, {self.text!r})"


PASS: Final = Verdict(VerdictKind.PASS, "", "")


def not_now(code: str, text: str) -> Verdict:
    return Verdict(VerdictKind.NOT_NOW, code, text)


def never(code: str, text: str) -> Verdict:
    return Verdict(VerdictKind.NEVER, code, text)


class TaskNeed:
    """A task's requirements, unpacked once per placement so filters read plain attributes."""

    __slots__ = (
        "cpu",
        "critical",
        "declined",
        "device_types",
        "duration",
        "gpu",
        "input_mb",
        "large_input",
        "long",
        "mem",
        "min_battery",
        "model",
        "model_hint",
        "not_accepted",
        "payload_key",
        "priority",
        "requires_charging",
        "requires_unmetered",
        "site",
        "task",
        "task_id",
    )

    task: Task
    task_id: str
    priority: TaskPriority
    critical: bool
    cpu: float
    mem: int
    gpu: bool
    duration: float
    long: bool
    input_mb: float
    large_input: bool
    device_types: frozenset[DeviceType] | None
    min_battery: float | None
    requires_charging: bool
    requires_unmetered: bool
    model: str | None  # a hard requirement
    model_hint: str | None  # the model the task uses, required or not (for scoring)
    site: str | None
    payload_key: tuple[str, ...] | None  # what decides whether a device accepts the payload
    not_accepted: dict[str, str] | None  # device → why it refused this task's payload
    declined: dict[str, tuple[float, str]] | None  # device → (when, why) it last said "not now"

    def __init__(self, task: Task, config: SchedulerConfig) -> None:
        r, c = task.resources, task.constraints
        self.task = task
        self.task_id = task.id
        self.priority = task.priority
        self.critical = task.priority >= TaskPriority.CRITICAL
        self.cpu = float(r.cpu_cores)
        self.mem = int(r.memory_mb)
        self.gpu = bool(r.requires_gpu)
        self.duration = float(r.estimated_duration)
        self.long = self.duration >= config.long_task_s
        self.input_mb = max(0.0, float(r.input_mb))
        self.large_input = self.input_mb >= config.large_input_mb and self.input_mb > 0
        self.device_types = c.device_types
        self.min_battery = c.min_battery_percent
        self.requires_charging = c.requires_charging
        self.requires_unmetered = c.requires_unmetered
        self.model = c.requires_model
        hint = c.requires_model
        if hint is None and isinstance(task.payload, ModelPayload):
            hint = task.payload.model_id
        self.model_hint = hint
        self.site = c.site
        p = task.payload
        if isinstance(p, PythonPayload):
            self.payload_key = ("python", p.function.partition(":")[0])
        elif isinstance(p, ModelPayload):
            self.payload_key = ("model",)
        elif isinstance(p, CommandPayload):
            self.payload_key = ("command",)
        else:
            self.payload_key = None
        self.not_accepted = self.declined = None
        for h in task.history:  # (usually empty: only a requeued task has any)
            if h.outcome == "not_accepted":
                if self.not_accepted is None:
                    self.not_accepted = {}
                self.not_accepted[h.device_id] = h.reason or "refused the payload"
            elif h.outcome == "refused":
                if self.declined is None:
                    self.declined = {}
                self.declined[h.device_id] = (h.ended_at or 0.0, h.reason or "refused")

    def shape(self) -> tuple[object, ...]:
        """Everything but cpu/memory: tasks of one shape fail or pass the same filters."""
        return (
            self.critical,
            self.gpu,
            self.long,
            self.device_types,
            self.min_battery,
            self.requires_charging,
            self.requires_unmetered,
            self.model,
            self.site,
            self.payload_key,
            # A task some device refused is judged on its own: what it fails elsewhere says
            # nothing about tasks the same devices never refused.
            self.task_id if self.not_accepted or self.declined else None,
        )


class Reservations:
    """What placements earlier in the same plan (and preemptions) took from or gave back to a
    device: ``extra[device_id] = [cpu cores, memory MB, task count, largest cpu added, largest
    memory added, placements added]``, added to the node's own; ``wh[device_id]``: battery
    energy (Wh) those placements will draw.

    A device runs at most ``slot_cap`` of its leases at once (the rest wait in its queue), so
    what the new placements can add to its peak use is bounded by ``slot_cap`` of the largest
    of them (``cpu_bound`` / ``mem_bound``): a round may fill a device's queue places with
    tiny tasks without counting each one's CPU as if they all ran together.
    """

    __slots__ = ("extra", "wh")

    def __init__(self) -> None:
        self.extra: dict[str, list[float]] = {}
        self.wh: dict[str, float] = {}

    def add(self, device_id: str, cpu: float, mem: float, count: int) -> None:
        e = self.extra.get(device_id)
        if e is None:
            e = self.extra[device_id] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        e[0] += cpu
        e[1] += mem
        e[2] += count
        if count > 0:
            if cpu > e[3]:
                e[3] = cpu
            if mem > e[4]:
                e[4] = mem
            e[5] += count

    def adjust(self, device_id: str, cpu: float, mem: float, count: int) -> None:
        """Change the sums alone, not the largest placement: for evicting running work (and
        putting it back), which is no placement of this plan."""
        e = self.extra.get(device_id)
        if e is None:
            e = self.extra[device_id] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        e[0] += cpu
        e[1] += mem
        e[2] += count

    def used(self, node: NodeView) -> tuple[float, float, int]:
        e = self.extra.get(node.device_id)
        if e is None:
            return node.cpu_used, float(node.mem_used), node.n_running
        return cpu_bound(node, e), mem_bound(node, e), node.n_running + int(e[2])


def cpu_bound(node: NodeView, e: list[float]) -> float:
    """The device's CPU use at its peak with this plan's placements (``Reservations``)."""
    k = node.slot_cap
    if e[5] and k > 0:
        return node.cpu_used + min(e[0], min(e[5], k) * e[3])
    return node.cpu_used + e[0]


def mem_bound(node: NodeView, e: list[float]) -> float:
    """The device's memory use at its peak with this plan's placements (``Reservations``)."""
    k = node.slot_cap
    if e[5] and k > 0:
        return node.mem_used + min(e[1], min(e[5], k) * e[4])
    return node.mem_used + e[1]


class Filter(ABC):
    name: str = "filter"

    def applies(self, need: TaskNeed) -> bool:
        """False when this filter passes every device for this task (the pipeline skips it).

        Must depend only on the fields in ``TaskNeed.shape()``: the answer is cached per shape.
        """
        return True

    @abstractmethod
    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict: ...


class Scorer(ABC):
    name: str = "scorer"
    # True when the score depends on the device alone (not the task or reservations): the
    # pipeline then computes it once per NodeView object instead of once per candidate.
    node_only: bool = False

    def constant_for(self, need: TaskNeed) -> float | None:
        """The score every device gets for this task, if it is the same for all (else None).

        The pipeline then scores it once per task, not once per candidate.
        """
        return None

    @abstractmethod
    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        """A value in [0, 1]; higher is better. The pipeline raises if it is not."""

    @abstractmethod
    def reason(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> str:
        """Why ``score`` gave what it gave, with the arithmetic."""
