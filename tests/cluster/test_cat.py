"""`_cat/tasks` and `_cat/nodes` against real nodes: the text table, `v`, `h`, `s`, `format=json`
(validated against the official `TasksRecord` schema), `detailed`, the `x_opaque_id` column."""

from __future__ import annotations

import re

from tests.harness import RunningCluster
from tests.openapi import Checked
from tests.support import spec, start, wait_for_tasks

TEXT = "text/plain; charset=UTF-8"


def text(cluster: RunningCluster, path: str, **kw: object) -> str:
    status, body, headers = cluster.request("GET", path, **kw)  # type: ignore[arg-type]
    assert status == 200, body
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == TEXT
    assert isinstance(body, str)
    return body


def test_cat_tasks_default_columns_with_header(cluster: RunningCluster) -> None:
    lines = text(cluster, "/_cat/tasks?v").splitlines()
    assert lines[0].split() == [
        "action",
        "task_id",
        "parent_task_id",
        "type",
        "start_time",
        "timestamp",
        "running_time",
        "ip",
        "node",
    ]
    rows = [line.split() for line in lines[1:]]
    lists = [r for r in rows if r[0].startswith("cluster:monitor/tasks/lists")]
    assert len(lists) == 1 + len(cluster.nodes)
    parent = lists[0]  # a group's children follow it
    assert parent[0] == "cluster:monitor/tasks/lists" and parent[2] == "-"
    assert {r[2] for r in lists[1:]} == {parent[1]}
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", r[5]) for r in rows)
    assert {r[8] for r in lists} == {n.name for n in cluster.nodes}


def test_cat_tasks_h_s_and_no_header(cluster: RunningCluster) -> None:
    body = text(
        cluster, "/_cat/tasks?h=node,ty,ac&s=node:desc,ac&actions=cluster:monitor/tasks/lists*"
    )
    rows = [line.split() for line in body.splitlines()]
    assert [r[0] for r in rows] == ["node-3", "node-2", "node-1", "coordinator", "coordinator"]
    assert rows[-2][1:] == ["transport", "cluster:monitor/tasks/lists"]
    assert rows[-1][1:] == ["direct", "cluster:monitor/tasks/lists[n]"]


def test_cat_tasks_json_detailed_and_x_opaque_id(cluster: RunningCluster) -> None:
    start(
        cluster,
        "node-1",
        spec("tasksim:cat/a", description="cat me"),
        headers=[("X-Opaque-Id", "cat-1")],
    )
    wait_for_tasks(cluster, "tasksim:cat/a", 1)
    status, rows = Checked(cluster).get("/_cat/tasks?format=json&detailed&actions=tasksim:cat/a")
    assert status == 200
    (row,) = rows
    assert list(row) == [
        "action",
        "task_id",
        "parent_task_id",
        "type",
        "start_time",
        "timestamp",
        "running_time",
        "ip",
        "node",
        "description",
    ]
    assert row["description"] == "cat me" and row["node"] == "node-1"
    assert all(isinstance(v, str) for v in row.values())
    _, rows = Checked(cluster).get("/_cat/tasks?format=json&h=x,id,ni,po,v&actions=tasksim:cat/a")
    node1 = cluster.node("node-1")
    assert rows == [
        {
            "x": "cat-1",
            "id": row["task_id"].split(":")[1],
            "ni": node1.id[:4],
            "po": node1.address.rsplit(":", 1)[1],
            "v": "2.19.0",
        }
    ]
    _, everything = Checked(cluster).get("/_cat/tasks?format=json&h=*&detailed")
    assert len(everything[0]) == 17


def test_cat_tasks_text_x_opaque_id_column(cluster: RunningCluster) -> None:
    body = text(
        cluster,
        "/_cat/tasks?v&h=action,x_opaque_id&actions=cluster:monitor/tasks/lists",
        headers={"X-Opaque-Id": "who-asked"},
    )
    assert body.splitlines() == [
        "action                      x_opaque_id",
        "cluster:monitor/tasks/lists who-asked",
    ]


def test_cat_tasks_help(cluster: RunningCluster) -> None:
    lines = text(cluster, "/_cat/tasks?help").splitlines()
    assert lines[0].split("|")[0].strip() == "id"
    assert len(lines) == 15
    assert "x_opaque_id" in lines[14] and "X-Opaque-ID header" in lines[14]


def test_cat_nodes(cluster: RunningCluster) -> None:
    lines = text(cluster, "/_cat/nodes?v").splitlines()
    assert lines[0].split() == [
        "ip",
        "heap.percent",
        "ram.percent",
        "cpu",
        "load_1m",
        "load_5m",
        "load_15m",
        "node.role",
        "node.roles",
        "cluster_manager",
        "name",
    ]
    rows = {line.split()[-1]: line.split() for line in lines[1:]}
    assert set(rows) == {n.name for n in cluster.nodes}
    assert rows["node-1"][-4:] == [
        "dimr",
        "cluster_manager,data,ingest,remote_cluster_client",
        "*",
        "node-1",
    ]
    assert rows["coordinator"][-4:] == ["-", "-", "-", "coordinator"]


def test_cat_nodes_json_and_full_id(cluster: RunningCluster) -> None:
    status, rows = Checked(cluster).get(
        "/_cat/nodes?format=json&h=id,name,pid,port,m&full_id=true&s=name"
    )
    assert status == 200
    assert [r["name"] for r in rows] == ["coordinator", "node-1", "node-2", "node-3"]
    by_name = {r["name"]: r for r in rows}
    for node in cluster.nodes:
        assert by_name[node.name]["id"] == node.id
        assert by_name[node.name]["port"] == node.address.rsplit(":", 1)[1]
    assert by_name["node-2"]["pid"] == str(cluster.node_process("node-2").pid)
    assert [r["m"] for r in rows] == ["-", "*", "-", "-"]


def test_cat_nodes_master_timeout_is_still_accepted(cluster: RunningCluster) -> None:
    assert text(cluster, "/_cat/nodes?master_timeout=5s&local=true&h=name&s=name").split() == [
        "coordinator",
        "node-1",
        "node-2",
        "node-3",
    ]
