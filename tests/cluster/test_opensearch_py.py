"""Every `_tasks` list/get parameter round-trips through opensearch-py, the real client: what the
client sends is what tasksim reads, what tasksim answers is what the client decodes (errors
included), and every answer fits the official schemas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import NotFoundError, OpenSearch, RequestError, TransportError

from tests.harness import RunningCluster
from tests.openapi import validate
from tests.support import all_tasks, spec, start, task_id, wait_for_tasks

LIST = "cluster:monitor/tasks/lists"


@pytest.fixture(scope="module")
def client(cluster: RunningCluster) -> Iterator[OpenSearch]:
    c = OpenSearch(hosts=[{"host": "127.0.0.1", "port": cluster.port}], timeout=60)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def tree(cluster: RunningCluster) -> str:
    """A reindex on node-1 with a search child on node-2, started with an X-Opaque-Id."""
    (root,) = start(
        cluster,
        "node-1",
        spec(
            "indices:data/write/reindex",
            description="py",
            status={"total": 1},
            children=[(cluster.node("node-2").id, spec("indices:data/read/search"))],
        ),
        headers=[("X-Opaque-Id", "py-tree")],
    )
    wait_for_tasks(cluster, "indices:data/*", 2)
    return root


def listed(client: OpenSearch, **kw: Any) -> Any:
    body = client.tasks.list(**kw)
    if "filter_path" not in kw:
        validate("GET", "/_tasks", 200, body)
    return body


def test_nodes(client: OpenSearch, cluster: RunningCluster) -> None:
    body = listed(client, nodes=["node-1", "_local"])
    assert set(body["nodes"]) == {cluster.node("node-1").id, cluster.node("coordinator").id}
    assert listed(client, nodes="nope") == {"nodes": {}}


def test_actions(client: OpenSearch, tree: str) -> None:
    body = listed(
        client, actions=["indices:data/write/*", "indices:data/read/search"], group_by="none"
    )
    assert sorted(t["action"] for t in body["tasks"]) == [
        "indices:data/read/search",
        "indices:data/write/reindex",
    ]


def test_parent_task_id(client: OpenSearch, tree: str) -> None:
    body = listed(client, parent_task_id=tree, group_by="none")
    assert [t["action"] for t in body["tasks"]] == ["indices:data/read/search"]


def test_detailed(client: OpenSearch, tree: str) -> None:
    body = listed(client, actions="indices:data/write/reindex", detailed=True, group_by="none")
    (t,) = body["tasks"]
    assert t["description"] == "py" and t["status"] == {"total": 1} and "resource_stats" in t


@pytest.mark.parametrize("group_by", ["nodes", "parents", "none"])
def test_group_by(client: OpenSearch, tree: str, group_by: str) -> None:
    body = listed(client, group_by=group_by, actions="indices:data/*")
    key = "nodes" if group_by == "nodes" else "tasks"
    assert list(body) == [key]
    if group_by == "parents":
        assert [c["action"] for c in body["tasks"][tree]["children"]] == [
            "indices:data/read/search"
        ]
    assert len(list(all_tasks(body))) == 2


def test_timeout(client: OpenSearch, cluster: RunningCluster) -> None:
    proc = cluster.node_process("node-3")
    proc.suspend()
    try:
        t0 = time.monotonic()
        # opensearch-py 3.2.0 takes `timeout` for its socket timeout unless `request_timeout` is
        # given (Transport._resolve_request_args); with it, `timeout` reaches the server.
        body = listed(client, timeout="1s", request_timeout=30, group_by="none")
        elapsed = time.monotonic() - t0
    finally:
        proc.resume()
    assert elapsed < 1 + 5  # generous: the machine is shared
    (failure,) = body["node_failures"]
    assert failure["node_id"] == cluster.node("node-3").id
    assert failure["caused_by"]["type"] == "receive_timeout_transport_exception"


def test_wait_for_completion(client: OpenSearch, cluster: RunningCluster) -> None:
    start(cluster, "node-2", spec("tasksim:py/wait", millis=1000))
    wait_for_tasks(cluster, "tasksim:py/wait", 1)
    body = listed(client, actions="tasksim:py/wait", wait_for_completion=True, group_by="none")
    (t,) = body["tasks"]
    assert t["running_time_in_nanos"] >= 900_000_000
    assert listed(client, actions="tasksim:py/wait") == {"nodes": {}}


def test_opaque_id_human_and_filter_path(client: OpenSearch) -> None:
    body = listed(client, actions=LIST, group_by="none", opaque_id="py-client", human=True)
    (t,) = body["tasks"]
    assert t["headers"] == {"X-Opaque-Id": "py-client"}
    assert "start_time" in t and "running_time" in t
    filtered = listed(client, actions=LIST, filter_path="tasks.headers", group_by="none")
    assert filtered == {"tasks": [{"headers": {}}]}


def test_pretty_and_error_trace(client: OpenSearch) -> None:
    assert "nodes" in listed(client, pretty=True)
    with pytest.raises(NotFoundError) as e:
        client.tasks.get(task_id="nodeX:1", error_trace=True)
    assert "stack_trace" in e.value.info["error"]


def test_get(client: OpenSearch, tree: str) -> None:
    body = client.tasks.get(task_id=tree)
    validate("GET", f"/_tasks/{tree}", 200, body)
    assert body["completed"] is False and task_id(body["task"]) == tree
    assert body["task"]["headers"] == {"X-Opaque-Id": "py-tree"}


def test_get_wait_for_completion_and_timeout(client: OpenSearch, cluster: RunningCluster) -> None:
    (short,) = start(cluster, "node-3", spec("tasksim:py/get", millis=800))
    body = client.tasks.get(
        task_id=short, wait_for_completion=True, timeout="10s", request_timeout=30
    )
    validate("GET", f"/_tasks/{short}", 200, body)
    assert body["completed"] is True
    (long,) = start(cluster, "coordinator", spec("tasksim:py/get", millis=60_000))
    with pytest.raises(TransportError) as e:
        client.tasks.get(
            task_id=long, wait_for_completion=True, timeout="500ms", request_timeout=30
        )
    assert e.value.status_code == 504
    assert e.value.error == "timeout_exception"
    validate("GET", f"/_tasks/{long}", 504, e.value.info)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"group_by": "foo"},
            "[group_by] must be one of [nodes], [parents] or [none] but was [foo]",
        ),
        (
            {"nodes": "data:maybe"},
            "Failed to parse value [maybe] as only [true] or [false] are allowed.",
        ),
        ({"parent_task_id": "-1"}, "malformed task id -1"),
        (
            {"timeout": "1.5s", "request_timeout": 30},
            "failed to parse [1.5s], fractional time values are not supported",
        ),
        (
            {"params": {"master_timeout": "1s"}},
            "request [/_tasks] contains unrecognized parameter: [master_timeout]",
        ),
        (
            {"source": "{}"},
            "request [/_tasks] contains unrecognized parameter: [source]",
        ),
    ],
)
def test_errors_decode(client: OpenSearch, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(RequestError) as e:
        client.tasks.list(**kwargs)
    assert e.value.status_code == 400
    assert e.value.error == "illegal_argument_exception"
    assert e.value.info["error"]["reason"] == reason
    validate("GET", "/_tasks", 400, e.value.info)


def test_get_errors_decode(client: OpenSearch) -> None:
    with pytest.raises(RequestError) as e:
        client.tasks.get(task_id="foo")
    assert e.value.info["error"]["reason"] == "malformed task id foo"
    with pytest.raises(NotFoundError) as nf:
        client.tasks.get(task_id="nodeX:9")
    assert nf.value.error == "resource_not_found_exception"


def test_cat_tasks(client: OpenSearch, tree: str) -> None:
    rows = client.cat.tasks(
        format="json", detailed=True, actions="indices:data/*", h="ti,desc,x", s="ti"
    )
    validate("GET", "/_cat/tasks", 200, rows)
    assert {r["ti"] for r in rows} >= {tree}
    assert {r["x"] for r in rows} == {"py-tree"}
    text = client.cat.tasks(v=True, nodes="node-1", actions="indices:data/write/reindex", h="ti,n")
    assert text.split() == ["ti", "n", tree, "node-1"]


def test_cat_nodes(client: OpenSearch, cluster: RunningCluster) -> None:
    rows = client.cat.nodes(format="json", h="n,m,r", s="n")
    assert rows == [
        {"n": "coordinator", "m": "-", "r": "-"},
        {"n": "node-1", "m": "*", "r": "dimr"},
        {"n": "node-2", "m": "-", "r": "dimr"},
        {"n": "node-3", "m": "-", "r": "dimr"},
    ]
    assert len(client.cat.nodes().splitlines()) == len(cluster.nodes)
