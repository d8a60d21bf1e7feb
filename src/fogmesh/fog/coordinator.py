"""``FogCoordinator``: the seed's API over the durable store, the pure scheduler and clusters.

The store is the truth; this object is an adapter around the pure cores:

* ``submit_task`` validates, stores durably (group commit), then wakes the scheduling loop.
* A scheduling round (every ``scheduling_interval`` seconds — 5 s, the seed's — and at once after
  a submit or a device change) marks silent devices lost and requeues their work, takes back
  expired leases, re-forms clusters if membership changed, fails expired deadlines, asks
  ``fog.scheduler.place`` for a plan, applies its preemptions and placements as compare-and-set
  transitions, and records every decision so ``explain(task_id)`` can answer "why there / why
  not there".
* Devices (or the agent link of a later issue) report ``started`` / ``result`` / ``failure`` /
  ``refused`` with their lease's attempt number; a stale attempt is refused (fencing).
* A device takes new work only while it can: not after its agent link closed (``link_closed``)
  and, after a (re)start, not before it has been heard from again. Leases it loses that way are
  not charged to their tasks (``fog.lifecycle``).

Reads that the seed makes synchronous (``get_task_status``, ``get_system_status``) are answered
from state this object keeps in step with every transition it makes; it is the only writer of its
store (one coordinator per store until the scale-out issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from fogmesh.clock import Clock, WallClock
from fogmesh.devices.model import DeviceProfile, DeviceType
from fogmesh.errors import (
    DeviceNotFound,
    FogmeshError,
    InvalidRequest,
    StaleAttempt,
    StoreError,
    TaskNotFound,
)
from fogmesh.fog.clusters import (
    DEFAULT_CLUSTER_CONFIG,
    ClusterConfig,
    Clustering,
    ClusterMember,
    form,
)
from fogmesh.fog.idempotency import submit_key
from fogmesh.fog.lifecycle import (
    DISCONNECTED,
    LINK_LOSSES,
    OFFLINE,
    LifecycleConfig,
    expired_leases,
    link_loss_outcome,
    links_given_up,
    lost_cutoff,
    lost_device_outcome,
)
from fogmesh.fog.scheduler import (
    DEFAULT_CONFIG,
    ClusterSnapshot,
    NodeView,
    Plan,
    RunningTask,
    SchedulerConfig,
    battery_evictions,
    node_from_profile,
    place,
)
from fogmesh.fog.scheduler.explain import Failure, Placement, Unplaced
from fogmesh.fog.tasks import (
    NOT_ACCEPTED_CODES,
    TERMINAL_STATES,
    Payload,
    Task,
    TaskConstraints,
    TaskIdFactory,
    TaskPriority,
    TaskResources,
    TaskState,
    TaskType,
    validate_task,
)
from fogmesh.logs import TaskLog
from fogmesh.mobile.policy import ResourceOptimization, ResourcePolicy, evaluate
from fogmesh.store import ClusterRecord, DeviceRecord, DeviceStatus, Store, SubmitKey, open_store
from fogmesh.store import Placement as StorePlacement

__all__ = ["CoordinatorConfig", "FogCoordinator", "TaskDispatcher"]

log = logging.getLogger(__name__)

Decision = Placement | Unplaced | Failure
TaskDispatcher = Callable[[Task], Any]
# Told to stop an attempt the coordinator took back (device id, task id, attempt, reason).
AttemptStopper = Callable[[str, str, int, str], Any]
"""Called with each newly leased task (sync or async); the agent link pushes it to the device."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatorConfig:
    scheduling_interval: float = 5.0  # the seed's scheduling period
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    scheduler: SchedulerConfig = DEFAULT_CONFIG
    clusters: ClusterConfig = DEFAULT_CLUSTER_CONFIG
    policy: ResourcePolicy = field(default_factory=ResourcePolicy)
    pending_window: int = 2000  # pending tasks considered per round (half by priority, half by age)
    # … but no more than 8 per free slot or queue place in the fleet, and at least this many: a
    # round that can place 3 tasks need not rank 2,000. Tasks that no free device could take
    # (a constraint) only hold back the ones behind them if more than half this many are ahead
    # of them by both priority and age.
    round_window_min: int = 256
    # A round that follows another by less than this waits out the rest: under a stream of
    # completions each batch would otherwise buy a round (and a commit) of its own for a task or
    # two, while the agents' queues hold enough work to bridge a few milliseconds. An idle fog's
    # first round, for a lone task, runs at once. 0 turns the pacing off.
    round_gap: float = 0.01
    # Short tasks queued per slot on a device (NodeView.queue_cap; the agent allows up to 64):
    # once the device's recent tasks ran in at most tiny_task_s on average, doubled while the
    # queue holds at most queue_target_s of their work, up to queue_depth_tiny.
    queue_depth: int = 4
    queue_depth_tiny: int = 64
    tiny_task_s: float = 0.05
    queue_target_s: float = 0.1
    # Clusters are re-formed (O(devices), and all written) at most this often per device in the
    # fleet: every second at 2,000 devices, every 5 ms for ten. The share of the coordinator's
    # time re-forming takes is then the same at any size (measured: ~2 % in a connect storm).
    recluster_per_device_s: float = 0.0005
    decisions_kept: int = 100_000  # explanations kept in memory (newest)
    finished_kept: int = 10_000  # finished tasks kept for get_task_status (newest)
    rng_seed: int = 0


@dataclass(slots=True)
class _Device:
    record: DeviceRecord
    optimization: ResourceOptimization
    labels: dict[str, str]


