"""Hard rules: may this device take this task at all (``never``), or right now (``not_now``)?

Order matters only for speed and for which reason a rejected device reports: the ``never``
rules run first (a device without a GPU says "no GPU", not "busy"), then the cheap and often
failing ones. Every filter answers one question and gives one reason code:

========================  =========  ========================================================
filter                    kind       rule
========================  =========  ========================================================
DeviceTypeFilter          never      device type in the task's allowed types
SiteFilter                never      device site equals the task's site
GpuFilter                 never      a GPU task needs a device with a GPU
ModelFilter               never      a task requiring a model needs it deployed on the device
PayloadFilter             never      the device's agent accepts the payload (python module in
                                     its allow-list, commands enabled, model runtime present)
RefusedFilter             never      not back to a device that refused this task's payload
                          not_now    nor to one that refused it "not now" (policy, busy) until
                                     that device has reported a newer reading
HardwareFilter            never      cores ≤ the device's cores, MB ≤ its RAM
PowerModeFilter           not_now    critical power mode admits only CRITICAL work
ConcurrencyFilter         not_now    tasks < min(policy max_concurrent_tasks, fleet cap);
                                     a short task may also take a queue place at the agent
CpuFilter                 not_now    cores ≤ policy share (cores × cpu_limit_percent) + ½
                                     and ≤ what is free after reservations
MemoryFilter              not_now    MB ≤ policy budget (min(RAM, memory_limit_mb))
                                     and ≤ what is free after reservations
BatteryFloorFilter        not_now    unplugged battery ≥ floor (mains and charging pass)
BatteryDrainFilter        not_now    unplugged battery after this task's and the leased work's
                                     energy ≥ floor + reserve (capacity and W/core known)
ThermalFilter             not_now    temperature < ceiling and platform level < ceiling
LongTaskBatteryFilter     not_now    a long task on an unplugged battery needs a high charge
MinBatteryFilter          not_now    the task's own minimum charge (mains and charging pass)
ChargingFilter            not_now    task requires charging: unplugged battery fails
UnmeteredFilter           not_now    task requires an unmetered network
========================  =========  ========================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh.fog.scheduler.base import (
    PASS,
    Filter,
    Reservations,
    TaskNeed,
    Verdict,
    cpu_bound,
    mem_bound,
    never,
    not_now,
)
from fogmesh.fog.scheduler.snapshot import PowerSource
from fogmesh.fog.tasks import payload_refusal
from fogmesh.mobile.policy import PowerMode

if TYPE_CHECKING:
    from fogmesh.fog.scheduler.config import SchedulerConfig
    from fogmesh.fog.scheduler.snapshot import NodeView

__all__ = [
    "BatteryDrainFilter",
    "BatteryFloorFilter",
    "ChargingFilter",
    "ConcurrencyFilter",
    "CpuFilter",
    "DeviceTypeFilter",
    "GpuFilter",
    "HardwareFilter",
    "LongTaskBatteryFilter",
    "MemoryFilter",
    "MinBatteryFilter",
    "ModelFilter",
    "PayloadFilter",
    "PowerModeFilter",
    "RefusedFilter",
    "SiteFilter",
    "ThermalFilter",
    "UnmeteredFilter",
    "default_filters",
]

_BATTERY = PowerSource.BATTERY
_CRITICAL_MODE = PowerMode.CRITICAL
_EPS = 1e-9  # float sums of fractional cores must not reject an exact fit


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}%"


class DeviceTypeFilter(Filter):
    name = "device_type"

    def applies(self, need: TaskNeed) -> bool:
        return need.device_types is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        types = need.device_types
        if types is None or node.device_type in types:
            return PASS
        allowed = ", ".join(sorted(t.value for t in types))
        return never("device_type", f"device is a {node.device_type.value}; task allows {allowed}")


class SiteFilter(Filter):
    name = "site"

    def applies(self, need: TaskNeed) -> bool:
        return need.site is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if need.site is None or node.site == need.site:
            return PASS
        return never("site", f"device is at site {node.site!r}; task needs {need.site!r}")


class GpuFilter(Filter):
    name = "gpu"

    def applies(self, need: TaskNeed) -> bool:
        return need.gpu

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if not need.gpu or node.has_gpu:
            return PASS
        return never("requires_gpu", "task needs a GPU; device has none")


class ModelFilter(Filter):
    name = "model"

    def applies(self, need: TaskNeed) -> bool:
        return need.model is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if need.model is None or need.model in node.deployed_models:
            return PASS
        return never("requires_model", f"model {need.model!r} is not deployed on the device")


class PayloadFilter(Filter):
    """Only where the device's agent takes this kind of payload (``Accepts``, advertised in
    its profile). An agent that did not say what it accepts is given the task; if it refuses,
    ``RefusedFilter`` keeps the task away from it."""

    name = "payload"

    def applies(self, need: TaskNeed) -> bool:
        return need.payload_key is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        accepts = node.accepts
        if accepts is None:
            return PASS
        key = need.payload_key
        if key is not None:  # the common answers without building a reason
            kind = key[0]
            if kind == "python":
                if accepts.allows_module(key[1]):
                    return PASS
            elif accepts.commands if kind == "command" else accepts.models:
                return PASS
        refusal = payload_refusal(accepts, need.task.payload)
        return PASS if refusal is None else never(*refusal)


class RefusedFilter(Filter):
    """A device that refused this very task: never again if it does not take the payload
    (``not_accepted``); after a "not now" refusal (its own policy, busy, stopping) only once it
    has reported a reading newer than the refusal — the refusal was based on a reading the
    coordinator had not seen yet."""

    name = "refused"

    def applies(self, need: TaskNeed) -> bool:
        return need.not_accepted is not None or need.declined is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        did = node.device_id
        if need.not_accepted is not None and did in need.not_accepted:
            return never("refused", f"device refused this task: {need.not_accepted[did]}")
        if need.declined is not None and did in need.declined:
            when, why = need.declined[did]
            if node.seen_at <= when:
                return not_now(
                    "declined",
                    f"device refused this task at {when:.3f} ({why}); waiting for a newer "
                    "reading from it",
                )
        return PASS


class HardwareFilter(Filter):
    name = "hardware"

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if need.cpu > node.cpu_cores + _EPS:
            return never(
                "cpu_hardware", f"task needs {need.cpu:g} cores; device has {node.cpu_cores:g}"
            )
        if need.mem > node.memory_mb:
            return never(
                "memory_hardware", f"task needs {need.mem} MB; device has {node.memory_mb} MB"
            )
        return PASS


class PowerModeFilter(Filter):
    name = "power_mode"

    def applies(self, need: TaskNeed) -> bool:
        return not need.critical

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if node.power_mode is not _CRITICAL_MODE or need.critical:
            return PASS
        return not_now(
            "power_critical", "device is in critical power mode: only CRITICAL work is admitted"
        )


class ConcurrencyFilter(Filter):
    """Slots, plus queue places for short tasks.

    A device runs at most ``slot_cap`` tasks at once. A task expected to take at most
    ``queue_task_max_s`` may also be leased while the slots are full, up to ``queue_cap`` more:
    it waits in the agent's own queue and starts the moment a slot frees, with no round trip to
    the coordinator in between (Ray pipelines tasks to leased workers the same way). The agent
    re-checks its policy before starting a queued task.
    """

    name = "concurrency"

    def __init__(self, config: SchedulerConfig) -> None:
        self.fleet_cap = config.max_tasks_per_node
        self.queue_task_max_s = config.queue_task_max_s

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        cap = node.slot_cap
        if cap == 0:
            return not_now(
                "policy_no_work", "device policy admits no work (max_concurrent_tasks 0)"
            )
        fleet_cap = self.fleet_cap
        if fleet_cap is not None and fleet_cap < cap:
            cap = fleet_cap
        e = ctx.extra.get(node.device_id)
        running = node.n_running + int(e[2]) if e is not None else node.n_running
        if running < cap:
            return PASS
        if need.duration <= self.queue_task_max_s and running < cap + node.queue_cap:
            return PASS
        return not_now("slots_busy", f"device runs {running} of at most {cap} tasks")


class CpuFilter(Filter):
    name = "cpu"

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        want = need.cpu
        e = ctx.extra.get(node.device_id)
        used = cpu_bound(node, e) if e is not None else node.cpu_used
        # cpu_fit: the policy's cap rounded to the nearest whole core (snapshot.py)
        if want <= node.cpu_fit - used + _EPS:
            return PASS
        if want > node.cpu_fit + _EPS:
            return not_now(
                "cpu_policy",
                f"task needs {want:g} cores; device policy allows {node.cpu_cap:g} "
                f"of {node.cpu_cores:g}",
            )
        free = max(0.0, node.cpu_fit - used)
        return not_now(
            "cpu_busy",
            f"task needs {want:g} cores; {free:g} of {node.cpu_fit:g} free "
            f"(the policy's {node.cpu_cap:g} + {node.cpu_fit - node.cpu_cap:g} of packing)",
        )


class MemoryFilter(Filter):
    name = "memory"

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        want = need.mem
        e = ctx.extra.get(node.device_id)
        used = mem_bound(node, e) if e is not None else node.mem_used
        if want <= node.mem_cap - used:
            return PASS
        if want > node.mem_cap:
            return not_now(
                "memory_policy", f"task needs {want} MB; device policy allows {node.mem_cap} MB"
            )
        free = max(0.0, node.mem_cap - used)
        return not_now("memory_busy", f"task needs {want} MB; {free:g} of {node.mem_cap} MB free")


class BatteryFloorFilter(Filter):
    name = "battery_floor"

    def __init__(self, config: SchedulerConfig) -> None:
        self.floor = config.battery_floor_percent

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if node.power is not _BATTERY:
            return PASS
        pct = node.battery_percent
        if pct is None:
            return not_now("battery_unknown", "battery device with no battery reading")
        if pct >= self.floor:
            return PASS
        return not_now("battery_floor", f"battery {pct:g}% < floor {self.floor:g}%, not charging")


def task_wh(node: NodeView, need: TaskNeed) -> float:
    """Battery energy ``need`` would draw on ``node``: reference core-seconds × W per busy core
    ÷ the node's speed (a slower device runs longer at the same draw). 0 when unknown."""
    w = node.fog_w_per_core
    if not w or node.speed <= 0:
        return 0.0
    return need.cpu * need.duration * w / node.speed / 3600.0


