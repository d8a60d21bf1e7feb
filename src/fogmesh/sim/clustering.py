"""Cluster logic under the simulated clock: the real ``fog.clusters.form`` on churn.

The coordinator re-forms clusters in the round after membership changed (a device joined, was
lost or came back). The simulator folds churn the same way but at most once per
``interval_s`` of simulated time (15 min by default): at 10,000 devices churn happens every few
seconds, and re-forming per 30-s round would cost more than the rest of the run while moving
the same devices. Each re-formation reports how many clusters there are and how many heads
changed (a head change is a cluster whose elected head is not the one it had before — the
metric the issue asks for: churn the fog's control plane has to absorb).
"""

from __future__ import annotations

from dataclasses import dataclass

from fogmesh.fog.clusters import DEFAULT_CLUSTER_CONFIG, Clustering, ClusterMember, form
from fogmesh.fog.scheduler import PowerSource
from fogmesh.sim.fleet import SimDevice

__all__ = ["ClusterDriver", "ClusterStats"]


@dataclass(slots=True)
class ClusterStats:
    reforms: int = 0
    head_changes: int = 0
    clusters: int = 0
    max_clusters: int = 0


class ClusterDriver:
    """Holds the previous ``Clustering`` so each ``form`` moves only what churn requires."""

    def __init__(self) -> None:
        self.clustering = Clustering()
        self.stats = ClusterStats()
        self.dirty = True
        self._online_since: dict[int, float] = {}

    def seen(self, dev: SimDevice, now: float) -> None:
        """Note the device's reachability; a change (joined, lost, back) dirties the clusters."""
        known = dev.idx in self._online_since
        if dev.available and not known:
            self._online_since[dev.idx] = now
            self.dirty = True
        elif known and not dev.available:
            del self._online_since[dev.idx]
            self.dirty = True

    def reform(self, fleet: list[SimDevice], now: float) -> None:
        if not self.dirty:
            return
        self.dirty = False
        since = self._online_since
        members = [_member(d, now - since.get(d.idx, now)) for d in fleet if d.available]
        before = {c.id: c.head for c in self.clustering.clusters}
        self.clustering = form(members, DEFAULT_CLUSTER_CONFIG, self.clustering)
        s = self.stats
        s.reforms += 1
        s.head_changes += sum(
            1 for c in self.clustering.clusters if c.id in before and before[c.id] != c.head
        )
        s.clusters = len(self.clustering.clusters)
        s.max_clusters = max(s.max_clusters, s.clusters)


def _member(dev: SimDevice, uptime_s: float) -> ClusterMember:
    if not dev.has_battery:
        power = PowerSource.MAINS
    elif dev.plugged:
        power = PowerSource.CHARGING
    else:
        power = PowerSource.BATTERY
    return ClusterMember(
        dev.device_id,
        network=dev.network_type.value,
        power=power,
        battery_percent=100.0 * dev.view_soc if dev.has_battery else None,
        cpu_temp_c=dev.view_temp,
        uptime_s=uptime_s,
    )
