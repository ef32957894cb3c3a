"""`wait_for_completion` on `GET _tasks` and `GET _tasks/<id>` with real nodes: the wait, the final
snapshot, list tasks never waited for, and what an expired wait looks like — on another node the
transport `timeout` fires first (as in OpenSearch: it starts when the request is sent), on the
coordinating node the wait's own `timeout_exception` (504)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.harness import RunningCluster
from tests.openapi import Checked
from tests.support import spec, start, task_id, wait_for_tasks

SLACK = 5.0  # generous: the machine is shared


def timed(cluster: RunningCluster, path: str) -> tuple[float, int, Any]:
    t0 = time.monotonic()
    status, body = Checked(cluster).get(path)
    return time.monotonic() - t0, status, body


def test_list_waits_for_the_matching_tasks(cluster: RunningCluster) -> None:
    start(cluster, "node-1", spec("tasksim:wait/a", millis=2000))
    start(cluster, "node-3", spec("tasksim:wait/a", millis=1500))
    wait_for_tasks(cluster, "tasksim:wait/a", 2)
    elapsed, status, body = timed(
        cluster, "/_tasks?wait_for_completion=true&actions=tasksim:wait/a&group_by=none"
    )
    assert status == 200 and 1.0 < elapsed < 2.0 + SLACK
    assert "node_failures" not in body
    assert sorted(t["node"] for t in body["tasks"]) == sorted(
        [cluster.node("node-1").id, cluster.node("node-3").id]
    )
    # the snapshot is taken after the wait: each ran its whole duration
    assert all(t["running_time_in_nanos"] >= 1_400_000_000 for t in body["tasks"])
    _, _, after = timed(cluster, "/_tasks?actions=tasksim:wait/a")
    assert after == {"nodes": {}}


def test_list_tasks_are_never_waited_for(cluster: RunningCluster) -> None:
    elapsed, status, body = timed(
        cluster,
        "/_tasks?wait_for_completion=true&actions=cluster:monitor/tasks/lists*&timeout=10s",
    )
    assert status == 200 and elapsed < SLACK
    assert "node_failures" not in body


def test_list_wait_that_outlives_the_timeout(cluster: RunningCluster) -> None:
    start(cluster, "node-2", spec("tasksim:wait/b", millis=60_000))
    wait_for_tasks(cluster, "tasksim:wait/b", 1)
    elapsed, status, body = timed(
        cluster, "/_tasks?wait_for_completion=true&actions=tasksim:wait/b&timeout=1s&group_by=none"
    )
    node = cluster.node("node-2")
    assert status == 200 and 1.0 <= elapsed < 1.0 + SLACK
    assert body["tasks"] == []  # the other nodes had nothing to wait for
    (failure,) = body["node_failures"]
    assert failure["node_id"] == node.id
    assert failure["caused_by"]["type"] == "receive_timeout_transport_exception"
    assert re.fullmatch(
        rf"\[node-2\]\[{re.escape(node.address)}\]\[cluster:monitor/tasks/lists\[n\]\] "
        r"request_id \[\d+\] timed out after \[\d+ms\]",
        failure["caused_by"]["reason"],
    )


def test_get_waits_for_a_task_on_another_node(cluster: RunningCluster) -> None:
    (tid,) = start(cluster, "node-2", spec("tasksim:wait/c", millis=1500, description="c"))
    elapsed, status, body = timed(cluster, f"/_tasks/{tid}?wait_for_completion=true&human")
    assert status == 200 and 0.5 < elapsed < 1.5 + SLACK
    assert list(body) == ["completed", "task"]
    assert body["completed"] is True
    assert task_id(body["task"]) == tid
    assert body["task"]["description"] == "c"
    assert body["task"]["running_time_in_nanos"] >= 1_400_000_000
    status, gone = Checked(cluster).get(f"/_tasks/{tid}")
    assert status == 404
    assert gone["error"]["reason"] == f"task [{tid}] isn't running and hasn't stored its results"


def test_get_wait_on_another_node_outlived_by_the_timeout_is_a_transport_timeout(
    cluster: RunningCluster,
) -> None:
    (tid,) = start(cluster, "node-3", spec("tasksim:wait/d", millis=60_000))
    elapsed, status, body = timed(cluster, f"/_tasks/{tid}?wait_for_completion=true&timeout=1s")
    assert status == 500 and 1.0 <= elapsed < 1.0 + SLACK
    assert body["error"]["type"] == "receive_timeout_transport_exception"
    assert re.fullmatch(
        rf"\[node-3\]\[{re.escape(cluster.node('node-3').address)}\]\[cluster:monitor/task/get\] "
        r"request_id \[\d+\] timed out after \[\d+ms\]",
        body["error"]["reason"],
    )


def test_get_wait_on_the_coordinating_node_times_out_with_504(cluster: RunningCluster) -> None:
    (tid,) = start(cluster, "coordinator", spec("indices:data/write/reindex", millis=60_000))
    elapsed, status, body = timed(cluster, f"/_tasks/{tid}?wait_for_completion=true&timeout=1s")
    assert status == 504 and 1.0 <= elapsed < 1.0 + SLACK
    error = body["error"]
    assert error["type"] == "timeout_exception"
    assert re.fullmatch(
        r"Timed out waiting for completion of \[org\.opensearch\.index\.reindex\.BulkByScrollTask@[0-9a-f]+\]",
        error["reason"],
    )
    assert error["root_cause"] == [{"type": "timeout_exception", "reason": error["reason"]}]


def test_get_wait_on_the_coordinating_node_completes(cluster: RunningCluster) -> None:
    (tid,) = start(cluster, "coordinator", spec("tasksim:wait/e", millis=1000))
    elapsed, status, body = timed(cluster, f"/_tasks/{tid}?wait_for_completion")
    assert status == 200 and body["completed"] is True and elapsed < 1.0 + SLACK
    assert task_id(body["task"]) == tid


def test_get_wait_answers_the_stored_result(cluster: RunningCluster) -> None:
    """A task that stores its result (`POST /_sim/tasks` with `store_result`): the wait ends with
    the stored document, `response` included; the task keeps the request's X-Opaque-Id."""
    response = {  # what a finished reindex answers (the shape the spec's TaskResponse knows)
        "took": 7,
        "timed_out": False,
        "total": 3,
        "updated": 0,
        "created": 3,
        "deleted": 0,
        "batches": 1,
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": [],
    }
    status, started = Checked(cluster).post(
        "/_sim/tasks",
        body=json.dumps(
            {
                "node": "node-2",
                "action": "tasksim:wait/stored",
                "duration": "1s",
                "store_result": True,
                "response": response,
            }
        ).encode(),
        headers={"Content-Type": "application/json", "X-Opaque-Id": "stored-1"},
    )
    assert status == 200
    tid = started["task"]
    elapsed, status, body = timed(cluster, f"/_tasks/{tid}?wait_for_completion=true")
    assert status == 200 and elapsed < 1.0 + SLACK
    assert list(body) == ["completed", "task", "response"]
    assert body["completed"] is True and body["response"] == response
    assert task_id(body["task"]) == tid
    assert body["task"]["headers"] == {"X-Opaque-Id": "stored-1"}
    assert "resource_stats" not in body["task"]  # stored results are detailed without them
    _, again = Checked(cluster).get(f"/_tasks/{tid}")
    assert again == body
