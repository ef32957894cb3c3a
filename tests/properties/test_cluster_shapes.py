"""Property: a cluster of any size and role mix starts, shows its nodes with their roles, and a list
by role selector (`data:true`, `ingest:true`, `cluster_manager:true`, `coordinating_only:true`,
`_cluster_manager`) targets exactly the nodes OpenSearch's `DiscoveryNodes.resolveNodes` picks.

Each example starts its own cluster (`tasksim up --config`, a cluster section with named nodes and
roles), so the examples are few; the shapes come from `coordinator.testing.cluster_shapes`.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from coordinator.testing import ClusterShape, cluster_settings, cluster_shapes, running_cluster_of
from coordinator.testing.model import LIST_NODE_ACTION

pytestmark = pytest.mark.cluster

ROLE_SELECTORS = {
    "data:true": lambda roles: "data" in roles,
    "ingest:true": lambda roles: "ingest" in roles,
    "cluster_manager:true": lambda roles: "cluster_manager" in roles,
    "coordinating_only:true": lambda roles: not {"data", "ingest", "cluster_manager"} & set(roles),
}


@cluster_settings(max_examples=3)
@given(shape=cluster_shapes(min_nodes=1, max_nodes=4))
def test_a_cluster_of_any_shape_targets_nodes_by_role(shape: ClusterShape) -> None:
    with running_cluster_of(shape.nodes, "--no-fault-detection") as cluster:
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
