"""Every `GET _tasks` parameter against real node processes: node selectors, `actions`,
`parent_task_id`, `detailed`, `group_by`, `human`, `X-Opaque-Id` on every task of a fan-out and of
a task tree, and `GET _tasks/<id>`. Every answer is validated against the official schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import RunningCluster
from tests.openapi import Checked
from tests.support import all_tasks, by_action, spec, start, task_id, wait_for_tasks

LIST = "cluster:monitor/tasks/lists"
REINDEX = "indices:data/write/reindex"
REINDEX_STATUS = {"total": 1000, "created": 10, "batches": 1}


@dataclass
class Trees:
    reindex: str  # on node-1; children: search on node-2, bulk on node-3 (-> bulk[s] on node-2)
    search: str  # on node-2; one query child per node


@pytest.fixture(scope="module")
def trees(cluster: RunningCluster) -> Iterator[Trees]:
    n2, n3 = cluster.node("node-2").id, cluster.node("node-3").id
    reindex = spec(
        REINDEX,
        description="reindex from [a] to [b]",
        status=REINDEX_STATUS,
        children=[
            (n2, spec("indices:data/read/search", description="scroll")),
            (
                n3,
                spec(
                    "indices:data/write/bulk",
                    cancellable=False,
                    children=[(n2, spec("indices:data/write/bulk[s]", cancellable=False))],
                ),
            ),
        ],
    )
    search = spec(
        "indices:data/read/search",
        children=[
            (n.id, spec("indices:data/read/search[phase/query]"))
            for n in cluster.nodes
            if n.name != "coordinator"
        ],
    )
    (root1,) = start(cluster, "node-1", reindex, headers=[("X-Opaque-Id", "tree-1")])
    (root2,) = start(cluster, "node-2", search)
    wait_for_tasks(cluster, "indices:*", 8)  # the children start in the background
    yield Trees(root1, root2)


def names(cluster: RunningCluster, body: dict[str, Any]) -> set[str]:
    by_id = {n.id: n.name for n in cluster.nodes}
    return {by_id[i] for i in body["nodes"]}


ALL = {"coordinator", "node-1", "node-2", "node-3"}
DATA = {"node-1", "node-2", "node-3"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ALL),
        ("_all", ALL),
        ("*", ALL),
        ("_local", {"coordinator"}),
        ("_cluster_manager", {"node-1"}),
        ("_master", {"node-1"}),
        ("node-1,node-3", {"node-1", "node-3"}),
        ("node-*", DATA),
        ("coord*", {"coordinator"}),
        ("127.0.0.1", ALL),
        ("127.0.0.*", ALL),
        ("data:true", DATA),
        ("cluster_manager:true", DATA),
        ("_all,data:false", {"coordinator"}),
        ("_all,ingest:false", {"coordinator"}),
        ("coordinating_only:true", {"coordinator"}),
        ("shard_indexing_pressure_enabled:true", ALL),
        ("shard_*:t*", ALL),
        ("node-1,%20node-2", {"node-1"}),  # not trimmed: " node-2" names nothing
        ("node-1,,node-2", {"node-1", "node-2"}),
        ("nope", set()),
        ("NODE-1", set()),
        ("remote_cluster_client:true", set()),
        ("data:false", set()),
    ],
)
def test_node_selectors(cluster: RunningCluster, selector: str, expected: set[str]) -> None:
    status, body = Checked(cluster).get(f"/_tasks?nodes={selector}")
    assert status == 200
    assert names(cluster, body) == expected
    if not expected:
        assert body == {"nodes": {}}


def test_node_ids_select_exactly(cluster: RunningCluster) -> None:
    n2 = cluster.node("node-2")
    _, body = Checked(cluster).get(f"/_tasks?nodes={n2.id},_local")
    assert names(cluster, body) == {"node-2", "coordinator"}


def test_only_the_selected_nodes_get_a_child(cluster: RunningCluster) -> None:
    _, body = Checked(cluster).get(f"/_tasks?nodes=node-3&actions={LIST}*&group_by=none")
    # the parent runs on the coordinating node, which was not asked: only node-3's child shows
    (child,) = body["tasks"]
    assert child["action"] == LIST + "[n]"
    assert child["node"] == cluster.node("node-3").id
    assert child["parent_task_id"].startswith(cluster.node("coordinator").id + ":")


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (REINDEX, {REINDEX}),
        (
            "indices:data/write/*",
            {REINDEX, "indices:data/write/bulk", "indices:data/write/bulk[s]"},
        ),
        (
            "indices:data/write/bulk,indices:data/read/search",
            {"indices:data/write/bulk", "indices:data/read/search"},
        ),
        ("*[phase/query]", {"indices:data/read/search[phase/query]"}),
        ("INDICES:*", set()),
        ("indices:data/write/bulk[s", set()),
        ("%20indices:data/write/reindex", set()),
    ],
)
def test_actions(cluster: RunningCluster, trees: Trees, actions: str, expected: set[str]) -> None:
    _, body = Checked(cluster).get(f"/_tasks?actions={actions}&group_by=none")
    assert {t["action"] for t in body["tasks"]} == expected


def test_parent_task_id(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get(f"/_tasks?parent_task_id={trees.reindex}&group_by=none")
    assert sorted((t["action"], t["node"]) for t in body["tasks"]) == [
        ("indices:data/read/search", cluster.node("node-2").id),
        ("indices:data/write/bulk", cluster.node("node-3").id),
    ]
    assert {t["parent_task_id"] for t in body["tasks"]} == {trees.reindex}


@pytest.mark.parametrize("unset", ["unset", "", "whatever:-1"])
def test_unset_parent_task_id_filters_nothing(
    cluster: RunningCluster, trees: Trees, unset: str
) -> None:
    _, body = Checked(cluster).get(
        f"/_tasks?parent_task_id={unset}&actions=indices:*&group_by=none"
    )
    assert len(body["tasks"]) == 8  # both trees, every task


def test_detailed_fields_in_order(cluster: RunningCluster, trees: Trees) -> None:
    _, plain = Checked(cluster).get(f"/_tasks?actions={REINDEX}&group_by=none")
    (t,) = plain["tasks"]
    assert not {"status", "description", "resource_stats"} & set(t)
    _, body = Checked(cluster).get(f"/_tasks?actions={REINDEX}&group_by=none&detailed")
    (t,) = body["tasks"]
    assert list(t) == [
        "node",
        "id",
        "type",
        "action",
        "status",
        "description",
        "start_time_in_millis",
        "running_time_in_nanos",
        "cancellable",
        "cancelled",
        "headers",
        "resource_stats",
    ]
    assert t["status"] == REINDEX_STATUS
    assert t["description"] == "reindex from [a] to [b]"
    assert list(t["resource_stats"]) == ["average", "total", "min", "max", "thread_info"]
    assert list(t["resource_stats"]["thread_info"]) == ["thread_executions", "active_threads"]


def test_detailed_list_task_has_an_empty_description_and_no_status(cluster: RunningCluster) -> None:
    _, body = Checked(cluster).get(f"/_tasks?actions={LIST}&group_by=none&detailed=true")
    (t,) = body["tasks"]
    assert t["description"] == "" and "status" not in t and "resource_stats" in t


def test_group_by_parents_nests_the_tree(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get("/_tasks?actions=indices:data/write/*,*search&group_by=parents")
    root = body["tasks"][trees.reindex]
    kids = {c["action"]: c for c in root["children"]}
    assert set(kids) == {"indices:data/read/search", "indices:data/write/bulk"}
    (grandchild,) = kids["indices:data/write/bulk"]["children"]
    assert grandchild["action"] == "indices:data/write/bulk[s]"
    assert "children" not in grandchild
    assert list(root)[-1] == "children"
    assert trees.search in body["tasks"]  # its query children were filtered out


def test_group_by_parents_a_child_whose_parent_is_filtered_out_is_top_level(
    cluster: RunningCluster, trees: Trees
) -> None:
    _, body = Checked(cluster).get("/_tasks?actions=indices:data/write/bulk*&group_by=parents")
    (top,) = body["tasks"].values()
    assert top["action"] == "indices:data/write/bulk"
    assert top["parent_task_id"] == trees.reindex
    assert [c["action"] for c in top["children"]] == ["indices:data/write/bulk[s]"]


def test_group_by_parents_list_task_with_its_node_children(cluster: RunningCluster) -> None:
    _, body = Checked(cluster).get(f"/_tasks?actions={LIST}*&group_by=parents")
    (root,) = body["tasks"].values()
    assert root["action"] == LIST
    kids = root["children"]
    assert sorted(c["node"] for c in kids) == sorted(n.id for n in cluster.nodes)
    coordinator = cluster.node("coordinator").id
    assert {c["type"] for c in kids if c["node"] == coordinator} == {"direct"}
    assert {c["type"] for c in kids if c["node"] != coordinator} == {"transport"}


def test_group_by_nodes_leaves_out_nodes_without_matching_tasks(
    cluster: RunningCluster, trees: Trees
) -> None:
    _, body = Checked(cluster).get(f"/_tasks?actions={REINDEX}")
    assert list(body) == ["nodes"]
    assert names(cluster, body) == {"node-1"}
    (entry,) = body["nodes"].values()
    assert list(entry["tasks"]) == [trees.reindex]


def test_human(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get(f"/_tasks?actions={REINDEX}&group_by=none&human")
    (t,) = body["tasks"]
    keys = list(t)
    assert keys.index("start_time") + 1 == keys.index("start_time_in_millis")
    assert keys.index("running_time") + 1 == keys.index("running_time_in_nanos")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t["start_time"])
    assert re.fullmatch(r"\d+(\.\d)?(nanos|micros|ms|s|m|h|d)", t["running_time"])
    _, plain = Checked(cluster).get(f"/_tasks?actions={REINDEX}&group_by=none&human=false")
    assert "start_time" not in plain["tasks"][0]


def test_x_opaque_id_reaches_the_parent_and_every_node_child(cluster: RunningCluster) -> None:
    status, body, headers = Checked(cluster).request(
        "GET", f"/_tasks?actions={LIST}*&group_by=none", headers={"X-Opaque-Id": "me"}
    )
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["x-opaque-id"] == "me"
    assert len(body["tasks"]) == 1 + len(cluster.nodes)
    assert all(t["headers"] == {"X-Opaque-Id": "me"} for t in body["tasks"])
    _, none = Checked(cluster).get(f"/_tasks?actions={LIST}*&group_by=none")
    assert all(t["headers"] == {} for t in none["tasks"])


def test_x_opaque_id_reaches_every_task_of_a_tree(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get("/_tasks?actions=indices:data/write/*,*search&group_by=parents")
    tree = list(all_tasks({"tasks": {trees.reindex: body["tasks"][trees.reindex]}}))
    assert len(tree) == 4
    assert all(t["headers"] == {"X-Opaque-Id": "tree-1"} for t in tree)
    assert body["tasks"][trees.search]["headers"] == {}


def test_x_opaque_id_lookup_is_case_insensitive(cluster: RunningCluster) -> None:
    _, body, _ = Checked(cluster).request(
        "GET", f"/_tasks?actions={LIST}&group_by=none", headers={"x-opaque-id": "lower"}
    )
    assert body["tasks"][0]["headers"] == {"X-Opaque-Id": "lower"}


def test_get_task_is_always_detailed(cluster: RunningCluster, trees: Trees) -> None:
    status, body = Checked(cluster).get(f"/_tasks/{trees.reindex}")
    assert status == 200
    assert list(body) == ["completed", "task"]
    assert body["completed"] is False
    t = body["task"]
    assert task_id(t) == trees.reindex
    assert t["status"] == REINDEX_STATUS
    assert t["description"] == "reindex from [a] to [b]"
    assert "resource_stats" in t
    assert t["headers"] == {"X-Opaque-Id": "tree-1"}


def test_get_task_human_and_filter_path(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get(
        f"/_tasks/{trees.search}?human&filter_path=task.running_time,completed"
    )
    assert set(body) == {"completed", "task"}
    assert list(body["task"]) == ["running_time"]


def test_get_task_of_the_coordinating_node(cluster: RunningCluster) -> None:
    coordinator = cluster.node("coordinator").id
    _, body = Checked(cluster).get(f"/_tasks?nodes=_local&actions={LIST}&group_by=none")
    (t,) = body["tasks"]
    status, gone = Checked(cluster).get(f"/_tasks/{coordinator}:{t['id']}")
    assert status == 404  # that list task has finished
    assert gone["error"]["reason"] == (
        f"task [{coordinator}:{t['id']}] isn't running and hasn't stored its results"
    )


def test_filter_path_on_a_list(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get("/_tasks?filter_path=nodes.*.name")
    assert {v["name"] for v in body["nodes"].values()} == ALL
    assert all(list(v) == ["name"] for v in body["nodes"].values())
    _, nothing = Checked(cluster).get("/_tasks?filter_path=nope")
    assert nothing == {}
    _, actions = Checked(cluster).get(f"/_tasks?actions={REINDEX}&filter_path=**.action")
    assert [t["action"] for t in all_tasks(actions)] == [REINDEX]


def test_reindex_tree_is_listed_once_per_task(cluster: RunningCluster, trees: Trees) -> None:
    _, body = Checked(cluster).get("/_tasks")
    assert len(by_action(body, REINDEX)) == 1
    assert len(by_action(body, "indices:data/read/search[phase/query]")) == 3
