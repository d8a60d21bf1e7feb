"""Fog clusters: small local groups of devices, each with one elected head. Pure.

``form(members, config, previous)`` returns a ``Clustering``; pass the previous one back in and
only what the change requires moves:

* **Locality.** Devices are grouped by site label; within a site, by network (members are kept
  in (network, id) order, so a split or a chunk keeps a network together). Different sites mix
  only when a site has too few devices for a cluster of its own: such a device joins a
  neighbour as a *guest* and goes home once its site can hold it.
* **Size.** Clusters aim at ``target_size`` (the seed's 5) and stay within
  [``min_size``, ``max_size``] (2 and 7 by default). A join fills a same-site cluster below the
  target (preferring one with more members on the joiner's network); when none has room the
  joiner goes to the best same-site cluster, and a cluster that passes ``max_size`` splits in
  two. A cluster that falls below ``min_size`` merges into a neighbour; two same-site clusters
  that fit in one target-sized cluster merge. Never one giant cluster.
* **Movement.** Nobody moves except: joiners, guests going home, members of a cluster that
  split (one half), merged, or consolidated.
* **Heads.** ``elect`` keeps a head while it is a present member, and otherwise picks the most
  stable member — mains > charging > battery level, then thermal headroom, uptime, and the
  smallest id — with ``term + 1``. A term has exactly one head.

The original crashed with a TypeError at the 5th device and would have put everyone in one
cluster; tests join devices one by one to 50 and check the sizes stay near 5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from fogmesh.errors import ConfigError, InvalidRequest
from fogmesh.fog.scheduler.snapshot import NodeView, PowerSource

__all__ = [
    "DEFAULT_CLUSTER_CONFIG",
    "Cluster",
    "ClusterConfig",
    "ClusterMember",
    "Clustering",
    "elect",
    "form",
    "stability_key",
]


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """What clustering and election need to know about one device."""

    device_id: str
    site: str | None = None
    network: str | None = None  # subnet or network label
    power: PowerSource = PowerSource.MAINS
    battery_percent: float | None = None
    cpu_temp_c: float | None = None
    uptime_s: float = 0.0

    @classmethod
    def from_node(cls, node: NodeView, *, uptime_s: float = 0.0) -> ClusterMember:
        return cls(
            node.device_id,
            site=node.site,
            network=node.network,
            power=node.power,
            battery_percent=node.battery_percent,
            cpu_temp_c=node.cpu_temp_c,
            uptime_s=uptime_s,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    target_size: int = 5
    min_size: int = 2
    max_size: int | None = None  # None: target + target // 2
    thermal_ceiling_c: float = 65.0
    unknown_temp_c: float = 40.0  # a device without a sensor counts as this warm

    def __post_init__(self) -> None:
        for name in ("target_size", "min_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be an integer ≥ 1, not {value!r}", field=name)
        if self.min_size > self.target_size:
            raise ConfigError("must be ≤ target_size", field="min_size")
        top = self.max_size
        if top is None:
            top = self.target_size + self.target_size // 2
        if isinstance(top, bool) or not isinstance(top, int) or top < self.target_size:
            raise ConfigError(f"must be an integer ≥ target_size, not {top!r}", field="max_size")
        if top + 1 < 2 * self.min_size:
            # A cluster one past the maximum must split into two halves of at least min_size.
            raise ConfigError("must be ≥ 2 × min_size − 1", field="max_size")
        object.__setattr__(self, "max_size", top)

    @property
    def upper(self) -> int:
        assert self.max_size is not None  # set in __post_init__
        return self.max_size


DEFAULT_CLUSTER_CONFIG: Final = ClusterConfig()


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    site: str | None
    members: tuple[str, ...]  # sorted
    head: str | None = None
    term: int = 0  # incremented on every change of head; one head per term


@dataclass(frozen=True, slots=True)
class Clustering:
    clusters: tuple[Cluster, ...] = ()  # sorted by id
    next_seq: int = 1
    _where: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _by_id: dict[str, Cluster] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = {d: c.id for c in self.clusters for d in c.members}
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_by_id", {c.id: c for c in self.clusters})

    def cluster_of(self, device_id: str) -> Cluster | None:
        cid = self._where.get(device_id)
        return self._by_id.get(cid) if cid is not None else None

    def get(self, cluster_id: str) -> Cluster | None:
        return self._by_id.get(cluster_id)

    def assignment(self) -> dict[str, str]:
        """device id → cluster id."""
        return dict(self._where)

    def heads(self) -> dict[str, str | None]:
        return {c.id: c.head for c in self.clusters}


def stability_key(
    m: ClusterMember, config: ClusterConfig = DEFAULT_CLUSTER_CONFIG
) -> tuple[float, float, float, float, str]:
    """Smaller is more stable: mains > charging > battery level, headroom, uptime, then id."""
    battery = 100.0 if m.power is PowerSource.MAINS else (m.battery_percent or 0.0)
    temp = config.unknown_temp_c if m.cpu_temp_c is None else m.cpu_temp_c
    headroom = config.thermal_ceiling_c - temp
    return (-float(m.power), -battery, -headroom, -m.uptime_s, m.device_id)


def elect(
    cluster: Cluster,
    members: Mapping[str, ClusterMember],
    config: ClusterConfig = DEFAULT_CLUSTER_CONFIG,
    *,
    unavailable: Iterable[str] = (),
) -> Cluster:
    """Keep the head while it is a present, available member; otherwise elect with term + 1.

    ``members`` is every known device; ``unavailable`` names devices that are lost (missed
    heartbeats) but not yet removed. A head is never replaced for being merely less stable than
    another member: flapping heads cost more than a slightly worse one.
    """
    gone = set(unavailable)
    head = cluster.head
    if head is not None and head in members and head not in gone and head in cluster.members:
        return cluster
    candidates = [members[d] for d in cluster.members if d in members and d not in gone]
    if not candidates:
        if head is None:
            return cluster
        return replace(cluster, head=None, term=cluster.term + 1)
    best = min(candidates, key=lambda m: stability_key(m, config))
    return replace(cluster, head=best.device_id, term=cluster.term + 1)


class _Work:
    """A cluster being edited."""

    __slots__ = ("head", "id", "members", "site", "term")

    def __init__(self, cid: str, site: str | None, head: str | None = None, term: int = 0) -> None:
        self.id = cid
        self.site = site
        self.members: set[str] = set()
        self.head = head
        self.term = term


def _site_key(site: str | None) -> tuple[bool, str]:
    return (site is not None, site or "")


class _Former:
    def __init__(
        self, members: Mapping[str, ClusterMember], config: ClusterConfig, seq: int
    ) -> None:
        self.m = members
        self.cfg = config
        self.seq = seq
        self.work: dict[str, _Work] = {}

    def new_cluster(self, site: str | None) -> _Work:
        w = _Work(f"c{self.seq}", site)
        self.seq += 1
        self.work[w.id] = w
        return w

    def order(self, ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=lambda d: (self.m[d].network or "", d))

    def at_site(self, site: str | None) -> list[_Work]:
        return sorted((w for w in self.work.values() if w.site == site), key=lambda w: w.id)

    def affinity(self, w: _Work, device_id: str) -> int:
        net = self.m[device_id].network
        return sum(1 for d in w.members if self.m[d].network == net) if net is not None else 0

    def best_home(self, clusters: list[_Work], device_id: str, room_only: bool) -> _Work | None:
        target = self.cfg.target_size
        pool = [w for w in clusters if len(w.members) < target] if room_only else clusters
        if not pool:
            return None
        return min(pool, key=lambda w: (-self.affinity(w, device_id), len(w.members), w.id))

    def neighbour(self, device_id: str, exclude: str | None = None) -> _Work | None:
        pool = [w for w in self.work.values() if w.id != exclude and w.members]
        if not pool:
            return None
        return min(pool, key=lambda w: (-self.affinity(w, device_id), len(w.members), w.id))

    def chunk(self, ids: list[str], site: str | None) -> None:
        cfg = self.cfg
        n = len(ids)
        count = max(1, round(n / cfg.target_size), math.ceil(n / cfg.upper))
        count = min(count, max(1, n // cfg.min_size))
        ordered = self.order(ids)
        for i in range(count):
            w = self.new_cluster(site)
            w.members.update(ordered[i * n // count : (i + 1) * n // count])

    def merge(self, small: _Work, into: _Work) -> None:
        into.members |= small.members
        small.members.clear()
        del self.work[small.id]

    def split(self, w: _Work) -> None:
        cfg = self.cfg
        n = len(w.members)
        count = max(2, round(n / cfg.target_size), math.ceil(n / cfg.upper))
        ordered = self.order(w.members)
        parts = [ordered[i * n // count : (i + 1) * n // count] for i in range(count)]
        # The part holding the head keeps the cluster's id, so its head and term survive.
        keep = next((i for i, p in enumerate(parts) if w.head in p), 0)
        w.members = set(parts[keep])
        for i, part in enumerate(parts):
            if i != keep:
                self.new_cluster(w.site).members.update(part)


def form(
    members: Iterable[ClusterMember],
    config: ClusterConfig = DEFAULT_CLUSTER_CONFIG,
    previous: Clustering | None = None,
) -> Clustering:
    """Cluster ``members`` (all current devices), moving as few as possible from ``previous``."""
    by_id: dict[str, ClusterMember] = {}
    for m in members:
        if not m.device_id:
            raise InvalidRequest("a cluster member needs a device id")
        if m.device_id in by_id:
            raise InvalidRequest(f"device {m.device_id} listed twice")
        by_id[m.device_id] = m
    f = _Former(by_id, config, previous.next_seq if previous is not None else 1)

    # 1. Keep previous clusters, minus the devices that left.
    placed: set[str] = set()
    if previous is not None:
        for c in previous.clusters:
            w = _Work(c.id, c.site, c.head, c.term)
            w.members = {d for d in c.members if d in by_id and d not in placed}
            placed |= w.members
            f.work[w.id] = w
    joiners = [d for d in by_id if d not in placed]

    # 2. Per site: joiners plus guests (devices living in another site's cluster).
    by_site: dict[str | None, list[str]] = {}
    for d in joiners:
        by_site.setdefault(by_id[d].site, []).append(d)
    guests: dict[str | None, list[tuple[_Work, str]]] = {}
    for w in f.work.values():
        for d in w.members:
            if by_id[d].site != w.site:
                guests.setdefault(by_id[d].site, []).append((w, d))
    leftovers: list[str] = []
    for site in sorted(set(by_site) | set(guests), key=_site_key):
        pool = f.order(by_site.get(site, []))
        homes = f.at_site(site)
        away = sorted(guests.get(site, []), key=lambda g: g[1])
        if homes or len(pool) + len(away) >= config.min_size:
            for w, d in away:  # guests go home
                w.members.discard(d)
            pool = f.order([*pool, *(d for _, d in away)])
        if not pool:
            continue
        rest: list[str] = []
        for d in pool:
            home = f.best_home(homes, d, room_only=True)
            if home is None:
                rest.append(d)
            else:
                home.members.add(d)
        if len(rest) >= config.min_size:
            f.chunk(rest, site)
        elif homes:
            for d in rest:
                home = f.best_home(homes, d, room_only=False)
                assert home is not None
                home.members.add(d)
        else:
            leftovers += rest

    # 3. Devices whose site cannot hold a cluster yet join a neighbour as guests.
    if leftovers:
        if not any(w.members for w in f.work.values()):
            f.chunk(leftovers, by_id[sorted(leftovers)[0]].site)
        else:
            for d in sorted(leftovers):
                host = f.neighbour(d)
                assert host is not None
                host.members.add(d)

    # 4. Below min_size: merge into a neighbour (same site first, where the result fits).
    for w in sorted(f.work.values(), key=lambda w: (len(w.members), w.id)):
        if w.id not in f.work or len(w.members) >= config.min_size:
            continue
        if not w.members:
            del f.work[w.id]
            continue
        same = [o for o in f.at_site(w.site) if o.id != w.id and o.members]
        fits = [o for o in same if len(o.members) + len(w.members) <= config.upper]
        target = min(fits or same, key=lambda o: (len(o.members), o.id), default=None)
        if target is None:
            target = f.neighbour(sorted(w.members)[0], exclude=w.id)
        if target is not None:
            f.merge(w, target)

    # 5. Two same-site clusters that fit in one target-sized cluster become one.
    for site in sorted({w.site for w in f.work.values()}, key=_site_key):
        while True:
            group = sorted(f.at_site(site), key=lambda w: (len(w.members), w.id))
            if len(group) < 2 or len(group[0].members) + len(group[1].members) > config.target_size:
                break
            f.merge(group[0], group[1])

    # 6. Above max_size: split, keeping networks together.
    for w in sorted(f.work.values(), key=lambda w: w.id):
        if len(w.members) > config.upper:
            f.split(w)

    clusters = []
    for w in sorted(f.work.values(), key=lambda w: (len(w.id), w.id)):
        if not w.members:
            continue
        c = Cluster(w.id, w.site, tuple(sorted(w.members)), w.head, w.term)
        clusters.append(elect(c, by_id, config))
    return Clustering(tuple(clusters), f.seq)
