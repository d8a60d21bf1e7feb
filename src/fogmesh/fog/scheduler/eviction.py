"""Node-pressure eviction: which leased work must stop because its device can no longer host it.

kubelet evicts pods when a node runs short of memory or disk; a battery device runs short of
charge. Placement already keeps new work off batteries it would drain below the floor
(``BatteryDrainFilter``), but a device can still end up on battery with work running — it was
charging when the work was placed and its owner unplugged it. ``battery_evictions`` names the
work to stop and requeue once such a battery has fallen to ``floor + battery_evict_margin_percent``,
so fog work itself never takes it below the floor. Pure: the caller (coordinator or simulator)
requeues the tasks and tells the device.
"""

from __future__ import annotations

from fogmesh.fog.scheduler.config import DEFAULT_CONFIG, SchedulerConfig
from fogmesh.fog.scheduler.snapshot import NodeView, PowerSource

__all__ = ["battery_evictions"]


def battery_evictions(
    node: NodeView, config: SchedulerConfig = DEFAULT_CONFIG
) -> tuple[tuple[str, str], ...]:
    """``(task_id, reason)`` for every task leased to ``node`` that must stop now; usually none.

    All of the device's work goes at once: any task left running would keep draining the
    battery, and CRITICAL work is no exception (the floor filter admits none of it either).
    """
    if not node.running or node.power is not PowerSource.BATTERY:
        return ()
    pct = node.battery_percent
    limit = config.battery_floor_percent + config.battery_evict_margin_percent
    # A reading within float noise of the limit is at it: a simulator that refreshes the view
    # exactly at the limit must not miss it by 1e-12 and let the battery reach the floor.
    if pct is None or pct > limit + 1e-6:
        return ()
    reason = (
        f"battery {pct:.3g}% on battery power ≤ floor {config.battery_floor_percent:g}% + "
        f"{config.battery_evict_margin_percent:g}%: stopped and requeued to keep the floor"
    )
    return tuple((t.task_id, reason) for t in node.running)