class FogCoordinator:
    """Places prioritised tasks on the fog's devices and keeps every accepted task safe.

    ``FogCoordinator()`` with no arguments keeps its state in SQLite in the per-user data
    directory (``FOGMESH_HOME`` overrides); pass ``store=`` (any ``Store``) or ``store_url=``.
    It starts on first use; ``await close()`` (or ``async with``) stops it cleanly.
    """

    def __init__(
        self,
        store: Store | None = None,
        config: CoordinatorConfig | None = None,
        *,
        clock: Clock | None = None,
        store_url: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        dispatcher: TaskDispatcher | None = None,
        stopper: AttemptStopper | None = None,
        run_loop: bool = True,
    ) -> None:
        self.config = config or CoordinatorConfig()
        self.clock: Clock = clock or WallClock()
        self._store = store
        self._owns_store = store is None
        self._store_url = store_url
        self._data_dir = data_dir
        self._dispatcher = dispatcher
        self._stopper = stopper
        self._run_loop = run_loop
        self._ids = TaskIdFactory()
        self._snapshot = ClusterSnapshot()  # read it through _fleet
        # device → tasks whose lease ended since the snapshot was last read: a stream of
        # results frees leases one by one, and each release rebuilds the device's node
        self._releasing: dict[str, list[str]] = {}
        self._devices: dict[str, _Device] = {}
        self._clustering = Clustering()
        self._clusters_dirty = False
        self._live: dict[str, Task] = {}  # every non-terminal task
        # Indexes over _live, kept by _track: the round reads the queue from memory (the
        # store is written through, never polled), a heartbeat finds its device's leases, and
        # the deadline check is a heap peek instead of a database write every round.
        self._queue: dict[str, Task] = {}  # PENDING, in the order they became pending
        self._queue_by_priority: dict[TaskPriority, dict[str, Task]] = {}  # the same, by priority
        self._leases: dict[str, dict[str, Task]] = {}  # device → its SCHEDULED/RUNNING tasks
        self._deadlines: list[tuple[float, str]] = []  # (deadline, task id) of PENDING tasks
        self._next_lost_check = 0.0
        # When this coordinator started watching its devices: liveness and leases are measured
        # from here too, so its own downtime is never held against a device or a task.
        self._watching_since = -math.inf
        # Devices that take no new work until they are heard from: those loaded at start, and
        # those whose agent link closed (with when, until their leases are given up).
        self._silent: set[str] = set()
        self._link_closed_at: dict[str, float] = {}
        # Task → (attempt, when) of a result that arrived but could not be stored: that lease
        # does not run out while the device sends the result again.
        self._results_waiting: dict[str, tuple[int, float]] = {}
        self._next_recluster = 0.0
        self._beats: set[asyncio.Task[None]] = set()  # heartbeats being written behind
        self._run_s: dict[str, float] = {}  # device → moving average of its tasks' run time
        self._finished: OrderedDict[str, Task] = OrderedDict()
        self._counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Task]]] = {}
        # Task lifecycle lines (fogmesh.logs.TaskLog): the routine ones and the ones that say
        # something went wrong have budgets of their own, so a flood of completions never
        # hides a failure.
        self._task_log = TaskLog(log)
        self._trouble_log = TaskLog(log)
        self._stats = {
            "rounds": 0,
            "placements": 0,
            "preemptions": 0,
            "requeues": 0,
            "evictions": 0,
        }
        self._start_lock: asyncio.Lock | None = None
        self._round_lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, load devices and unfinished tasks, start the scheduling loop."""
        if self._closed:
            raise InvalidRequest("this coordinator is closed")
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            if self._store is None:
                self._store = await open_store(self._store_url, self._data_dir)
            self._watching_since = self.clock.time()
            await self._load()
            self._round_lock = asyncio.Lock()
            self._wake = asyncio.Event()
            if self._run_loop:
                self._loop_task = asyncio.create_task(self._loop(), name="fogmesh-scheduler")
            self._started = True

    async def close(self) -> None:
        """Stop the loop, let a round in progress finish, and close the store if we opened it."""
        if self._closed:
            return
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._round_lock is not None:
            async with self._round_lock:
                pass
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.cancel()
        if self._beats:
            await asyncio.gather(*self._beats, return_exceptions=True)
        if self._store is not None and self._owns_store:
            await self._store.close()

    async def __aenter__(self) -> FogCoordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise InvalidRequest("the coordinator has not started; await start() first")
        return self._store

    async def _ready(self) -> Store:
        if not self._started:
            await self.start()
        if self._closed:
            raise InvalidRequest("this coordinator is closed")
        return self.store

    async def _load(self) -> None:
        store = self.store
        counts = await store.count_by_state()
        self._counts = {s: counts.get(s, 0) for s in TaskState}
        for state in (TaskState.PENDING, TaskState.SCHEDULED, TaskState.RUNNING):
            after: str | None = None
            while True:
                page = await store.list_tasks(state, limit=5000, after=after)
                for t in page:
                    self._track(t, t)  # indexes it; counts came from the store
                if len(page) < 5000:
                    break
                after = page[-1].id
        for record in await store.list_devices():
            if record.status in _LOSABLE:
                # Known from before the start, but not heard from since: no work until it is
                # (lost and offline ones take none anyway).
                self._silent.add(record.device_id)
            self._adopt_device(record, record.labels)
        records = await store.load_clusters()
        if records:
            self._clustering = Clustering(
                clusters=tuple(
                    _cluster_from_record(r) for r in sorted(records, key=lambda r: r.cluster_id)
                ),
                next_seq=_next_seq(records),
            )

    # -- tasks ------------------------------------------------------------------------------
    async def submit_task(
        self,
        task_type: TaskType | str,
        priority: TaskPriority | int | str = TaskPriority.NORMAL,
        cpu_cores: float = 1.0,
        memory_mb: int = 256,
        estimated_duration: float = 60.0,
        requires_gpu: bool = False,
        *,
        payload: Payload | Mapping[str, Any] | None = None,
        deadline: float | None = None,
        constraints: TaskConstraints | Mapping[str, Any] | None = None,
        max_attempts: int = 3,
        idempotency_key: str | None = None,
    ) -> str:
        """Accept a task; returns its id once it is durable. ``deadline`` is epoch seconds.
        With ``idempotency_key``, a submit whose key is held returns the task stored under it
        and stores nothing (``fog.idempotency``)."""
        store = await self._ready()
        now = self.clock.time()
        task = self._build_task(
            now,
            task_type=task_type,
            priority=priority,
            resources=(cpu_cores, memory_mb, estimated_duration, requires_gpu),
            payload=payload,
            deadline=deadline,
            constraints=constraints,
            max_attempts=max_attempts,
        )
        if idempotency_key is not None:
            key = submit_key(idempotency_key, now)
            stored = (await store.add_keyed_tasks([task], [key], now))[0]
            if stored != task.id:
                return stored  # a retry: the first submit's task, already tracked
        else:
            await store.add_task(task)
        self._track(task, None)
        self._task_log.info(
            "submitted",
            "task %s submitted (%s, %s)",
            task.id,
            task.type.value,
            task.priority.name.lower(),
            task_id=task.id,
        )
        self._kick()
        return task.id

    async def submit_tasks(self, specs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Accept many tasks at once, all or none: one durable write, then one round.

        Each spec takes ``submit_task``'s keyword arguments (``task_type`` required). A bad
        spec raises ``InvalidRequest`` naming its index and nothing is stored.
        """
        store = await self._ready()
        now = self.clock.time()
        built: list[Task] = []
        keys: list[SubmitKey | None] = []
        for index, spec in enumerate(specs):
            try:
                task = self._task_from_spec(now, spec)
            except InvalidRequest as exc:
                inner = exc.details.get("field")
                raise InvalidRequest(
                    f"task {index}: {exc.reason}",
                    field=f"tasks[{index}]" + (f".{inner}" if inner else ""),
                ) from None
            built.append(task)
            given = spec.get("idempotency_key")
            keys.append(None if given is None else submit_key(given, now))
        if not built:
            return []
        if any(k is not None for k in keys):
            ids = await store.add_keyed_tasks(built, keys, now)
            built = [t for t, stored in zip(built, ids, strict=True) if stored == t.id]
        else:
            await store.add_tasks(built)
            ids = [t.id for t in built]
        for task in built:
            self._track(task, None)
        if len(built) == 1:
            self._task_log.info("submitted", "task %s submitted", built[0].id, task_id=built[0].id)
        elif built:  # (none when every task was a retry of one already stored)
            self._task_log.info(
                "submitted", "%d tasks submitted (%s … %s)", len(built), built[0].id, built[-1].id
            )
        self._kick()
        return ids

    def _task_from_spec(self, now: float, spec: Mapping[str, Any]) -> Task:
        if not isinstance(spec, Mapping):
            raise InvalidRequest("a task spec must be an object")
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise InvalidRequest(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
        if "task_type" not in spec:
            raise InvalidRequest("task_type is required", field="task_type")
        return self._build_task(
            now,
            task_type=spec["task_type"],
            priority=spec.get("priority", TaskPriority.NORMAL),
            resources=(
                spec.get("cpu_cores", 1.0),
                spec.get("memory_mb", 256),
                spec.get("estimated_duration", 60.0),
                spec.get("requires_gpu", False),
            ),
            payload=spec.get("payload"),
            deadline=spec.get("deadline"),
            constraints=spec.get("constraints"),
            max_attempts=spec.get("max_attempts", 3),
        )

    def _build_task(
        self,
        now: float,
        *,
        task_type: TaskType | str,
        priority: TaskPriority | int | str,
        resources: tuple[float, int, float, bool],
        payload: Payload | Mapping[str, Any] | None,
        deadline: float | None,
        constraints: TaskConstraints | Mapping[str, Any] | None,
        max_attempts: int,
    ) -> Task:
        cpu_cores, memory_mb, estimated_duration, requires_gpu = resources
        try:
            kind = TaskType(task_type)
        except ValueError:
            known = ", ".join(t.value for t in TaskType)
            raise InvalidRequest(
                f"unknown task type {task_type!r}; known: {known}", field="task_type"
            ) from None
        prio = _priority(priority)
        if deadline is not None:
            if isinstance(deadline, bool) or not isinstance(deadline, int | float):
                raise InvalidRequest("deadline must be epoch seconds", field="deadline")
            if deadline <= now:
                raise InvalidRequest("deadline has already passed", field="deadline")
        try:
            res = msgspec.convert(
                {
                    "cpu_cores": cpu_cores,
                    "memory_mb": memory_mb,
                    "estimated_duration": estimated_duration,
                    "requires_gpu": requires_gpu,
                },
                TaskResources,
                strict=False,
            )
            cons = (
                constraints
                if isinstance(constraints, TaskConstraints)
                else msgspec.convert(constraints or {}, TaskConstraints, strict=False)
            )
            body = (
                payload
                if payload is None or isinstance(payload, msgspec.Struct)
                else msgspec.convert(payload, Payload, strict=False)
            )
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid task: {exc}") from exc
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool):
            raise InvalidRequest("max_attempts must be an integer", field="max_attempts")
        return validate_task(
            Task(
                id=self._ids.new(now),
                type=kind,
                priority=prio,
                resources=res,
                constraints=cons,
                payload=body,
                deadline=None if deadline is None else float(deadline),
                max_attempts=max_attempts,
                created_at=now,
            )
        )

    def get_task_status(self, task_id: str) -> dict[str, Any]:
        """The task's state as a plain dict (``state``, ``attempt``, ``device``, ``result`` …).

        Known tasks are every unfinished one and the newest finished ones; for older finished
        tasks use ``await get_task(task_id)``.
        """
        task = self._live.get(task_id) or self._finished.get(task_id)
        if task is None:
            raise TaskNotFound(f"unknown task {task_id!r}", task_id=task_id)
        return _status(task)

    async def get_task(self, task_id: str) -> Task:
        """The task as stored, with its attempt history."""
        store = await self._ready()
        return await store.get_task(task_id)

    async def cancel_task(self, task_id: str, reason: str = "cancelled by request") -> Task:
        store = await self._ready()
        before = self._live.get(task_id)
        task = await store.cancel(task_id, self.clock.time(), reason)
        if before is not None and before.assigned_device is not None:
            self._release(task_id, before.assigned_device)
        self._track(task, before)
        self._trouble_log.info(
            "cancelled", "task %s cancelled: %s", task_id, reason, task_id=task_id
        )
        self._kick()
        return task

    async def wait_for(self, task_id: str, timeout: float | None = None) -> Task:  # noqa: ASYNC109 - the seed's API
        """Wait until the task is completed, failed or cancelled; ``TimeoutError`` otherwise."""
        store = await self._ready()
        known = self._live.get(task_id) or self._finished.get(task_id)
        if known is None:
            known = await store.get_task(task_id)
        if known.is_terminal:
            return known
        fut: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, []).append(fut)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            futures = self._waiters.get(task_id)
            if futures is not None:
                with contextlib.suppress(ValueError):
                    futures.remove(fut)
                if not futures:
                    del self._waiters[task_id]

    def explain(self, task_id: str) -> dict[str, Any]:
        """Why the task is where it is: its state and attempts, and the latest decision with the
        chosen device's score breakdown or, if unplaced, the count of devices per reason."""
        task = self._live.get(task_id) or self._finished.get(task_id)
        if task is None:
            raise TaskNotFound(f"unknown task {task_id!r}", task_id=task_id)
        out = _status(task)
        out["history"] = [msgspec.to_builtins(h) for h in task.history]
        decision = self._decisions.get(task_id)
        out["decision"] = _decision_dict(decision)
        out["text"] = (
            decision.explain()
            if isinstance(decision, Placement | Unplaced)
            else decision.text
            if isinstance(decision, Failure)
            else f"task {task_id} has not been considered by the scheduler yet"
        )
        return out

    # -- devices ----------------------------------------------------------------------------
    async def register_node(
        self, profile: DeviceProfile, *, labels: Mapping[str, str] | None = None
    ) -> DeviceRecord:
        """Add a device (or take back one that was lost or offline) with its live profile."""
        store = await self._ready()
        known = profile.device_id in self._devices
        record = await store.upsert_device(profile, self.clock.time(), labels=labels)
        if known:
            # A device that registers again has restarted: whatever it held is gone.
            await self._requeue_device_leases(
                record.device_id, DISCONNECTED, "device re-registered (it restarted)"
            )
        self._heard(record.device_id)
        self._adopt_device(record, record.labels)
        self._clusters_dirty = True
        self._kick()
        return record

    async def update_node_state(self, device_id: str, profile: DeviceProfile) -> DeviceRecord:
        """A heartbeat with the device's live profile; a lost device comes back ready.

        A known device's new state is taken in memory at once and written behind, batched
        with other devices' heartbeats: liveness is soft state (a restarted coordinator hears
        every device again), and an answer must not wait for the disk. An unknown device is
        the store's to refuse.
        """
        store = await self._ready()
        if profile.device_id != device_id:
            raise InvalidRequest(
                f"profile is for {profile.device_id!r}, not {device_id!r}", field="device_id"
            )
        before = self._devices.get(device_id)
        now = self.clock.time()
        if before is None:
            record = await store.heartbeat(device_id, now, profile)
        else:
            old = before.record
            record = msgspec.structs.replace(
                old,
                device_type=DeviceType(profile.device_type),
                profile=profile.to_dict(),
                last_heartbeat=now,
                status=DeviceStatus.DRAINING
                if old.status is DeviceStatus.DRAINING
                else DeviceStatus.READY,
            )
            beat = asyncio.create_task(self._write_heartbeat(store, device_id, now, profile))
            self._beats.add(beat)
            beat.add_done_callback(self._beats.discard)
        if self._silent:
            self._heard(device_id)
        self._adopt_device(record, record.labels, profile)
        await self._evict(device_id)
        if before is None or before.record.status is not DeviceStatus.READY:
            self._clusters_dirty = True
        if self._queue:  # a new reading may make room; with nothing waiting, no round is owed
            self._kick()
        return record

    async def _evict(self, device_id: str) -> None:
        """Stop and requeue the work on a battery that has fallen to the floor's margin (e.g. a
        device unplugged while busy): fog work must not take it below the floor. Not the task's
        fault, so the attempt is not charged."""
        node = self._fleet.get(device_id)
        if node is None:
            return
        for task_id, reason in battery_evictions(node, self.config.scheduler):
            current = self._live.get(task_id)
            if current is None or current.state not in _LEASED:
                continue
            try:
                task = await self.store.requeue(
                    task_id, current.attempt, "preempted", reason, self.clock.time()
                )
            except FogmeshError as exc:  # a report raced us; the store decided
                log.info("eviction of %s skipped: %s", task_id, exc.reason)
                continue
            self._stats["evictions"] += 1
            self._release(task_id, device_id)
            self._track(task, current)
            self._requeued(task, device_id, reason)
            if self._stopper is not None:
                try:
                    self._stopper(device_id, task_id, current.attempt, reason)
                except Exception:  # the device's late result is fenced off anyway
                    log.exception("could not tell %s to stop %s", device_id, task_id)
            self._kick()

    async def _write_heartbeat(
        self, store: Store, device_id: str, now: float, profile: DeviceProfile
    ) -> None:
        try:
            await store.note_heartbeat(device_id, now, profile)
        except DeviceNotFound:
            pass  # removed meanwhile
        except FogmeshError as exc:  # memory stays right; the next beat writes again
            log.warning("heartbeat of %s not stored: %s", device_id, exc.reason)

    async def remove_node(self, device_id: str) -> None:
        """Forget a device; its leased tasks go back to the queue."""
        store = await self._ready()
        await store.get_device(device_id)
        await self._requeue_device_leases(device_id, "removed", "device removed")
        await store.remove_device(device_id)
        self._heard(device_id)
        self._devices.pop(device_id, None)
        self._fleet.remove(device_id)
        log.info("device %s removed", device_id)
        self._clusters_dirty = True
        self._kick()

    async def set_draining(self, device_id: str, draining: bool = True) -> DeviceRecord:
        store = await self._ready()
        status = DeviceStatus.DRAINING if draining else DeviceStatus.READY
        record = await store.set_device_status(device_id, status)
        self._adopt_device(record, record.labels)
        log.info(
            "device %s %s",
            device_id,
            "draining: no new work" if draining else "takes work again",
        )
        self._kick()
        return record

    async def mark_offline(
        self, device_id: str, reason: str = "device went offline"
    ) -> DeviceRecord:
        """The device said goodbye: no new work, its leases go back to the queue now (not after
        missed heartbeats). Its next heartbeat or registration makes it ready again."""
        store = await self._ready()
        await self._requeue_device_leases(device_id, OFFLINE, reason)
        self._link_closed_at.pop(device_id, None)  # nothing left to wait for
        record = await store.set_device_status(device_id, DeviceStatus.OFFLINE)
        self._adopt_device(record, record.labels)
        self._clusters_dirty = True
        self._kick()
        return record

    async def link_closed(self, device_id: str) -> None:
        """The device's agent link closed (its process died, its network went): it takes no new
        work from now on. Its leases wait ``reconnect_grace`` for the agent to come back holding
        them (running work survives a network blip), then go back to the queue, not charged.
        Its next registration or heartbeat makes it placeable again."""
        await self._ready()
        if device_id not in self._devices:
            return
        self._silent.add(device_id)
        self._link_closed_at[device_id] = self.clock.time()
        self._fleet.remove(device_id)
        self._kick()

    def devices_can_connect(self) -> None:
        """The endpoint devices report to is up from now on (the service calls this when it
        starts listening): a (re)started coordinator's devices are given their liveness window
        from here, not from when it began loading, so a slow start costs none of them."""
        self._watching_since = max(self._watching_since, self.clock.time())

    def _heard(self, device_id: str) -> None:
        """The device spoke (registered or sent a heartbeat): it may take work again."""
        self._silent.discard(device_id)
        self._link_closed_at.pop(device_id, None)

    async def add_deployed_model(self, device_id: str, model_id: str) -> DeviceRecord:
        """Note that a device now holds a model: the scheduler prefers it for that model's work."""
        store = await self._ready()
        await store.add_model(device_id, model_id, self.clock.time())
        record = await store.get_device(device_id)
        self._adopt_device(record, record.labels)
        self._kick()
        return record

    async def remove_deployed_model(self, device_id: str, model_id: str) -> DeviceRecord:
        store = await self._ready()
        await store.remove_model(device_id, model_id)
        record = await store.get_device(device_id)
        self._adopt_device(record, record.labels)
        return record

    def knows_device(self, device_id: str) -> bool:
        """Whether the device is registered (from memory; the store is written through)."""
        return device_id in self._devices

    async def get_device(self, device_id: str) -> DeviceRecord:
        store = await self._ready()
        return await store.get_device(device_id)

    async def list_devices(self) -> list[DeviceRecord]:
        store = await self._ready()
        return await store.list_devices()

    def queue_depth(self, device_id: str) -> int:
        """Short tasks the device may hold queued per slot. Deep for a device whose tasks have
        lately run in milliseconds: its queue must bridge the coordinator's commit and round
        latency and the results still on their way back (tens of milliseconds) at hundreds of
        tasks a second. Yet no deeper than about ``queue_target_s`` of work per slot (doubling
        from ``queue_depth`` up to ``queue_depth_tiny``): work queued on one device cannot go
        to another that frees up."""
        ran = self._run_s.get(device_id)
        cfg = self.config
        depth = cfg.queue_depth
        if ran is None or ran > cfg.tiny_task_s:
            return depth
        while depth * 2 <= cfg.queue_depth_tiny and depth * 2 * ran <= cfg.queue_target_s:
            depth *= 2
        return depth

    def _adopt_device(
        self,
        record: DeviceRecord,
        labels: Mapping[str, str],
        profile: DeviceProfile | None = None,
    ) -> None:
        if profile is None:  # a heartbeat hands its profile in: no decoding it back
            profile = record.device_profile()
        prev = self._devices.get(record.device_id)
        optimization = evaluate(
            profile, self.config.policy, prev.optimization if prev is not None else None
        )
        self._devices[record.device_id] = _Device(record, optimization, dict(labels))
        if record.status is not DeviceStatus.READY or record.device_id in self._silent:
            # Lost, offline, draining and silent devices take no new work; their leases stay
            # counted through the tasks themselves.
            self._fleet.remove(record.device_id)
            return
        running = [
            RunningTask(
                t.id,
                t.priority,
                t.resources.cpu_cores,
                t.resources.memory_mb,
                t.started_at or t.scheduled_at or 0.0,
                t.resources.estimated_duration,
            )
            for t in self._leases.get(record.device_id, {}).values()
        ]
        self._fleet.upsert(
            node_from_profile(
                profile,
                optimization,
                running=running,
                deployed_models=record.models,
                site=labels.get("site"),
                network=labels.get("network"),
                queued_per_slot=self.queue_depth(record.device_id),
                seen_at=record.last_heartbeat,
            )
        )

    def nodes(self) -> list[NodeView]:
        """The ready devices as the scheduler sees them."""
        return sorted(self._fleet, key=lambda n: n.device_id)

    @property
    def clustering(self) -> Clustering:
        return self._clustering

    # -- reports from devices (fenced by attempt) ------------------------------------------
    async def report_started(self, task_id: str, device_id: str, attempt: int) -> Task:
        store = await self._ready()
        task = await store.mark_running(task_id, device_id, attempt, self.clock.time())
        self._track(task, self._live.get(task_id))
        return task

    async def report_result(
        self,
        task_id: str,
        device_id: str,
        attempt: int,
        result: Any,
        *,
        wall_s: float | None = None,
    ) -> Task:
        """The task completed; ``wall_s`` is how long it ran on the device, if the device says
        (it sets how deep the device's queue of short tasks may be: ``queue_depth``)."""
        store = await self._ready()
        try:
            task = await store.complete(task_id, device_id, attempt, result, self.clock.time())
        except StoreError:
            self._result_not_stored(task_id, device_id, attempt)
            raise
        if wall_s is not None and math.isfinite(wall_s) and wall_s >= 0:
            depth = self.queue_depth(device_id)
            last = self._run_s.get(device_id)
            self._run_s[device_id] = wall_s if last is None else last + 0.2 * (wall_s - last)
            known = self._devices.get(device_id)
            if known is not None and self.queue_depth(device_id) != depth:
                self._adopt_device(known.record, known.labels)  # the new depth, now
        self._release(task_id, device_id)
        self._track(task, self._live.get(task_id))
        self._task_log.info(
            "completed",
            "task %s completed on %s (attempt %d)",
            task_id,
            device_id,
            attempt,
            task_id=task_id,
            device_id=device_id,
        )
        self._kick()
        return task

    async def report_failure(
        self,
        task_id: str,
        device_id: str,
        attempt: int,
        error: Mapping[str, Any],
        *,
        retry: bool = True,
    ) -> Task:
        """The task failed on the device: retried elsewhere (``retry``) or failed for good."""
        store = await self._ready()
        now = self.clock.time()
        self._check_lease(task_id, device_id, attempt)
        why = str(error.get("reason", error.get("code")))
        try:
            if retry:
                task = await store.requeue(task_id, attempt, "failed", why, now)
            else:
                task = await store.fail(task_id, device_id, attempt, error, now)
        except StoreError:
            self._result_not_stored(task_id, device_id, attempt)
            raise
        self._release(task_id, device_id)
        self._track(task, self._live.get(task_id))
        self._requeued(task, device_id, f"failed: {why}" if retry else why)
        self._kick()
        return task

    async def report_refused(
        self, task_id: str, device_id: str, attempt: int, reason: str, *, code: str = ""
    ) -> Task:
        """The device would not run the task; it goes back to the queue, uncharged (the task did
        nothing wrong). A refusal of the payload itself (``code`` in ``NOT_ACCEPTED_CODES``:
        module not allowed, commands off, model unavailable) is recorded as ``not_accepted`` and
        the task never goes back to that device; any other (its policy, busy) as ``refused``,
        and the device may have it again once it has reported a newer reading."""
        store = await self._ready()
        self._check_lease(task_id, device_id, attempt)
        outcome = "not_accepted" if code in NOT_ACCEPTED_CODES else "refused"
        try:
            task = await store.requeue(task_id, attempt, outcome, reason, self.clock.time())
        except StoreError:
            self._result_not_stored(task_id, device_id, attempt)
            raise
        self._release(task_id, device_id)
        self._track(task, self._live.get(task_id))
        self._requeued(task, device_id, f"refused: {reason}")
        self._kick()
        return task

    async def report_lost(self, task_id: str, device_id: str, attempt: int, reason: str) -> Task:
        """The device came back without a lease it held (its agent restarted and the work went
        with it): the task goes back to the queue, charged only as ``link_loss_outcome`` says."""
        store = await self._ready()
        self._check_lease(task_id, device_id, attempt)
        task = await store.get_task(task_id)
        requeued = await self._end_lease(
            task, attempt, device_id, DISCONNECTED, reason, self.clock.time()
        )
        self._kick()
        return requeued

    def _result_not_stored(self, task_id: str, device_id: str, attempt: int) -> None:
        """The device's report of its lease could not be written (the store failed): the lease
        must not run out while the device sends it again."""
        task = self._live.get(task_id)
        if task is not None and task.assigned_device == device_id and task.attempt == attempt:
            self._results_waiting[task_id] = (attempt, self.clock.time())

    def _check_lease(self, task_id: str, device_id: str, attempt: int) -> None:
        task = self._live.get(task_id)
        if task is None:
            if task_id in self._finished:
                raise StaleAttempt(f"task {task_id} is already finished", task_id=task_id)
            return  # unknown here: let the store answer
        if task.assigned_device != device_id or task.attempt != attempt:
            raise StaleAttempt(
                f"task {task_id}: attempt {attempt} on {device_id} is not the current lease",
                task_id=task_id,
            )

    def assignments(self, device_id: str) -> list[Task]:
        """Tasks currently leased to a device (for agents that pull)."""
        return sorted(self._leases.get(device_id, {}).values(), key=lambda t: t.id)

    # -- status -----------------------------------------------------------------------------
    def get_system_status(self) -> dict[str, Any]:
        """Counts by state, devices by status and power mode, utilisation, clusters."""
        by_status: dict[str, int] = dict.fromkeys((s.value for s in DeviceStatus), 0)
        by_mode: dict[str, int] = {}
        by_type: dict[str, int] = dict.fromkeys((t.value for t in DeviceType), 0)
        for d in self._devices.values():
            by_status[d.record.status.value] += 1
            by_type[d.record.device_type.value] += 1
            if d.record.status is DeviceStatus.READY:
                mode = d.optimization.power_mode.value
                by_mode[mode] = by_mode.get(mode, 0) + 1
        cpu_cap = sum(n.cpu_cap for n in self._fleet)
        cpu_used = sum(min(n.cpu_used, n.cpu_cap) for n in self._fleet)
        mem_cap = sum(n.mem_cap for n in self._fleet)
        mem_used = sum(min(n.mem_used, n.mem_cap) for n in self._fleet)
        # Per priority from the index the rounds keep: status is polled while thousands wait.
        queue = {
            TaskPriority(p).name.lower(): len(held)
            for p, held in sorted(self._queue_by_priority.items(), reverse=True)
            if held
        }
        return {
            "tasks": {s.value: self._counts[s] for s in TaskState},
            "queue_by_priority": queue,
            "devices": {
                "total": len(self._devices),
                "by_status": by_status,
                "by_type": by_type,
                "ready_by_power_mode": by_mode,
            },
            "utilisation": {
                "cpu": cpu_used / cpu_cap if cpu_cap else 0.0,
                "memory": mem_used / mem_cap if mem_cap else 0.0,
                "cpu_cores_reserved": cpu_used,
                "cpu_cores_available": cpu_cap,
            },
            "clusters": [
                {
                    "id": c.id,
                    "site": c.site,
                    "members": list(c.members),
                    "head": c.head,
                    "term": c.term,
                }
                for c in self._clustering.clusters
            ],
            "scheduler": dict(self._stats),
        }

    # -- the scheduling round ----------------------------------------------------------------
    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        gap = self.config.round_gap
        last_end = float("-inf")
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for runs the wait in an inner task that
            # asyncio.run's shutdown can strand, hanging the program at exit.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.scheduling_interval):
                    await self._wake.wait()
            wait = last_end + gap - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            try:
                plan = await self.schedule_once()
                if plan.placements:  # only rounds that placed work are worth spacing out
                    last_end = loop.time()
            except asyncio.CancelledError:
                raise
            except FogmeshError as exc:
                log.warning("scheduling round failed: %s", exc.reason)
            except Exception:  # a bug must not stop the fog; it is logged with its traceback
                log.exception("scheduling round crashed")

    async def schedule_once(self) -> Plan:
        """One scheduling round (the loop calls this; tests may call it directly)."""
        store = await self._ready()
        assert self._round_lock is not None
        async with self._round_lock:
            now = self.clock.time()
            self._stats["rounds"] += 1
            await self._mark_lost(now)
            if self._link_closed_at:
                await self._give_up_links(now)
            await self._expire_leases(now)
            if self._clusters_dirty and now >= self._next_recluster:
                # Membership changes are folded into a later round rather than paid for on
                # every registration: re-forming clusters costs O(devices) and writes them all.
                await self._recluster()
                self._next_recluster = now + self.config.recluster_per_device_s * len(self._devices)
            if self._deadline_due(now):
                for task_id in await store.fail_expired(now):
                    self._track(await store.get_task(task_id), self._live.get(task_id))
                    self._trouble_log.info(
                        "failed",
                        "task %s failed: its deadline passed before it was placed",
                        task_id,
                        task_id=task_id,
                    )
            if not self._queue:
                return Plan()
            index = self._fleet.index
            if (
                index.nodes
                and not index.buckets
                and not any(t.priority >= TaskPriority.CRITICAL for t in self._queue.values())
            ):
                # No device has a free slot or queue place, and nothing pending may preempt:
                # nothing can be placed, so the round skips the queue (a completion frees room
                # and kicks the next round).
                return Plan()
            free = sum(
                n.slot_cap + n.queue_cap - n.n_running
                for g in index.buckets.values()
                for n in g.items
            )
            window = min(self.config.pending_window, max(self.config.round_window_min, 8 * free))
            pending = await self._pending(window)
            if not pending:
                return Plan()
            plan = place(
                self._fleet,
                pending,
                now,
                config=self.config.scheduler,
                rng_seed=self.config.rng_seed + self._stats["rounds"],
            )
            await self._apply(plan, now)
            return plan

    async def _pending(self, window: int) -> list[Task]:
        queued = self._queue
        if len(queued) <= window:
            return sorted(queued.values(), key=_by_priority)
        # Half by priority, half by age: the aging rule needs to see the oldest work too. Both
        # are read in O(window) from insertion-ordered indexes, not by sorting the queue: a
        # requeued task rejoins at the back of its priority, as in a FIFO queue.
        half = max(1, window // 2)
        chosen: dict[str, Task] = {}
        for priority in sorted(self._queue_by_priority, reverse=True):
            for task in self._queue_by_priority[priority].values():
                if len(chosen) >= half:
                    break
                chosen[task.id] = task
        for task in itertools.islice(queued.values(), half):
            chosen.setdefault(task.id, task)
        return list(chosen.values())

    def _deadline_due(self, now: float) -> bool:
        """Whether some pending task's deadline has passed (stale heap entries dropped)."""
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, task_id = heap[0]
            queued = self._queue.get(task_id)
            if queued is not None and queued.deadline == deadline:
                return True
            heapq.heappop(heap)
        return False

    async def _apply(self, plan: Plan, now: float) -> None:
        store = self.store
        for p in plan.preempted:
            current = self._live.get(p.task_id)
            if current is None or current.state not in _LEASED:
                continue
            try:
                task = await store.requeue(p.task_id, current.attempt, "preempted", p.reason, now)
            except FogmeshError as exc:
                log.info("preemption of %s skipped: %s", p.task_id, exc.reason)
                continue
            self._stats["preemptions"] += 1
            self._release(p.task_id, p.device_id)
            self._track(task, current)
            self._requeued(task, p.device_id, f"preempted: {p.reason}")
        for unplaced in plan.unplaced:
            self._remember(unplaced)
        for failure in plan.failed:
            self._remember(failure)
        if not plan.placements:
            return
        rows = []
        for decision in plan.placements:
            queued = self._live.get(decision.task_id)
            attempt = queued.attempt if queued is not None else 0
            rows.append(StorePlacement(decision.task_id, decision.device_id, attempt))
        outcomes = await store.place_many(rows, now)
        placed: list[Placement] = []
        for decision, outcome in zip(plan.placements, outcomes, strict=True):
            if isinstance(outcome, FogmeshError):
                log.info("placement of %s skipped: %s", decision.task_id, outcome.reason)
                continue
            placed.append(decision)
            self._remember(decision)
            self._track(outcome, self._live.get(outcome.id))
            self._stats["placements"] += 1
            self._task_log.info(
                "placed",
                "task %s placed on %s (attempt %d, score %.3f)",
                decision.task_id,
                decision.device_id,
                outcome.attempt,
                decision.score,
                task_id=decision.task_id,
                device_id=decision.device_id,
            )
        self._fleet.apply(replace(plan, placements=tuple(placed), preempted=()), now)
        if self._dispatcher is not None:
            for decision in placed:
                leased = self._live.get(decision.task_id)
                if leased is None:
                    continue
                try:
                    maybe = self._dispatcher(leased)
                    if asyncio.iscoroutine(maybe):
                        await maybe
                except Exception:  # the lease times out and is retried; keep scheduling
                    log.exception("dispatch of %s failed", leased.id)

    async def _expire_leases(self, now: float) -> None:
        # A silent device's leases end by its liveness or link rule, never by a timeout: the
        # device could not have reported.
        silent = self._silent
        leased = [
            t
            for device, held in self._leases.items()
            if device not in silent
            for t in held.values()
        ]
        for expiry in expired_leases(
            leased,
            now,
            self.config.lifecycle,
            watching_since=self._watching_since,
            results_waiting=self._results_waiting,
        ):
            try:
                task = await self.store.requeue(
                    expiry.task_id, expiry.attempt, expiry.outcome, expiry.reason, now
                )
            except FogmeshError:
                continue  # a report raced us; the store decided
            if expiry.device_id is not None:
                self._release(expiry.task_id, expiry.device_id)
            self._track(task, self._live.get(expiry.task_id))
            self._requeued(task, expiry.device_id, expiry.reason)

    async def _mark_lost(self, now: float) -> None:
        if now < self._next_lost_check:
            return
        # Liveness is judged at a quarter of the heartbeat interval: finer buys nothing, and
        # the scan is O(devices). The store is asked only when memory sees a silent device.
        self._next_lost_check = now + self.config.lifecycle.heartbeat_interval / 4
        cutoff = lost_cutoff(now, self.config.lifecycle, self._watching_since)
        if not any(
            d.record.status in _LOSABLE and d.record.last_heartbeat < cutoff
            for d in self._devices.values()
        ):
            return
        if self._beats:  # the store must have every heartbeat memory has before it judges
            await asyncio.gather(*self._beats, return_exceptions=True)
        lost = await self.store.mark_lost(cutoff)
        if not lost:
            return
        for device_id in lost:
            log.warning("device %s missed its heartbeats: lost", device_id)
            known = self._devices.get(device_id)
            if device_id in self._link_closed_at:
                del self._link_closed_at[device_id]
                outcome, reason = DISCONNECTED, "the device's link closed and did not come back"
            else:
                last = known.record.last_heartbeat if known is not None else -math.inf
                outcome, reason = lost_device_outcome(last, self._watching_since)
            self._silent.discard(device_id)  # its status keeps it out from now on
            await self._requeue_device_leases(device_id, outcome, reason)
            if known is None:  # not in memory (one coordinator per store): read it once
                record = await self.store.get_device(device_id)
                self._adopt_device(record, record.labels)
                continue
            # Memory has the rest of the record: a fleet going silent at once (a partition)
            # costs no read per device.
            lost_record = msgspec.structs.replace(known.record, status=DeviceStatus.LOST)
            self._devices[device_id] = replace(known, record=lost_record)
            self._fleet.remove(device_id)
        self._clusters_dirty = True

    async def _give_up_links(self, now: float) -> None:
        """Requeue the leases of devices whose link closed and did not come back in time."""
        grace = self.config.lifecycle.reconnect_grace
        for device_id in links_given_up(self._link_closed_at, now, self.config.lifecycle):
            del self._link_closed_at[device_id]  # it stays silent until heard from
            log.info("device %s did not reconnect within %g s: its leases are requeued",
                     device_id, grace)  # fmt: skip
            await self._requeue_device_leases(
                device_id, DISCONNECTED, f"the device's link closed; not back within {grace:g} s"
            )

    async def _requeue_device_leases(self, device_id: str, outcome: str, reason: str) -> None:
        if not self._leases.get(device_id):
            # Memory holds every lease (loaded at start; one coordinator per store): a device
            # holding none costs no query — a connect storm re-registers thousands of them.
            return
        now = self.clock.time()
        for task in await self.store.leased_tasks(device_id):
            with contextlib.suppress(FogmeshError):  # ended meanwhile: nothing left to requeue
                await self._end_lease(task, task.attempt, device_id, outcome, reason, now)

    async def _end_lease(
        self, task: Task, attempt: int, device_id: str, outcome: str, reason: str, now: float
    ) -> Task:
        """Requeue the lease ``attempt`` of ``task`` on ``device_id`` as ``outcome`` (a link loss
        charged only as ``link_loss_outcome`` says), and keep memory and the log in step."""
        if outcome in LINK_LOSSES:
            outcome = link_loss_outcome(task, outcome, self.config.lifecycle)
        requeued = await self.store.requeue(task.id, attempt, outcome, reason, now)
        self._stats["requeues"] += 1
        self._release(task.id, device_id)
        self._track(requeued, self._live.get(task.id) or task)
        self._requeued(requeued, device_id, reason)
        return requeued

    def _requeued(self, task: Task, device_id: str | None, reason: str) -> None:
        """The lifecycle line for a lease that ended without a result: back in the queue, or
        failed for good when its attempts are spent."""
        where = f" on {device_id}" if device_id else ""
        if task.state is TaskState.PENDING:
            self._trouble_log.info(
                "requeued",
                "task %s requeued (attempt %d%s ended): %s",
                task.id,
                task.attempt,
                where,
                reason,
                task_id=task.id,
                device_id=device_id,
            )
        elif task.state is TaskState.FAILED:
            self._trouble_log.info(
                "failed",
                "task %s failed (attempt %d of %d%s): %s",
                task.id,
                task.attempt,
                task.max_attempts,
                where,
                reason,
                task_id=task.id,
                device_id=device_id,
            )

    def _release(self, task_id: str, device_id: str) -> None:
        self._releasing.setdefault(device_id, []).append(task_id)

    @property
    def _fleet(self) -> ClusterSnapshot:
        """The scheduler's snapshot, with the leases released since it was last read dropped
        (one node rebuild per device for a batch of results, not one per result)."""
        if self._releasing:
            released, self._releasing = self._releasing, {}
            for device_id, ids in released.items():
                self._snapshot.release(device_id, ids)
        return self._snapshot

    # -- clusters ---------------------------------------------------------------------------
    async def _recluster(self) -> None:
        self._clusters_dirty = False
        ready = {
            d.record.device_id: d
            for d in self._devices.values()
            if d.record.status in (DeviceStatus.READY, DeviceStatus.DRAINING)
        }
        members: dict[str, ClusterMember] = {}
        for device_id, d in ready.items():
            node = self._fleet.get(device_id)
            if node is not None:
                member = ClusterMember.from_node(
                    node, uptime_s=max(0.0, self.clock.time() - d.record.registered_at)
                )
            else:
                member = ClusterMember(device_id, site=d.labels.get("site"))
            members[device_id] = member
        clustering = form(members.values(), self.config.clusters, self._clustering)
        if clustering.clusters == self._clustering.clusters:
            return
        await self.store.save_clusters(
            [
                ClusterRecord(cluster_id=c.id, members=c.members, head=c.head, term=c.term)
                for c in clustering.clusters
            ],
            self.clock.time(),
        )
        self._clustering = clustering

    # -- bookkeeping ------------------------------------------------------------------------
    def _track(self, task: Task, before: Task | None) -> None:
        """Keep counts, the live set, its indexes and waiters in step with a transition."""
        if self._results_waiting and task.state not in _LEASED:
            self._results_waiting.pop(task.id, None)
        if before is not None and before.state is not task.state:
            self._counts[before.state] -= 1
            self._counts[task.state] += 1
        elif before is None and task.id not in self._live and task.id not in self._finished:
            self._counts[task.state] += 1
        previous = self._live.get(task.id) or before
        if previous is not None and previous.assigned_device is not None:
            held = self._leases.get(previous.assigned_device)
            if held is not None:
                held.pop(task.id, None)
                if not held:
                    del self._leases[previous.assigned_device]
        if task.state is TaskState.PENDING:
            if task.deadline is not None and task.id not in self._queue:
                heapq.heappush(self._deadlines, (task.deadline, task.id))
            self._queue[task.id] = task
            self._queue_by_priority.setdefault(task.priority, {})[task.id] = task
        else:
            if self._queue.pop(task.id, None) is not None:
                same = self._queue_by_priority.get(task.priority)
                if same is not None:
                    same.pop(task.id, None)
                    if not same:
                        del self._queue_by_priority[task.priority]
            if task.state in _LEASED and task.assigned_device is not None:
                self._leases.setdefault(task.assigned_device, {})[task.id] = task
        if task.state in TERMINAL_STATES:
            self._live.pop(task.id, None)
            self._finished[task.id] = task
            self._finished.move_to_end(task.id)
            while len(self._finished) > self.config.finished_kept:
                self._finished.popitem(last=False)
            for fut in self._waiters.pop(task.id, []):
                if not fut.done():
                    fut.set_result(task)
        else:
            self._live[task.id] = task

    def _remember(self, decision: Decision) -> None:
        self._decisions[decision.task_id] = decision
        self._decisions.move_to_end(decision.task_id)
        while len(self._decisions) > self.config.decisions_kept:
            self._decisions.popitem(last=False)


_LEASED = frozenset({TaskState.SCHEDULED, TaskState.RUNNING})
_LOSABLE = frozenset({DeviceStatus.READY, DeviceStatus.DRAINING})
_SPEC_KEYS = frozenset(
    {
        "idempotency_key",
        "task_type",
        "priority",
        "cpu_cores",
        "memory_mb",
        "estimated_duration",
        "requires_gpu",
        "payload",
        "deadline",
        "constraints",
        "max_attempts",
    }
)


def _by_priority(task: Task) -> tuple[int, float, str]:
    return (-task.priority, task.created_at, task.id)


def _priority(value: TaskPriority | int | str) -> TaskPriority:
    try:
        if isinstance(value, str):
            return TaskPriority[value.upper()]
        if isinstance(value, bool):
            raise ValueError
        return TaskPriority(value)
    except (KeyError, ValueError):
        known = ", ".join(f"{p.name.lower()} ({p.value})" for p in TaskPriority)
        raise InvalidRequest(
            f"unknown priority {value!r}; known: {known}", field="priority"
        ) from None


def _status(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "type": task.type.value,
        "priority": task.priority.name.lower(),
        "state": task.state.value,
        "attempt": task.attempt,
        "device": task.assigned_device,
        "created_at": task.created_at,
        "scheduled_at": task.scheduled_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "result": task.result,
        "error": task.error,
    }


def _decision_dict(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    kind = {Placement: "placed", Unplaced: "unplaced", Failure: "failed"}[type(decision)]
    value = msgspec.to_builtins(decision, builtin_types=())
    return {"kind": kind, **value}


def _cluster_from_record(r: ClusterRecord) -> Any:
    from fogmesh.fog.clusters import Cluster

    return Cluster(
        id=r.cluster_id, site=None, members=tuple(sorted(r.members)), head=r.head, term=r.term
    )


def _next_seq(records: Sequence[ClusterRecord]) -> int:
    best = 0
    for r in records:
        digits = "".join(ch for ch in r.cluster_id if ch.isdigit())
        if digits:
            best = max(best, int(digits))
    return best + 1
