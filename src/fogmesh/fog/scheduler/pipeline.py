"""``place(snapshot, pending, now) -> Plan``: the scheduler's one pure entry point.

Per call:

1. Tasks whose deadline has passed fail with reason ``deadline``.
2. The rest are ordered by effective priority (``effective_priority``), then age, then id.
3. Each task, in that order: pick a candidate source (the smallest index group that can hold a
   feasible device), sample up to ``sample_k`` feasible devices with ``random.Random(rng_seed)``
   (power-of-k choices), score them, take the best. If sampling finds none, scan the whole fleet
   — so a feasible device is never missed, and an unplaceable task gets exact per-reason counts.
4. A CRITICAL task that fits nowhere may evict preemptible work (priority ≤ NORMAL by default)
   from one device; the evicted tasks are listed in ``Plan.preempted`` for requeueing.
5. Every placement reserves its CPU, memory and slot for the rest of the call, so a plan never
   over-commits a device.

No I/O, no clock, no unseeded randomness: the same inputs and seed give the same plan.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Final

from fogmesh.errors import SchedulingError
from fogmesh.fog.scheduler.base import (
    PASS,
    Filter,
    Reservations,
    Scorer,
    TaskNeed,
    Verdict,
    VerdictKind,
)
from fogmesh.fog.scheduler.config import DEFAULT_CONFIG, SchedulerConfig
from fogmesh.fog.scheduler.explain import (
    Candidate,
    Failure,
    Placement,
    Plan,
    PlanStats,
    Preemption,
    Rejection,
    ScorePart,
    Unplaced,
    summarise,
    summary_text,
)
from fogmesh.fog.scheduler.filters import default_filters, task_wh
from fogmesh.fog.scheduler.index import (
    BAND_CHARGING,
    BAND_CRITICAL_MODE,
    BAND_MAINS,
    BucketKey,
    battery_bands_from,
    bucket_key,
    capacity_class,
    has_free_slot,
)
from fogmesh.fog.scheduler.scorers import default_scorers
from fogmesh.fog.scheduler.snapshot import ClusterSnapshot, NodeView, RunningTask
from fogmesh.fog.tasks import Task, TaskPriority, TaskState

__all__ = ["Pipeline", "effective_priority", "place"]

_Checks = tuple[Callable[[NodeView, TaskNeed, Reservations], Verdict], ...]
_ScoreFns = tuple[tuple[Callable[[NodeView, TaskNeed, Reservations], float], float, Scorer], ...]
_BUSY_CODES: Final = frozenset({"slots_busy", "cpu_busy", "memory_busy"})
_CRITICAL: Final = float(TaskPriority.CRITICAL)


def effective_priority(task: Task, now: float, config: SchedulerConfig = DEFAULT_CONFIG) -> float:
    """``priority + waited / aging_interval_s``; ordinary work is capped at ``aging_cap`` (9.5).

    With the defaults a task gains one point per minute waited: a LOW (1) task that has waited
    more than 6 minutes longer than a HIGH (7) one goes first, so a steady stream of HIGH work
    cannot starve it. The cap keeps aged ordinary work behind CRITICAL (10), which also ages so
    CRITICAL tasks are served oldest first.
    """
    base = float(task.priority)
    aged = base + max(0.0, now - task.created_at) / config.aging_interval_s
    if base >= _CRITICAL:
        return aged
    return max(base, min(aged, config.aging_cap))


class _Source:
    """Index lists to draw from, with their cumulative sizes; ``keys``: the capacity buckets
    they are (None for a constraint group)."""

    __slots__ = ("ends", "keys", "lists", "total")

    def __init__(self, lists: list[list[NodeView]], keys: frozenset[BucketKey] | None) -> None:
        self.lists = lists
        self.ends = list(accumulate(len(x) for x in lists))
        self.total = self.ends[-1] if self.ends else 0
        self.keys = keys


class _Decision:
    """Per-task scratch: what was looked at, what passed, what was rejected and why."""

    __slots__ = ("best", "best_score", "evaluated", "feasible", "full_scan", "rejected")

    def __init__(self) -> None:
        self.best: NodeView | None = None
        self.best_score = -1.0
        self.feasible: list[tuple[float, NodeView]] = []
        self.rejected: list[tuple[NodeView, Verdict]] = []
        self.evaluated = 0
        self.full_scan = False


class Pipeline:
    """Filters and weighted scorers built once from a config; ``place`` runs them."""

    def __init__(
        self,
        config: SchedulerConfig = DEFAULT_CONFIG,
        *,
        filters: Iterable[Filter] | None = None,
        scorers: Iterable[tuple[Scorer, float]] | None = None,
    ) -> None:
        self.config = config
        self.filters: tuple[Filter, ...] = (
            tuple(filters) if filters is not None else default_filters(config)
        )
        self.scorers: tuple[tuple[Scorer, float], ...] = (
            tuple(scorers) if scorers is not None else default_scorers(config)
        )
        wsum = sum(w for _, w in self.scorers)
        if not wsum > 0:
            raise SchedulingError("the scorers' weights must add up to more than 0")
        self.inv_weight_sum = 1.0 / wsum
        self._node_only = tuple((s, w) for s, w in self.scorers if s.node_only)
        self._per_task = tuple((s, w) for s, w in self.scorers if not s.node_only)
        # device id → (the NodeView it was computed for, Σ weight × score of node-only scorers).
        # A memo, not state: a new NodeView (next heartbeat) is recomputed.
        self._static: dict[str, tuple[NodeView, float]] = {}
        # task id → (the Task it was unpacked from, its TaskNeed, the need's shape), for the
        # tasks decided in this call and in the one before. A memo too (tasks are immutable): a
        # backlog is offered round after round, and unpacking it again every round was most of
        # what a round of refusals cost. Only two calls' worth, so it never holds on to more
        # than the queue itself.
        self._needs: dict[str, tuple[Task, TaskNeed, tuple[object, ...]]] = {}
        self._needs_before: dict[str, tuple[Task, TaskNeed, tuple[object, ...]]] = {}

    def need_of(self, task: Task) -> tuple[TaskNeed, tuple[object, ...]]:
        """The task's ``TaskNeed`` and its ``shape()``; unpacked again only for a Task object
        the previous ``place`` call did not decide."""
        entry = self._needs_before.get(task.id)
        if entry is None or entry[0] is not task:
            need = TaskNeed(task, self.config)
            entry = (task, need, need.shape())
        self._needs[task.id] = entry
        return entry[1], entry[2]

    # -- the entry point ----------------------------------------------------------------------

    def place(
        self, snapshot: ClusterSnapshot, pending: Sequence[Task], now: float, *, rng_seed: int = 0
    ) -> Plan:
        cfg = self.config
        failed: list[Failure] = []
        queue: list[tuple[float, float, str, Task]] = []
        seen: set[str] = set()
        for task in pending:
            if task.state is not TaskState.PENDING:
                raise SchedulingError(
                    f"task {task.id} is {task.state.value}, not pending", task_id=task.id
                )
            if task.id in seen:
                raise SchedulingError(f"task {task.id} is pending twice", task_id=task.id)
            seen.add(task.id)
            if task.deadline is not None and task.deadline <= now:
                failed.append(
                    Failure(task.id, "deadline", f"deadline {task.deadline:g} passed (now {now:g})")
                )
                continue
            queue.append((-effective_priority(task, now, cfg), task.created_at, task.id, task))
        # Task ids are unique (checked above), so the tuples order by their first three items
        # alone and no Task is ever compared.
        queue.sort()

        if len(self._static) > 2 * len(snapshot) + 1024:
            self._static.clear()
        self._needs_before, self._needs = self._needs, {}
        run = _Run(self, snapshot, rng_seed)
        for neg_ep, _, _, task in queue:
            short = task.resources.estimated_duration <= cfg.queue_task_max_s
            if run.no_room_for(short) and short in run.full and not need_critical(task):
                # Every device is full for this round: the rest cannot be placed, and saying
                # so costs nothing (a burst of queued work must not make each round
                # O(queue × devices)).
                run.no_room(task, -neg_ep, short)
                continue
            run.decide(task, -neg_ep)
            if (
                run.no_room_for(short)
                and short not in run.full
                and run.unplaced
                and run.unplaced[-1].task_id == task.id
            ):
                # The first task refused once the fleet is full keeps its full explanation;
                # the ones after it point to it.
                run.full[short] = run.unplaced[-1]
        return Plan(
            placements=tuple(run.placements),
            unplaced=tuple(run.unplaced),
            failed=tuple(failed),
            preempted=tuple(run.preempted),
            stats=PlanStats(
                seed=rng_seed,
                evaluated=run.evaluated,
                full_scans=run.full_scans,
                cached_failures=run.cached_failures,
            ),
        )

    # -- pieces the run (and tests) use -------------------------------------------------------

    def check(
        self, node: NodeView, need: TaskNeed, ctx: Reservations, filters: Sequence[Filter] = ()
    ) -> Verdict:
        for f in filters or self.filters:
            v = f.check(node, need, ctx)
            if v is not PASS:
                return v
        return PASS

    def score(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        """Σ weight × score / Σ weight, in [0, 1]; raises if any scorer leaves [0, 1]."""
        total = self.node_part(node, need, ctx)
        for scorer, weight in self._per_task:
            x = scorer.score(node, need, ctx)
            if not 0.0 <= x <= 1.0:
                raise _out_of_range(scorer, x, node, need)
            total += weight * x
        return total * self.inv_weight_sum

    def node_part(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> float:
        """Σ weight × score over the node-only scorers, memoised per NodeView object."""
        cached = self._static.get(node.device_id)
        if cached is not None and cached[0] is node:
            return cached[1]
        total = 0.0
        for scorer, weight in self._node_only:
            x = scorer.score(node, need, ctx)
            if not 0.0 <= x <= 1.0:  # also catches NaN
                raise _out_of_range(scorer, x, node, need)
            total += weight * x
        self._static[node.device_id] = (node, total)
        return total

    def task_part(self, need: TaskNeed) -> tuple[float, _ScoreFns]:
        """Per-task scorers split into a constant (same for every device) and the rest."""
        constant = 0.0
        varying: list[tuple[Callable[[NodeView, TaskNeed, Reservations], float], float, Scorer]]
        varying = []
        for scorer, weight in self._per_task:
            x = scorer.constant_for(need)
            if x is None:
                varying.append((scorer.score, weight, scorer))
            elif 0.0 <= x <= 1.0:
                constant += weight * x
            else:
                raise SchedulingError(
                    f"scorer {scorer.name!r} returned {x!r} for task {need.task_id}; scores "
                    "must be in [0, 1] (this is a bug in the scorer)",
                    scorer=scorer.name,
                )
        return constant, tuple(varying)

    def breakdown(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> tuple[ScorePart, ...]:
        parts = []
        for scorer, weight in self.scorers:
            x = scorer.score(node, need, ctx)
            if not 0.0 <= x <= 1.0:
                raise _out_of_range(scorer, x, node, need)
            parts.append(ScorePart(scorer.name, weight, x, scorer.reason(node, need, ctx)))
        return tuple(parts)


def need_critical(task: Task) -> bool:
    """Whether the task may preempt (the same test as ``TaskNeed.critical``)."""
    return task.priority >= TaskPriority.CRITICAL


def _out_of_range(scorer: Scorer, x: float, node: NodeView, need: TaskNeed) -> SchedulingError:
    return SchedulingError(
        f"scorer {scorer.name!r} returned {x!r} for device {node.device_id} and task "
        f"{need.task_id}; scores must be in [0, 1] (this is a bug in the scorer)",
        scorer=scorer.name,
    )


class _Run:
    """The state of one ``place()`` call."""

    def __init__(self, pipeline: Pipeline, snapshot: ClusterSnapshot, seed: int) -> None:
        self.p = pipeline
        self.cfg = pipeline.config
        self.index = snapshot.index
        self.rng = random.Random(seed)
        self.res = Reservations()
        # device id → its bucket after this run's reservations (None: no room left). The index
        # itself is never edited: a drawn device whose bucket no longer qualifies is skipped.
        self.moved: dict[str, BucketKey | None] = {}
        self.placements: list[Placement] = []
        self.unplaced: list[Unplaced] = []
        self.preempted: list[Preemption] = []
        self.preempted_ids: set[str] = set()
        # shape → [(cpu, mem, unplaced)] of tasks that fitted nowhere in this call
        self.failures: dict[tuple[object, ...], list[tuple[float, int, Unplaced]]] = {}
        self.sources: dict[tuple[float, bool, int, bool], _Source] = {}
        self.checks: dict[tuple[object, ...], _Checks] = {}
        self.task_constant = 0.0
        self.task_scorers: _ScoreFns = ()
        self.inv_wsum = pipeline.inv_weight_sum
        self.evaluated = 0
        self.full_scans = 0
        self.cached_failures = 0
        # Devices that still have a free slot, CPU and memory (those in a capacity bucket),
        # less the ones this run has filled. At 0 no ordinary task can be placed.
        # Devices with any lease room (a slot, or a queue place for short tasks), and those
        # with a free slot (what a longer task needs), less the ones this run has filled.
        self.room = sum(len(g.items) for g in self.index.buckets.values())
        self.slot_room = self.index.slot_room
        self.slotted: dict[str, bool] = {}
        # short task? → the first task refused after that kind of room ran out
        self.full: dict[bool, Unplaced] = {}

    # -- one task -----------------------------------------------------------------------------

    def decide(self, task: Task, ep: float) -> None:
        cfg = self.cfg
        need, shape = self.p.need_of(task)
        # Bound methods, built once per task shape: the per-candidate loop does no lookups.
        filters = self.checks.get(shape)
        if filters is None:
            filters = self.checks[shape] = tuple(f.check for f in self.p.filters if f.applies(need))
        for cpu, mem, earlier in self.failures.get(shape, ()):
            if need.cpu >= cpu and need.mem >= mem:
                self.cached_failures += 1
                self.unplaced.append(
                    Unplaced(
                        task.id,
                        ep,
                        f"as for {earlier.task_id}, which needs no more: {earlier.summary}",
                        earlier.counts,
                        earlier.rejected,
                    )
                )
                return

        self.task_constant, self.task_scorers = self.p.task_part(need)
        d = _Decision()
        k = cfg.sample_k
        if k is None:
            self._scan(self.index.nodes.values(), need, filters, d, full=True)
        else:
            src = self._source(need)
            if src.total <= cfg.scan_below:
                for items in src.lists:
                    self._scan(items, need, filters, d, full=False)
            elif src.total:
                self._sample(src, k, need, filters, d)
            if d.best is None:
                sampled = d.evaluated
                d = _Decision()
                d.evaluated = sampled
                self._scan(self.index.nodes.values(), need, filters, d, full=True)
        self.evaluated += d.evaluated
        if d.full_scan:
            self.full_scans += 1

        if d.best is not None:
            self._commit(d.best, need, ep, d, ())
            return
        if need.critical and cfg.preemption and self._preempt(need, ep, filters, d):
            return
        self._give_up(need, ep, filters, d, shape)

    def _source(self, need: TaskNeed) -> _Source:
        """The smallest set of index lists that holds every device that could pass."""
        idx = self.index
        best = self._buckets_for(need)
        options: list[list[list[NodeView]]] = []
        if need.model is not None:
            g = idx.by_model.get(need.model)
            options.append([g.items] if g is not None else [])
        if need.site is not None:
            g = idx.by_site.get(need.site)
            options.append([g.items] if g is not None else [])
        if need.gpu:
            options.append([idx.gpu.items])
        if need.device_types is not None:
            by_type = idx.by_type
            options.append([by_type[t].items for t in need.device_types if t in by_type])
        for lists in options:
            total = sum(len(x) for x in lists)
            if total < best.total:
                best = _Source(lists, None)
        return best

    def _buckets_for(self, need: TaskNeed) -> _Source:
        cfg = self.cfg
        floor = -1.0  # requires charging: no unplugged band at all
        if not need.requires_charging:
            floor = cfg.battery_floor_percent
            if need.long and cfg.long_task_min_battery_percent > floor:
                floor = cfg.long_task_min_battery_percent
            if need.min_battery is not None and need.min_battery > floor:
                floor = need.min_battery
        cls = capacity_class(need.cpu, need.mem)
        # Devices with only queue places left serve short tasks alone; a longer task never
        # samples them.
        short = need.duration <= cfg.queue_task_max_s
        key = (floor, need.critical, cls, short)
        src = self.sources.get(key)
        if src is None:
            bands = {BAND_MAINS, BAND_CHARGING}
            if floor >= 0:
                bands.update(battery_bands_from(floor))
            if need.critical:
                bands.add(BAND_CRITICAL_MODE)
            eligible = [
                (k, g.items)
                for k, g in self.index.buckets.items()
                if k[1] >= cls and k[0] in bands and (short or not k[2])
            ]
            src = _Source([items for _, items in eligible], frozenset(k for k, _ in eligible))
            self.sources[key] = src
        return src

    def _scan(
        self,
        nodes: Iterable[NodeView],
        need: TaskNeed,
        filters: _Checks,
        d: _Decision,
        *,
        full: bool,
    ) -> None:
        d.full_scan = d.full_scan or full
        res = self.res
        keep = self.cfg.explain_rejected
        for node in nodes:
            d.evaluated += 1
            verdict = PASS
            for check in filters:
                verdict = check(node, need, res)
                if verdict is not PASS:
                    break
            if verdict is PASS:
                self._consider(node, need, d)
            elif full or len(d.rejected) < 4 * keep + 8:
                d.rejected.append((node, verdict))

    def _sample(self, src: _Source, k: int, need: TaskNeed, filters: _Checks, d: _Decision) -> None:
        # The innermost loop of a placement: ``_consider`` and ``Pipeline.node_part`` are
        # written out here (same arithmetic, same order), as a call per probe costs more than
        # the probe's own work.
        res = self.res
        rand = self.rng.random
        lists, ends, total, keys = src.lists, src.ends, src.total, src.keys
        last = len(ends) - 1
        moved = self.moved
        seen: set[str] = set()
        seen_add = seen.add
        found = 0
        rejected = d.rejected
        feasible = d.feasible
        static = self.p._static
        node_part = self.p.node_part
        constant = self.task_constant
        scorers = self.task_scorers
        inv_wsum = self.inv_wsum
        best = d.best
        best_score = d.best_score
        for _ in range(self.cfg.max_probes):
            r = int(rand() * total)
            if last:
                i = bisect_right(ends, r)
                if i > last:  # float rounding at the very top of the range
                    i, r = last, ends[last] - 1
                node = lists[i][r - ends[i - 1] if i else r]
            else:
                node = lists[0][r if r < total else total - 1]
            did = node.device_id
            if did in seen:
                continue
            seen_add(did)
            if did in moved:  # filled up earlier in this plan
                now_in = moved[did]
                if now_in is None or (keys is not None and now_in not in keys):
                    continue
            verdict = PASS
            for check in filters:
                verdict = check(node, need, res)
                if verdict is not PASS:
                    break
            if verdict is not PASS:
                rejected.append((node, verdict))
                continue
            cached = static.get(did)
            total_score = (
                cached[1]
                if cached is not None and cached[0] is node
                else node_part(node, need, res)
            )
            total_score += constant
            for score, weight, scorer in scorers:
                x = score(node, need, res)
                if not 0.0 <= x <= 1.0:
                    raise _out_of_range(scorer, x, node, need)
                total_score += weight * x
            sc = total_score * inv_wsum
            feasible.append((sc, node))
            if best is None or sc > best_score or (sc == best_score and did < best.device_id):
                best, best_score = node, sc
            found += 1
            if found >= k:
                break
        d.best, d.best_score = best, best_score
        d.evaluated += len(seen)

    def _consider(self, node: NodeView, need: TaskNeed, d: _Decision) -> None:
        res = self.res
        total = self.p.node_part(node, need, res) + self.task_constant
        for score, weight, scorer in self.task_scorers:
            x = score(node, need, res)
            if not 0.0 <= x <= 1.0:
                raise _out_of_range(scorer, x, node, need)
            total += weight * x
        sc = total * self.inv_wsum
        d.feasible.append((sc, node))
        best = d.best
        if (
            best is None
            or sc > d.best_score
            or (sc == d.best_score and node.device_id < best.device_id)
        ):
            d.best, d.best_score = node, sc

    # -- outcomes -----------------------------------------------------------------------------

    def _commit(
        self, node: NodeView, need: TaskNeed, ep: float, d: _Decision, preempts: tuple[str, ...]
    ) -> None:
        cfg = self.cfg
        breakdown = self.p.breakdown(node, need, self.res)
        runners: list[Candidate] = []
        if cfg.explain_runners_up:
            want = cfg.explain_runners_up + 1
            feasible = d.feasible
            # Device ids in ``feasible`` are distinct, so the ranking has no ties and the two
            # give the same list; a sort of a sample's few candidates is the cheaper one.
            others = (
                sorted(feasible, key=_rank)[:want]
                if len(feasible) <= 64
                else heapq.nsmallest(want, feasible, key=_rank)
            )
            runners = [Candidate(n.device_id, s) for s, n in others if n is not node]
            runners = runners[: cfg.explain_runners_up]
        self.res.add(node.device_id, need.cpu, need.mem, 1)
        if node.battery_wh:
            wh = task_wh(node, need)
            if wh:
                self.res.wh[node.device_id] = self.res.wh.get(node.device_id, 0.0) + wh
        self._reindex(node)
        self.placements.append(
            Placement(
                task_id=need.task_id,
                device_id=node.device_id,
                priority=need.priority,
                cpu_cores=need.cpu,
                memory_mb=need.mem,
                effective_priority=ep,
                score=sum(part.weight * part.value for part in breakdown) * self.p.inv_weight_sum,
                breakdown=breakdown,
                runners_up=tuple(runners),
                rejected=_closest(d.rejected, cfg.explain_rejected),
                preempts=preempts,
                evaluated=d.evaluated,
                full_scan=d.full_scan,
                duration_s=need.duration,
            )
        )

    def _reindex(self, node: NodeView) -> None:
        cpu, mem, n = self.res.used(node)
        did = node.device_id
        before = self.moved[did] if did in self.moved else self.index.key_of.get(did)
        after = self.moved[did] = bucket_key(node, cpu, mem, n)
        if before is not None and after is None:
            self.room -= 1
        had_slot = self.slotted[did] if did in self.slotted else has_free_slot(node)
        has_slot = self.slotted[did] = after is not None and n < node.slot_cap
        if had_slot and not has_slot:
            self.slot_room -= 1

    def no_room_for(self, short: bool) -> bool:
        return (self.room if short else self.slot_room) <= 0

    def no_room(self, task: Task, ep: float, short: bool) -> None:
        """Unplaced because no device has room left this round for this kind of task."""
        first = self.full[short]
        self.cached_failures += 1
        self.unplaced.append(
            Unplaced(
                task.id,
                ep,
                f"no device has room left this round, as for {first.task_id}: {first.summary}",
                first.counts,
                first.rejected,
            )
        )

    def _give_up(
        self,
        need: TaskNeed,
        ep: float,
        filters: _Checks,
        d: _Decision,
        shape: tuple[object, ...],
    ) -> None:
        counts: dict[tuple[VerdictKind, str], int] = {}
        examples: dict[tuple[VerdictKind, str], str] = {}
        for _, v in d.rejected:
            key = (v.kind, v.code)
            if key in counts:
                counts[key] += 1
            else:
                counts[key] = 1
                examples[key] = v.text
        rows = summarise(counts, examples)
        summary = summary_text(rows)
        if need.critical and self.cfg.preemption:
            summary += "; no preemptible work would make room"
        entry = Unplaced(
            need.task_id,
            ep,
            summary,
            rows,
            _closest(d.rejected, self.cfg.explain_rejected),
            d.evaluated,
        )
        self.unplaced.append(entry)
        self.failures.setdefault(shape, []).append((need.cpu, need.mem, entry))

    # -- preemption ---------------------------------------------------------------------------

    def _preempt(self, need: TaskNeed, ep: float, filters: _Checks, d: _Decision) -> bool:
        """Evict the least (fewest, lowest-priority, youngest) preemptible work from one device.

        Only devices rejected for being busy are candidates, and every filter is re-run with the
        victims' reservations removed, so preemption never bypasses a hard rule.
        """
        cfg = self.cfg
        res = self.res
        limit = cfg.preemptible_max_priority
        best: tuple[tuple[int, int, float, str], NodeView, list[str]] | None = None
        for node, verdict in d.rejected:
            if verdict.code not in _BUSY_CODES:
                continue
            victims = [
                t
                for t in node.running
                if t.priority <= limit and t.task_id not in self.preempted_ids
            ]
            if not victims:
                continue
            victims.sort(key=lambda t: (t.priority, -t.started_at, t.task_id))
            chosen: list[RunningTask] = []
            did = node.device_id
            gone = {t.task_id for t in node.running if t.task_id in self.preempted_ids}
            before = _peak_without(node, gone)
            freed: tuple[float, float, int] = (0.0, 0.0, 0)
            for t in victims:
                chosen.append(t)
                freed = _free(res, did, node, gone, chosen, before, freed)
                if _passes(filters, node, need, res):
                    break
            else:
                _free(res, did, node, gone, [], before, freed)
                continue
            # Put back any early victim the task does not actually need gone.
            for t in list(reversed(chosen[:-1])):
                keep = [c for c in chosen if c is not t]
                trial = _free(res, did, node, gone, keep, before, freed)
                if _passes(filters, node, need, res):
                    chosen, freed = keep, trial
                else:
                    _free(res, did, node, gone, chosen, before, trial)
            sc = self.p.score(node, need, res)
            _free(res, did, node, gone, [], before, freed)
            cost = (len(chosen), sum(int(t.priority) for t in chosen), -sc, did)
            if best is None or cost < best[0]:
                best = (cost, node, [t.task_id for t in chosen])
        if best is None:
            return False

        _, node, ids = best
        by_id = {t.task_id: t for t in node.running}
        gone = {t.task_id for t in node.running if t.task_id in self.preempted_ids}
        _free(res, node.device_id, node, gone, [by_id[i] for i in ids], _peak_without(node, gone))
        for tid in ids:
            t = by_id[tid]
            self.preempted_ids.add(tid)
            self.preempted.append(
                Preemption(
                    task_id=tid,
                    device_id=node.device_id,
                    priority=t.priority,
                    by_task_id=need.task_id,
                    reason=f"preempted (priority {int(t.priority)}) for CRITICAL task "
                    f"{need.task_id}; requeue it",
                )
            )
        # Freed capacity may now fit tasks that failed earlier in this call.
        self.failures.clear()
        d.feasible = [(self.p.score(node, need, res), node)]
        self._commit(node, need, ep, d, tuple(ids))
        return True


def _peak_without(node: NodeView, gone: set[str]) -> tuple[float, float]:
    """The device's peak CPU and memory from its leases, ``gone`` left out: the ``slot_cap``
    largest of each, as the snapshot counts them (``NodeView.cpu_used``)."""
    kept = [t for t in node.running if t.task_id not in gone]
    k = node.slot_cap
    cpus = sorted(t.cpu_cores for t in kept)
    mems = sorted(t.memory_mb for t in kept)
    if 0 < k < len(kept):
        cpus, mems = cpus[-k:], mems[-k:]
    return math.fsum(cpus), float(sum(mems))


def _free(
    res: Reservations,
    did: str,
    node: NodeView,
    gone: set[str],
    victims: list[RunningTask],
    before: tuple[float, float],
    freed: tuple[float, float, int] = (0.0, 0.0, 0),
) -> tuple[float, float, int]:
    """Set the reservations to ``victims`` evicted (on top of ``gone``), given that ``freed``
    is evicted now; returns what the victims free.

    A lease outside the device's ``slot_cap`` largest frees nothing of its peak, so the freed
    amount is the difference of two peaks, never the victims' own sum.
    """
    if victims:
        cpu, mem = _peak_without(node, gone | {t.task_id for t in victims})
        now = (before[0] - cpu, before[1] - mem, len(victims))
    else:
        now = (0.0, 0.0, 0)
    res.adjust(did, freed[0] - now[0], freed[1] - now[1], freed[2] - now[2])
    return now


def _rank(candidate: tuple[float, NodeView]) -> tuple[float, str]:
    """Best score first, then the smaller device id."""
    return -candidate[0], candidate[1].device_id


def _passes(checks: _Checks, node: NodeView, need: TaskNeed, res: Reservations) -> bool:
    return all(check(node, need, res) is PASS for check in checks)


def _closest(rejected: list[tuple[NodeView, Verdict]], n: int) -> tuple[Rejection, ...]:
    """The rejected devices nearest to passing: ``not_now`` before ``never``, in order seen."""
    if n <= 0 or not rejected:
        return ()
    out: list[Rejection] = []
    for want in (VerdictKind.NOT_NOW, VerdictKind.NEVER):
        for node, v in rejected:
            if v.kind is want:
                out.append(Rejection(node.device_id, v.kind, v.code, v.text))
                if len(out) == n:
                    return tuple(out)
    return tuple(out)


@lru_cache(maxsize=16)
def _pipeline_for(config: SchedulerConfig) -> Pipeline:
    return Pipeline(config)


def place(
    snapshot: ClusterSnapshot,
    pending: Sequence[Task],
    now: float,
    *,
    config: SchedulerConfig = DEFAULT_CONFIG,
    rng_seed: int = 0,
) -> Plan:
    """Decide where each pending task goes. Pure: reads ``snapshot``, never changes it."""
    return _pipeline_for(config).place(snapshot, pending, now, rng_seed=rng_seed)