class BatteryDrainFilter(Filter):
    """Would this task push an unplugged battery below the floor? The floor filter looks at the
    charge now; this one at the charge left once the task (and the work already leased to the
    device) has drawn its energy: a phone at 25 % passes the floor but not a 2 Wh task."""

    name = "battery_drain"

    def __init__(self, config: SchedulerConfig) -> None:
        self.floor = config.battery_floor_percent
        self.keep = config.battery_floor_percent + config.battery_reserve_percent

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if node.power is not _BATTERY:
            return PASS
        cap = node.battery_wh
        pct = node.battery_percent
        if not cap or pct is None:
            return PASS  # no capacity figure: only the floor filter can judge
        wh = task_wh(node, need)
        committed = node.fog_wh_committed + ctx.wh.get(node.device_id, 0.0)
        after = pct - 100.0 * (committed + wh) / cap
        if after >= self.keep:
            return PASS
        return not_now(
            "battery_drain",
            f"battery {pct:.3g}% − ({wh:.3g} Wh task + {committed:.3g} Wh leased) / "
            f"{cap:g} Wh = {after:.3g}% < floor {self.floor:g}% + reserve "
            f"{self.keep - self.floor:g}%",
        )


class ThermalFilter(Filter):
    name = "thermal"

    def __init__(self, config: SchedulerConfig) -> None:
        self.ceiling = config.thermal_ceiling_c
        self.level_ceiling = config.thermal_level_ceiling

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        temp = node.cpu_temp_c
        if temp is not None and temp >= self.ceiling:
            return not_now("thermal", f"{temp:g} °C ≥ ceiling {self.ceiling:g} °C")
        level = node.thermal_level
        if level is not None and level >= self.level_ceiling:
            return not_now(
                "thermal",
                f"platform thermal {level.name.lower()} ≥ ceiling "
                f"{self.level_ceiling.name.lower()}",
            )
        return PASS


