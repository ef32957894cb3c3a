"""`timeout` and node failures with real processes: a paused node (SIGSTOP) is one
`failed_node_exception` caused by `receive_timeout_transport_exception`, the other nodes' tasks
still come back, and the answer arrives within the timeout plus a small slack; a killed node fails
fast (`node_not_connected_exception`, or `node_disconnected_exception` under a request in flight);
without a timeout a hung node is failed when the follower checker removes it from the cluster.

Killed-node tests run their own cluster with `--no-fault-detection`, so that the dead node stays
in the cluster state (with fault detection a refused connection removes it within a second, and
the list no longer asks it). Every paused process is resumed in `finally`.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from tests.harness import RunningCluster, running_cluster
from tests.openapi import Checked
from tests.support import spec, start, wait_for_tasks

LIST_N = "cluster:monitor/tasks/lists[n]"
SLACK = 5.0  # generous: the machine is shared (2 cores, other clusters running)


@contextmanager
def paused(cluster: RunningCluster, name: str) -> Iterator[psutil.Process]:
    proc = cluster.node_process(name)
    proc.suspend()
    try:
        yield proc
    finally:
        proc.resume()


def timed(cluster: RunningCluster, path: str, **kw: Any) -> tuple[float, int, Any]:
    t0 = time.monotonic()
    status, body = Checked(cluster).get(path, **kw)
    return time.monotonic() - t0, status, body


def wait_until(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Poll `check` until it is truthy; generous, for a loaded machine."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill(cluster: RunningCluster, name: str) -> None:
    """SIGKILL the node and wait until it is gone: its transport port refuses connections."""
    host, port = cluster.node(name).address.rsplit(":", 1)
    cluster.node_process(name).kill()

    def refused() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False

    wait_until(refused, f"{name}'s port to close")


WAITER = "the-waiting-list"


def waiting_on(cluster: RunningCluster, name: str) -> bool:
    """The `lists[n]` child of the request tagged `WAITER` is registered on `name`."""
    _, body = cluster.get(f"/_tasks?nodes={name}&actions={LIST_N}&group_by=none&timeout=10s")
    return any(t.get("headers", {}).get("X-Opaque-Id") == WAITER for t in body["tasks"])


def timeout_reason(cluster: RunningCluster, name: str, action: str) -> re.Pattern[str]:
    node = cluster.node(name)
    return re.compile(
        rf"\[{name}\]\[{re.escape(node.address)}\]\[{re.escape(action)}\] "
        r"request_id \[\d+\] timed out after \[(\d+)ms\]"
    )


def assert_timed_out(
    cluster: RunningCluster, failure: dict[str, Any], name: str, action: str, timeout_ms: int
) -> None:
    node = cluster.node(name)
    assert list(failure) == ["type", "reason", "node_id", "caused_by"]
    assert failure["type"] == "failed_node_exception"
    assert failure["reason"] == f"Failed node [{node.id}]"
    assert failure["node_id"] == node.id
    cause = failure["caused_by"]
    assert list(cause) == ["type", "reason"]
    assert cause["type"] == "receive_timeout_transport_exception"
    m = timeout_reason(cluster, name, action).fullmatch(cause["reason"])
    assert m is not None, cause["reason"]
    assert timeout_ms <= int(m.group(1)) < timeout_ms + SLACK * 1000


def test_paused_node_times_out_and_the_others_answer(cluster: RunningCluster) -> None:
    with paused(cluster, "node-2"):
        elapsed, status, body = timed(cluster, "/_tasks?timeout=2s&group_by=none")
    assert status == 200
    assert 2.0 <= elapsed < 2.0 + SLACK
    assert list(body) == ["node_failures", "tasks"]
    (failure,) = body["node_failures"]
    assert_timed_out(cluster, failure, "node-2", LIST_N, 2000)
    answered = {t["node"] for t in body["tasks"] if t["action"] == LIST_N}
    assert answered == {cluster.node(n).id for n in ("coordinator", "node-1", "node-3")}


def test_paused_node_grouped_by_nodes(cluster: RunningCluster) -> None:
    with paused(cluster, "node-3"):
        elapsed, status, body = timed(cluster, "/_tasks?timeout=1500ms")
    assert status == 200
    assert 1.5 <= elapsed < 1.5 + SLACK
    assert list(body) == ["node_failures", "nodes"]
    assert_timed_out(cluster, body["node_failures"][0], "node-3", LIST_N, 1500)
    assert cluster.node("node-3").id not in body["nodes"]
    assert len(body["nodes"]) == 3


def test_two_paused_nodes_are_two_failures(cluster: RunningCluster) -> None:
    with paused(cluster, "node-1"), paused(cluster, "node-3"):
        elapsed, status, body = timed(
            cluster, f"/_tasks?timeout=1s&nodes=node-*&group_by=parents&actions={LIST_N}"
        )
    assert status == 200 and elapsed < 1.0 + SLACK
    assert [f["node_id"] for f in body["node_failures"]] == [
        cluster.node("node-1").id,
        cluster.node("node-3").id,
    ]
    (root,) = body["tasks"].values()  # node-2's [n] child: its parent was not asked
    assert root["node"] == cluster.node("node-2").id


def test_the_cluster_answers_normally_after_resume(cluster: RunningCluster) -> None:
    with paused(cluster, "node-2"):
        timed(cluster, "/_tasks?timeout=500ms")
    elapsed, status, body = timed(cluster, "/_tasks?timeout=5s")
    assert status == 200 and "node_failures" not in body and elapsed < SLACK
    assert len(body["nodes"]) == 4


def test_get_task_on_a_paused_node_times_out_with_500(cluster: RunningCluster) -> None:
    (tid,) = start(cluster, "node-2", spec("indices:data/read/search"))
    wait_for_tasks(cluster, "indices:data/read/search", 1)
    with paused(cluster, "node-2"):
        elapsed, status, body = timed(cluster, f"/_tasks/{tid}?timeout=1s")
    assert status == 500 and 1.0 <= elapsed < 1.0 + SLACK
    error = body["error"]
    assert error["type"] == "receive_timeout_transport_exception"
    assert timeout_reason(cluster, "node-2", "cluster:monitor/task/get").fullmatch(error["reason"])


def test_cat_tasks_with_a_paused_node(cluster: RunningCluster) -> None:
    with paused(cluster, "node-1"):
        elapsed, status, body = timed(cluster, "/_cat/tasks?timeout=1s&format=json&h=n,ac")
    assert status == 200 and elapsed < 1.0 + SLACK
    assert {r["n"] for r in body if r["ac"] == LIST_N} == {"coordinator", "node-2", "node-3"}


def test_without_timeout_a_hung_node_fails_when_it_leaves_the_cluster(
    cluster: RunningCluster,
) -> None:
    # follower checks: every 1 s, 10 s timeout, 3 failures -> the node leaves after about 33 s
    with paused(cluster, "node-3"):
        elapsed, status, body = timed(cluster, "/_tasks?group_by=none")
        _, _, later = timed(cluster, "/_tasks?group_by=none")
    assert status == 200
    assert 25 < elapsed < 90
    (failure,) = body["node_failures"]
    node = cluster.node("node-3")
    assert failure["node_id"] == node.id
    assert failure["caused_by"] == {
        "type": "node_disconnected_exception",
        "reason": f"[node-3][{node.address}][{LIST_N}] disconnected",
    }
    # out of the cluster: no longer asked, no failure
    assert "node_failures" not in later
    assert node.id not in {t["node"] for t in later["tasks"]}
    # resumed, it joins again
    wait_until(
        lambda: (
            node.id
            in {t["node"] for t in timed(cluster, "/_tasks?group_by=none&timeout=5s")[2]["tasks"]}
        ),
        "node-3 to join again",
    )


# -- killed nodes -------------------------------------------------------------------------------


def test_killed_node_fails_fast_with_and_without_timeout() -> None:
    with running_cluster("--no-fault-detection") as cluster:
        node = cluster.node("node-3")
        kill(cluster, "node-3")
        # The coordinator's connection may learn of the death from a first request (a request
        # racing the reset is `node_disconnected`): wait until node-3 is reported failed at all.
        wait_until(
            lambda: "node_failures" in timed(cluster, "/_tasks?group_by=none&timeout=10s")[2],
            "node-3 to be reported failed",
        )
        for path in ("/_tasks?group_by=none", "/_tasks?group_by=none&timeout=10s"):
            elapsed, status, body = timed(cluster, path)
            assert status == 200
            assert elapsed < SLACK
            assert body["node_failures"] == [
                {
                    "type": "failed_node_exception",
                    "reason": f"Failed node [{node.id}]",
                    "node_id": node.id,
                    "caused_by": {
                        "type": "node_not_connected_exception",
                        "reason": f"[node-3][{node.address}] Node not connected",
                    },
                }
            ]
            answered = {t["node"] for t in body["tasks"] if t["action"] == LIST_N}
            assert answered == {cluster.node(n).id for n in ("coordinator", "node-1", "node-2")}


def test_node_killed_under_a_request_is_disconnected() -> None:
    with running_cluster("--no-fault-detection") as cluster:
        (tid,) = start(cluster, "node-3", spec("indices:data/write/reindex"))
        wait_for_tasks(cluster, "indices:data/write/reindex", 1)
        answer: dict[str, Any] = {}

        def waiting() -> None:
            answer["result"] = timed(
                cluster,
                "/_tasks?wait_for_completion=true&actions=indices:*&nodes=node-3&group_by=none",
                headers={"X-Opaque-Id": WAITER},
            )
            answer["at"] = time.monotonic()

        thread = threading.Thread(target=waiting, daemon=True)
        thread.start()
        # The wait has reached node-3: its `lists[n]` child waits there for the reindex.
        wait_until(lambda: waiting_on(cluster, "node-3"), "the wait to reach node-3")
        killed_at = time.monotonic()
        kill(cluster, "node-3")
        thread.join(60)
        assert not thread.is_alive()
        _, status, body = answer["result"]
        node = cluster.node("node-3")
        assert status == 200 and answer["at"] - killed_at < SLACK
        assert body == {
            "node_failures": [
                {
                    "type": "failed_node_exception",
                    "reason": f"Failed node [{node.id}]",
                    "node_id": node.id,
                    "caused_by": {
                        "type": "node_disconnected_exception",
                        "reason": f"[node-3][{node.address}][{LIST_N}] disconnected",
                    },
                }
            ],
            "tasks": [],
        }
        assert tid.startswith(node.id + ":")


def test_killed_node_leaves_the_cluster_with_fault_detection() -> None:
    with running_cluster() as cluster:
        node = cluster.node("node-2")
        cluster.node_process("node-2").kill()

        def left() -> bool:
            _, status, body = timed(cluster, "/_tasks?group_by=none&timeout=5s")
            assert status == 200
            return node.id not in {t["node"] for t in body["tasks"]} and "node_failures" not in body

        wait_until(left, "node-2 to leave the cluster")
        _, _, nodes = timed(cluster, f"/_tasks?nodes={node.id}")
        assert nodes == {"nodes": {}}
