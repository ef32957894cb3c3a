"""Property: a cluster of any size and role mix starts, shows its nodes with their roles, and a list
by role selector (`data:true`, `ingest:true`, `cluster_manager:true`, `coordinating_only:true`,
`_cluster_manager`) targets exactly the nodes OpenSearch's `DiscoveryNodes.resolveNodes` picks.

Each example starts its own cluster: on the real engine `tasksim up --config` (a cluster section
with named nodes and roles), so the examples are few; on the sim engine a fresh world of the same
configuration, its seed drawn by hypothesis, 200 examples of up to 8 nodes. The shapes come from
`coordinator.testing.cluster_shapes`.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from coordinator.testing import (
    ClusterShape,
    TasksimCluster,
    cluster_settings,
    cluster_shapes,
    running_cluster_of,
    seeds,
    sim_config,
    simulated_cluster,
)
from coordinator.testing.model import LIST_NODE_ACTION

ROLE_SELECTORS = {
    "data:true": lambda roles: "data" in roles,
    "ingest:true": lambda roles: "ingest" in roles,
    "cluster_manager:true": lambda roles: "cluster_manager" in roles,
    "coordinating_only:true": lambda roles: not {"data", "ingest", "cluster_manager"} & set(roles),
}


@pytest.mark.cluster
@cluster_settings(max_examples=3)
@given(shape=cluster_shapes(min_nodes=1, max_nodes=4))
def test_a_cluster_of_any_shape_targets_nodes_by_role(shape: ClusterShape) -> None:
    with running_cluster_of(shape.nodes, "--no-fault-detection") as cluster:
        a_cluster_targets_nodes_by_role(cluster, shape)


@cluster_settings(max_examples=200)
@given(shape=cluster_shapes(min_nodes=1, max_nodes=8), seed=seeds())
def test_a_cluster_of_any_shape_targets_nodes_by_role_sim(shape: ClusterShape, seed: int) -> None:
    config = sim_config(shape, fault_detection=False)
    with simulated_cluster(config, seed=seed) as cluster:
        a_cluster_targets_nodes_by_role(cluster, shape)


def a_cluster_targets_nodes_by_role(cluster: TasksimCluster, shape: ClusterShape) -> None:
    assert [(n.name, tuple(n.roles)) for n in cluster.nodes[1:]] == list(shape.nodes)
    roles = {n.name: n.roles for n in cluster.nodes}  # the coordinating node has none
    for selector, has in ROLE_SELECTORS.items():
        status, body = cluster.get(
            f"/_tasks?nodes={selector}&actions={LIST_NODE_ACTION}&group_by=nodes"
        )
        assert status == 200, body
        answered = {entry["name"] for entry in body.get("nodes", {}).values()}
        assert answered == {n for n, r in roles.items() if has(r)}, selector
    status, body = cluster.get("/_tasks?nodes=_cluster_manager&group_by=none")
    assert status == 200, body
    elected = {cluster.name_of(t["node"]) for t in body["tasks"]}
    assert elected == {shape.with_role("cluster_manager")[0]}
