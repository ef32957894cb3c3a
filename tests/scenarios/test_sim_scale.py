"""What lets the sim engine run thousands of nodes: a publication's cluster state and a SetRules
message are decoded once and shared by every node (they are immutable), node lookups in a cluster
state are indexed, and the cyclic collector is tuned only for the length of a run."""

from __future__ import annotations

import gc
from typing import Any

from coordinator.cluster import ClusterConfig
from coordinator.engine.sim import SimEngine, SimHosts, run_sim
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.node import _nodes_gone


def test_every_node_shares_one_cluster_state_and_one_rule_set() -> None:
    seen: dict[str, Any] = {}

    async def main(engine: SimEngine) -> None:
        async with engine.cluster(ClusterConfig.with_nodes(20)) as (cluster, client):
            hosts = cluster.hosts
            assert isinstance(hosts, SimHosts)
            nodes = [engine.network.host(hosts.state(n).id).node for n in hosts.names()]
            seen["states"] = {id(n.cluster) for n in nodes}
            seen["members"] = len(nodes[0].cluster.nodes)
            resp = await client.request(
                "POST", "/_sim/faults", {"partition": {"groups": [["node-3", "node-4"]]}}
            )
            assert resp.status == 200, resp.body
            tables = [
                engine.network.host(hosts.state(n).id).transport.faults for n in hosts.names()
            ]
            seen["rules"] = {id(t.current) for t in tables}
            seen["rule_count"] = len(tables[0].current.rules)

    run_sim(main, seed=3)
    assert seen["members"] == 21  # the coordinating node and twenty nodes
    assert len(seen["states"]) == 1  # one decoded state, not one per node
    assert seen["rule_count"] > 0 and len(seen["rules"]) == 1


def node(i: int) -> DiscoveryNode:
    return DiscoveryNode(id=f"id-{i}", name=f"node-{i}")


def test_cluster_state_lookups_and_departures() -> None:
    old = ClusterState(version=1, nodes=tuple(node(i) for i in range(5)))
    new = ClusterState(version=2, nodes=(node(0), node(2), node(4), node(7)))
    assert new.get("id-7") == node(7) and new.get("id-1") is None
    assert new.by_name("node-2") == node(2) and new.by_name("node-3") is None
    assert _nodes_gone(old, new) == ["id-1", "id-3"]
    assert _nodes_gone(old, new) == ["id-1", "id-3"]  # asked by every node: the same answer
    assert _nodes_gone(new, old) == ["id-7"]
    assert new == ClusterState(version=2, nodes=(node(0), node(2), node(4), node(7)))
    twice = ClusterState(nodes=(node(1), DiscoveryNode(id="id-1", name="other")))
    assert twice.get("id-1") == node(1)  # the first, as the scan it replaced found


def test_run_sim_restores_the_collector() -> None:
    before = gc.get_threshold()

    async def main(engine: SimEngine) -> tuple[tuple[int, int, int], int]:
        async with engine.cluster(ClusterConfig.with_nodes(2)):
            return gc.get_threshold(), gc.get_freeze_count()

    during, frozen = run_sim(main, seed=1)
    assert during[0] >= 50_000 and frozen > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
