"""Fog clusters: sizes near 5 as devices join and leave, locality, minimal movement, election."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogmesh.errors import ConfigError, InvalidRequest
from fogmesh.fog.clusters import (
    Cluster,
    ClusterConfig,
    Clustering,
    ClusterMember,
    elect,
    form,
    stability_key,
)
from fogmesh.fog.scheduler import NodeView, PowerSource

B, C, M = PowerSource.BATTERY, PowerSource.CHARGING, PowerSource.MAINS


def member(i: int, site: str | None = "home", network: str | None = None) -> ClusterMember:
    return ClusterMember(f"d{i:03d}", site=site, network=network)


def sizes(c: Clustering) -> list[int]:
    return sorted(len(x.members) for x in c.clusters)


def moved(before: Clustering, after: Clustering) -> int:
    a, b = before.assignment(), after.assignment()
    return sum(1 for d, cid in a.items() if d in b and b[d] != cid)


def check_shape(c: Clustering, members: list[ClusterMember], cfg: ClusterConfig) -> None:
    seen = [d for x in c.clusters for d in x.members]
    assert sorted(seen) == sorted(m.device_id for m in members)  # each device exactly once
    if len(members) >= cfg.min_size:
        assert all(cfg.min_size <= len(x.members) <= cfg.upper for x in c.clusters), sizes(c)
    for x in c.clusters:
        assert x.head in x.members and x.term >= 1


def test_5th_6th_to_50th_join_keeps_clusters_near_5() -> None:
    """The original raised TypeError at the 5th device and would have made one cluster."""
    cfg = ClusterConfig()
    members: list[ClusterMember] = []
    clustering = Clustering()
    for i in range(50):
        members.append(member(i))
        after = form(members, cfg, clustering)
        check_shape(after, members, cfg)
        n = len(members)
        if n >= 5:
            # ⌈n / 7⌉ ≤ clusters ≤ ⌊n / 2⌋, and on average close to 5 per cluster
            assert -(-n // 7) <= len(after.clusters) <= n // 2
            assert 4 <= n / len(after.clusters) <= 7
        # a join moves nobody, unless a cluster splits (then at most half of 8)
        assert moved(clustering, after) <= 4
        clustering = after
    assert len(clustering.clusters) >= 7  # 50 devices: never one giant cluster


def test_a_cluster_of_five_then_a_split_at_eight() -> None:
    members = [member(i) for i in range(8)]
    # 7 fit in one (max 7); the 8th splits it into 4 + 4
    c7 = form(members[:7])
    assert sizes(c7) == [7]
    c8 = form(members, previous=c7)
    assert sizes(c8) == [4, 4]
    head = c7.clusters[0].head
    # the half holding the head keeps the cluster id, head and term
    kept = c8.cluster_of(head)  # type: ignore[arg-type]
    assert kept is not None and kept.id == c7.clusters[0].id and kept.term == 1


def test_fresh_formation_of_many_devices() -> None:
    members = [member(i, network=f"net{i % 3}") for i in range(103)]
    c = form(members)
    check_shape(c, members, ClusterConfig())
    # round(103 / 5) = 21 clusters of 4–5
    assert len(c.clusters) == 21 and set(sizes(c)) <= {4, 5}


def test_sites_are_not_mixed_and_networks_stay_together() -> None:
    members = [member(i, site="home", network="wifi") for i in range(4)]
    members += [member(10 + i, site="office", network=f"vlan{i % 2}") for i in range(10)]
    c = form(members)
    for x in c.clusters:
        assert len({m.site for m in members if m.device_id in x.members}) == 1
    office = [x for x in c.clusters if x.site == "office"]
    # 10 office devices in (vlan, id) order → two clusters of 5, one per vlan
    nets = [{m.network for m in members if m.device_id in x.members} for x in office]
    assert sorted(map(sorted, nets)) == [["vlan0"], ["vlan1"]]


def test_joiner_prefers_a_cluster_with_its_network() -> None:
    members = [member(i, network="a") for i in range(4)] + [
        member(4 + i, network="b") for i in range(4)
    ]
    c = form(members)
    assert sizes(c) == [4, 4]
    joined = form([*members, member(99, network="b")], previous=c)
    x = joined.cluster_of("d099")
    assert x is not None and set(x.members) == {"d004", "d005", "d006", "d007", "d099"}


def test_a_lone_device_joins_a_neighbour_and_goes_home_later() -> None:
    home = [member(i, site="home") for i in range(5)]
    c1 = form([*home, member(50, site="lab")])
    # one lab device cannot form a cluster (min 2): it is a guest of the home cluster
    assert sizes(c1) == [6]
    assert c1.cluster_of("d050") == c1.cluster_of("d000")
    c2 = form([*home, member(50, site="lab"), member(51, site="lab")], previous=c1)
    lab = c2.cluster_of("d050")
    assert lab is not None and lab.site == "lab" and set(lab.members) == {"d050", "d051"}
    assert moved(c1, c2) == 1  # only the guest moved


def test_leaving_below_min_merges_into_a_neighbour() -> None:
    members = [member(i) for i in range(10)]
    c = form(members)
    assert sizes(c) == [5, 5]
    first = c.clusters[0]
    survivors = [m for m in members if m.device_id not in first.members[1:]]
    after = form(survivors, previous=c)
    # first cluster fell to 1 member: it merges into the other cluster (1 + 5 = 6 ≤ 7)
    assert sizes(after) == [6]
    assert moved(c, after) == 1


def test_small_same_site_clusters_consolidate() -> None:
    members = [member(i) for i in range(10)]
    c = form(members)
    a, b = c.clusters
    keep = set(a.members[:3]) | set(b.members[:2])  # 3 + 2 = 5 ≤ target: one cluster
    after = form([m for m in members if m.device_id in keep], previous=c)
    assert sizes(after) == [5]
    assert after.clusters[0].id == a.id  # the larger absorbs the smaller
    assert moved(c, after) == 2


def test_one_device_is_one_cluster() -> None:
    c = form([member(0)])
    assert [x.members for x in c.clusters] == [("d000",)]
    assert form([]).clusters == ()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 2)), max_size=120))
def test_joins_and_leaves_keep_every_cluster_in_bounds(
    steps: list[tuple[bool, int, int]],
) -> None:
    cfg = ClusterConfig()
    rng = random.Random(len(steps))
    present: dict[str, ClusterMember] = {}
    clustering = Clustering()
    heads: dict[tuple[str, int], str] = {}
    for i, (join, site, net) in enumerate(steps):
        if join or not present:
            m = ClusterMember(
                f"d{i:03d}",
                site=f"s{site}",
                network=f"n{net}",
                power=rng.choice(list(PowerSource)),
                battery_percent=rng.uniform(0, 100),
            )
            present[m.device_id] = m
        else:
            del present[rng.choice(sorted(present))]
        clustering = form(list(present.values()), cfg, clustering)
        check_shape(clustering, list(present.values()), cfg)
        # never two heads in one term of one cluster
        for x in clustering.clusters:
            assert x.head is not None
            assert heads.setdefault((x.id, x.term), x.head) == x.head


# --- election ---------------------------------------------------------------------------


def test_stability_order() -> None:
    pool = [
        ClusterMember("battery-90", power=B, battery_percent=90),
        ClusterMember("charging-20", power=C, battery_percent=20),
        ClusterMember("mains-hot", power=M, cpu_temp_c=60),
        ClusterMember("mains-cool-new", power=M, cpu_temp_c=35, uptime_s=10),
        ClusterMember("mains-cool-old", power=M, cpu_temp_c=35, uptime_s=9000),
        ClusterMember("mains-cool-old-b", power=M, cpu_temp_c=35, uptime_s=9000),
    ]
    ranked = [m.device_id for m in sorted(pool, key=stability_key)]
    # mains > charging > battery; then headroom; then uptime; then the smaller id
    assert ranked == [
        "mains-cool-old",
        "mains-cool-old-b",
        "mains-cool-new",
        "mains-hot",
        "charging-20",
        "battery-90",
    ]


def test_head_is_kept_while_present_and_replaced_with_a_new_term() -> None:
    ms = {
        "a": ClusterMember("a", power=B, battery_percent=50),
        "b": ClusterMember("b", power=M),
    }
    c = elect(Cluster("c1", None, ("a", "b")), ms)
    assert (c.head, c.term) == ("b", 1)
    # a better device does not unseat a present head: no flapping
    ms["z"] = ClusterMember("z", power=M, uptime_s=1e6)
    c = elect(Cluster("c1", None, ("a", "b", "z"), "b", 1), ms)
    assert (c.head, c.term) == ("b", 1)
    # head lost (missed heartbeats): re-elect with term + 1
    c2 = elect(c, ms, unavailable=["b"])
    assert (c2.head, c2.term) == ("z", 2)
    # head left the cluster
    c3 = elect(Cluster("c1", None, ("a",), "z", 2), ms)
    assert (c3.head, c3.term) == ("a", 3)
    # nobody left: no head, and the term still moves on
    c4 = elect(Cluster("c1", None, ("a",), "a", 3), ms, unavailable=["a"])
    assert (c4.head, c4.term) == (None, 4)


def test_form_reelects_when_the_head_leaves() -> None:
    ms = [ClusterMember(f"d{i}", power=M, uptime_s=float(i)) for i in range(5)]
    c = form(ms)
    assert (c.clusters[0].head, c.clusters[0].term) == ("d4", 1)  # longest uptime
    after = form(ms[:4], previous=c)
    assert (after.clusters[0].head, after.clusters[0].term) == ("d3", 2)


def test_member_from_node() -> None:
    node = NodeView("n", power=C, battery_percent=40, site="home", network="wifi", cpu_temp_c=50)
    m = ClusterMember.from_node(node, uptime_s=12.0)
    assert (m.site, m.network, m.power, m.battery_percent, m.uptime_s) == (
        "home",
        "wifi",
        C,
        40,
        12.0,
    )


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="min_size"):
        ClusterConfig(min_size=6)
    with pytest.raises(ConfigError, match="max_size"):
        ClusterConfig(max_size=4)
    with pytest.raises(InvalidRequest, match="twice"):
        form([member(1), member(1)])