class LongTaskBatteryFilter(Filter):
    name = "long_task_battery"

    def applies(self, need: TaskNeed) -> bool:
        return need.long

    def __init__(self, config: SchedulerConfig) -> None:
        self.min_pct = config.long_task_min_battery_percent
        self.long_s = config.long_task_s

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if not need.long or node.power is not _BATTERY:
            return PASS
        pct = node.battery_percent
        if pct is not None and pct >= self.min_pct:
            return PASS
        return not_now(
            "long_task_battery",
            f"{need.duration:g} s task (≥ {self.long_s:g} s) on an unplugged battery needs "
            f"≥ {self.min_pct:g}%; battery {_pct(pct)}",
        )


class MinBatteryFilter(Filter):
    name = "min_battery"

    def applies(self, need: TaskNeed) -> bool:
        return need.min_battery is not None

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        floor = need.min_battery
        if floor is None or node.power is not _BATTERY:
            return PASS
        pct = node.battery_percent
        if pct is not None and pct >= floor:
            return PASS
        return not_now("min_battery", f"task needs battery ≥ {floor:g}%; battery {_pct(pct)}")


class ChargingFilter(Filter):
    name = "charging"

    def applies(self, need: TaskNeed) -> bool:
        return need.requires_charging

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if not need.requires_charging or node.power is not _BATTERY:
            return PASS
        return not_now("requires_charging", "task needs a charging or mains-powered device")


class UnmeteredFilter(Filter):
    name = "unmetered"

    def applies(self, need: TaskNeed) -> bool:
        return need.requires_unmetered

    def check(self, node: NodeView, need: TaskNeed, ctx: Reservations) -> Verdict:
        if not need.requires_unmetered or not node.is_metered:
            return PASS
        kind = node.network_type.value if node.network_type is not None else "unknown"
        return not_now("metered", f"task needs an unmetered network; device is on metered {kind}")


def default_filters(config: SchedulerConfig) -> tuple[Filter, ...]:
    return (
        DeviceTypeFilter(),
        SiteFilter(),
        GpuFilter(),
        ModelFilter(),
        PayloadFilter(),
        HardwareFilter(),
        RefusedFilter(),  # never, or not_now: after the pure never rules
        PowerModeFilter(),
        ConcurrencyFilter(config),
        CpuFilter(),
        MemoryFilter(),
        BatteryFloorFilter(config),
        BatteryDrainFilter(config),
        ThermalFilter(config),
        LongTaskBatteryFilter(config),
        MinBatteryFilter(),
        ChargingFilter(),
        UnmeteredFilter(),
    )
