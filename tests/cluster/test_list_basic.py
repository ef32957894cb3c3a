"""`GET _tasks` over HTTP against real node processes: the fan-out and the exact response shape."""

from __future__ import annotations

from tests.harness import RunningCluster
from tests.openapi import Checked

LIST = "cluster:monitor/tasks/lists"
TASK_KEYS = [
    "node",
    "id",
    "type",
    "action",
    "start_time_in_millis",
    "running_time_in_nanos",
    "cancellable",
    "cancelled",
    "headers",
]


def test_list_fans_out_one_child_per_node(cluster: RunningCluster) -> None:
    status, body = Checked(cluster).get("/_tasks")
    assert status == 200
    assert list(body) == ["nodes"]
    coordinator = cluster.node("coordinator")
    assert set(body["nodes"]) == {n.id for n in cluster.nodes}
    parents = [
        t for n in body["nodes"].values() for t in n["tasks"].values() if t["action"] == LIST
    ]
    assert len(parents) == 1
    parent = parents[0]
    assert parent["node"] == coordinator.id
    assert parent["type"] == "transport"
    assert list(parent) == TASK_KEYS  # no parent_task_id, no detailed fields
    parent_id = f"{parent['node']}:{parent['id']}"
    children = [
        t
        for n in body["nodes"].values()
        for t in n["tasks"].values()
        if t["action"] == LIST + "[n]"
    ]
    assert sorted(c["node"] for c in children) == sorted(n.id for n in cluster.nodes)
    for child in children:
        assert child["parent_task_id"] == parent_id
        assert child["type"] == ("direct" if child["node"] == coordinator.id else "transport")
        assert child["cancellable"] is False and child["cancelled"] is False


def test_node_entry_fields(cluster: RunningCluster) -> None:
    _, body = Checked(cluster).get("/_tasks")
    node1 = cluster.node("node-1")
    entry = body["nodes"][node1.id]
    assert list(entry) == [
        "name",
        "transport_address",
        "host",
        "ip",
        "roles",
        "attributes",
        "tasks",
    ]
    assert entry["name"] == "node-1"
    assert entry["transport_address"] == node1.address == entry["ip"]
    assert entry["host"] == "127.0.0.1"
    assert entry["roles"] == ["cluster_manager", "data", "ingest", "remote_cluster_client"]
    assert entry["attributes"] == {"shard_indexing_pressure_enabled": "true"}
    coord = body["nodes"][cluster.node("coordinator").id]
    assert coord["roles"] == []


def test_task_ids_count_per_node_from_one(cluster: RunningCluster) -> None:
    _, first = Checked(cluster).get("/_tasks?group_by=none")
    _, second = Checked(cluster).get("/_tasks?group_by=none")
    by_node_first = {t["node"]: t["id"] for t in first["tasks"] if t["action"] == LIST + "[n]"}
    by_node_second = {t["node"]: t["id"] for t in second["tasks"] if t["action"] == LIST + "[n]"}
    for node, task_id in by_node_first.items():
        assert by_node_second[node] > task_id
