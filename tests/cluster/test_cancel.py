"""`POST _tasks/_cancel` against real node processes: the cancel fan-out, bans between nodes over
gRPC, what a cancelled tree does, and the exact failures (reference §3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.sim import bans, descendants, ids, start, tasks, wait_until
from tests.harness import RunningCluster, running_cluster

CANCEL = "cluster:admin/tasks/cancel"
BAN = "internal:admin/tasks/ban"
BY_USER = "by user request"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=4) as c:
        yield c


@pytest.fixture(autouse=True)
def no_leftovers(cluster: RunningCluster) -> Iterator[None]:
    """Each test starts with no simulated work and no bans, and cancels what it leaves."""
    yield
    cluster.post("/_tasks/_cancel")
    wait_until(lambda: not any(bans(cluster).values()), timeout=60)


def node_id(cluster: RunningCluster, name: str) -> str:
    return cluster.node(name).id


def cancel(cluster: RunningCluster, path: str, **kw: Any) -> dict[str, Any]:
    status, body = cluster.post(path, **kw)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def test_three_level_tree_over_four_nodes_cancelled_from_the_top(cluster: RunningCluster) -> None:
    root = start(
        cluster,
        {
            "node": "node-1",
            "action": "indices:data/write/reindex",
            "children": [
                {
                    "nodes": "node-2,node-3,node-4",
                    "action": "indices:data/read/search",
                    "children": [
                        {"nodes": "node-*", "action": "indices:data/read/search[phase/query]"}
                    ],
                }
            ],
        },
    )
    tree = wait_until(lambda: (d := descendants(cluster, root)) and len(d) == 1 + 3 + 12 and d)
    assert {t["node"] for t in tree} == {node_id(cluster, f"node-{i}") for i in range(1, 5)}

    started = time.monotonic()
    body = cancel(cluster, f"/_tasks/{root}/_cancel?wait_for_completion=true")
    assert time.monotonic() - started < 10
    node1 = node_id(cluster, "node-1")
    entry = body["nodes"][node1]["tasks"][root]
    assert entry["cancelled"] is True and entry["cancellable"] is True
    assert isinstance(entry["cancellation_time_millis"], int)
    assert list(body["nodes"]) == [node1]
    # Answered only when the whole tree is gone: no descendant remains on any node.
    assert not (ids(tasks(cluster)) & ids(tree))
    wait_until(lambda: not any(bans(cluster).values()))


def test_cancel_is_a_fan_out_with_bans_visible_in_tasks(cluster: RunningCluster) -> None:
    """`cluster:admin/tasks/cancel` → `cancel[n]` on the target node → `internal:admin/tasks/ban`
    on the child's node, all carrying the X-Opaque-Id of the cancel request."""
    root = start(
        cluster,
        {
            "node": "node-1",
            "children": [{"node": "node-2", "on_cancel": "ignore", "ignore_cancel_for": "3s"}],
        },
    )
    wait_until(lambda: len(descendants(cluster, root)) == 2)
    answer: dict[str, Any] = {}

    def cancel_and_wait() -> None:
        answer["body"] = cancel(
            cluster,
            f"/_tasks/{root}/_cancel?wait_for_completion=true",
            headers={"X-Opaque-Id": "cancel-1"},
        )

    waiter = threading.Thread(target=cancel_and_wait)
    waiter.start()
    try:

        def cancel_tasks() -> list[dict[str, Any]]:
            listed = tasks(cluster, actions=f"{CANCEL}*,{BAN}")
            actions = {t["action"] for t in listed}
            return listed if {CANCEL, CANCEL + "[n]", BAN} <= actions else []

        listed = wait_until(cancel_tasks)
    finally:
        waiter.join(timeout=30)
    coordinator = node_id(cluster, "coordinator")
    top = next(t for t in listed if t["action"] == CANCEL)
    node_level = next(t for t in listed if t["action"] == CANCEL + "[n]")
    ban = next(t for t in listed if t["action"] == BAN)
    assert top["node"] == coordinator and top["type"] == "transport"
    assert node_level["node"] == node_id(cluster, "node-1")
    assert node_level["parent_task_id"] == f"{coordinator}:{top['id']}"
    assert ban["node"] == node_id(cluster, "node-2") and "parent_task_id" not in ban
    assert not top["cancellable"] and not node_level["cancellable"] and not ban["cancellable"]
    for t in (top, node_level, ban):
        assert t["headers"] == {"X-Opaque-Id": "cancel-1"}
    assert root in answer["body"]["nodes"][node_id(cluster, "node-1")]["tasks"]


def test_unknown_id_node_failure(cluster: RunningCluster) -> None:
    node1 = node_id(cluster, "node-1")
    body = cancel(cluster, f"/_tasks/{node1}:99999/_cancel")
    assert body == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{node1}]",
                "node_id": node1,
                "caused_by": {
                    "type": "resource_not_found_exception",
                    "reason": f"task [{node1}:99999] is not found",
                },
            }
        ],
        "nodes": {},
    }


def test_non_cancellable_node_failure(cluster: RunningCluster) -> None:
    task = start(cluster, {"node": "node-2", "cancellable": False, "duration": "20s"})
    node2 = node_id(cluster, "node-2")
    body = cancel(cluster, f"/_tasks/{task}/_cancel")
    assert body == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{node2}]",
                "node_id": node2,
                "caused_by": {
                    "type": "illegal_argument_exception",
                    "reason": f"task [{task}] doesn't support cancellation",
                },
            }
        ],
        "nodes": {},
    }
    # ...and a cancel-all never lists it.
    assert task not in ids(
        [
            t
            for n in cancel(cluster, "/_tasks/_cancel")["nodes"].values()
            for t in n["tasks"].values()
        ]
    )


def test_no_such_node_and_filter_mismatch(cluster: RunningCluster) -> None:
    body = cancel(cluster, "/_tasks/nodeX:5/_cancel")
    assert body == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": "Failed node [nodeX]",
                "node_id": "nodeX",
                "caused_by": {
                    "type": "no_such_node_exception",
                    "reason": "No such node [nodeX]",
                    "node_id": "nodeX",
                },
            }
        ],
        "nodes": {},
    }
    task = start(cluster, {"node": "node-3", "action": "indices:data/read/search"})
    body = cancel(cluster, f"/_tasks/{task}/_cancel?actions=indices:data/write/*")
    assert body["node_failures"][0]["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": f"task [{task}] doesn't support this operation",
    }
    assert body["nodes"] == {}


def test_cancel_selects_by_actions_nodes_and_parent(cluster: RunningCluster) -> None:
    search = start(cluster, {"node": "node-1", "action": "indices:data/read/search"})
    reindex = start(cluster, {"node": "node-2", "action": "indices:data/write/reindex"})
    parent = start(
        cluster,
        {
            "node": "node-3",
            "action": "indices:data/write/update/byquery",
            "children": [{"nodes": "node-4", "action": "indices:data/read/search"}],
        },
    )
    plain = start(cluster, {"node": "node-4", "cancellable": False})
    wait_until(lambda: len(tasks(cluster, actions="indices:*,internal:*")) >= 5)

    body = cancel(cluster, "/_tasks/_cancel?actions=indices:data/write/reindex&group_by=none")
    assert [f"{t['node']}:{t['id']}" for t in body["tasks"]] == [reindex]

    body = cancel(cluster, f"/_tasks/_cancel?parent_task_id={parent}&group_by=none")
    (child,) = body["tasks"]
    assert child["parent_task_id"] == parent and child["node"] == node_id(cluster, "node-4")

    body = cancel(cluster, "/_tasks/_cancel?nodes=node-1&group_by=parents")
    assert list(body["tasks"]) == [search]
    assert "children" not in body["tasks"][search]

    # The parent's child was cancelled, so the parent failed with it and is gone.
    wait_until(lambda: parent not in ids(tasks(cluster)))
    other = start(cluster, {"node": "node-3"})
    body = cancel(cluster, "/_tasks/_cancel?group_by=none")
    cancelled = ids(body["tasks"])
    assert other in cancelled and plain not in cancelled
    assert all(t["cancellable"] and t["cancelled"] for t in body["tasks"])
    assert all("description" not in t and "status" not in t for t in body["tasks"])


def test_the_first_cancel_wins(cluster: RunningCluster) -> None:
    zombie = start(cluster, {"node": "node-2", "on_cancel": "ignore", "ignore_cancel_for": "5s"})
    node2 = node_id(cluster, "node-2")
    first = cancel(cluster, f"/_tasks/{zombie}/_cancel")["nodes"][node2]["tasks"][zombie]
    # The clock moved past the first cancellation: a second one that won would show a later time.
    wait_until(lambda: time.time() * 1000 > first["cancellation_time_millis"] + 5)
    second = cancel(cluster, f"/_tasks/{zombie}/_cancel")["nodes"][node2]["tasks"][zombie]
    assert first["cancellation_time_millis"] == second["cancellation_time_millis"]
    # A zombie keeps running, listed as cancelled (opensearch-project/sql#5647).
    (listed,) = [t for t in tasks(cluster, nodes="node-2") if f"{t['node']}:{t['id']}" == zombie]
    assert listed["cancelled"] is True


def test_a_banned_parent_fails_new_children_before_they_start(cluster: RunningCluster) -> None:
    """A child request in flight when the ban arrives: `Task cancelled before it started`."""
    parent = start(
        cluster,
        {
            "node": "node-1",
            "store_result": True,
            "children": [{"node": "node-2", "send_delay": "1500ms", "duration": "10s"}],
        },
    )
    node1 = node_id(cluster, "node-1")
    cancel(cluster, f"/_tasks/{parent}/_cancel")
    assert bans(cluster)["node-2"] == {parent: BY_USER}
    # The simulator's own door shows the same rule: a cancellable task under the banned parent...
    status, body = cluster.post(
        "/_sim/tasks",
        body=f'{{"node": "node-2", "parent_task_id": "{parent}"}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 500
    assert body["error"]["type"] == "task_cancelled_exception"
    assert body["error"]["reason"] == "Task cancelled before it started: by user request"
    # ...while a non-cancellable one registers normally.
    plain = start(cluster, {"node": "node-2", "parent_task_id": parent, "cancellable": False})
    assert plain.startswith(node_id(cluster, "node-2"))

    status, result = cluster.get(f"/_tasks/{parent}?wait_for_completion=true&timeout=20s")
    assert status == 200, result
    assert result["completed"] is True
    assert result["task"]["cancelled"] is True and result["task"]["node"] == node1
    assert result["error"] == {
        "type": "task_cancelled_exception",
        "reason": "Task cancelled before it started: by user request",
    }
    wait_until(lambda: bans(cluster)["node-2"] == {})


def test_a_cancelled_parent_starts_no_child(cluster: RunningCluster) -> None:
    """A parent that keeps running after its cancel (a zombie) cannot send new children."""
    parent = start(
        cluster,
        {
            "node": "node-1",
            "on_cancel": "ignore",
            "ignore_cancel_for": "2s",
            "store_result": True,
            "children": [
                {"node": "node-2", "cancellable": False, "duration": "1s"},
                {"node": "node-3", "phase": 1},
            ],
        },
    )
    wait_until(lambda: len(descendants(cluster, parent)) == 2)
    cancel(cluster, f"/_tasks/{parent}/_cancel")
    status, result = cluster.get(f"/_tasks/{parent}?wait_for_completion=true&timeout=20s")
    assert status == 200, result
    assert result["error"] == {
        "type": "task_cancelled_exception",
        "reason": "The parent task was cancelled, shouldn't start any child tasks, by user request",
    }


def test_bans_reach_grandchildren_and_are_lifted(cluster: RunningCluster) -> None:
    parent = start(
        cluster,
        {
            "node": "node-1",
            "children": [
                {
                    "node": "node-2",
                    "on_cancel": "ignore",
                    "ignore_cancel_for": "2s",
                    "children": [{"node": "node-3"}],
                }
            ],
        },
    )
    tree = wait_until(lambda: (d := descendants(cluster, parent)) and len(d) == 3 and d)
    child = next(f"{t['node']}:{t['id']}" for t in tree if t.get("parent_task_id") == parent)
    grandchild = next(f"{t['node']}:{t['id']}" for t in tree if t.get("parent_task_id") == child)
    cancel(cluster, f"/_tasks/{parent}/_cancel")
    held = bans(cluster)
    assert held["node-2"] == {parent: BY_USER}
    assert held["node-3"] == {child: BY_USER}
    assert held["node-1"] == {} and held["node-4"] == {} and held["coordinator"] == {}
    # The grandchild is gone at once; the zombie child lingers, cancelled.
    wait_until(lambda: grandchild not in ids(tasks(cluster)))
    assert child in ids(tasks(cluster))
    # When the zombie is done, every ban is lifted and nothing of the tree is left.
    wait_until(lambda: not any(bans(cluster).values()))
    assert not (ids(tasks(cluster)) & {parent, child, grandchild})


def test_wait_for_completion_waits_for_the_whole_tree(cluster: RunningCluster) -> None:
    def zombie_tree(ignore_cancel_for: str) -> str:
        child = {"node": "node-4", "on_cancel": "ignore", "ignore_cancel_for": ignore_cancel_for}
        return start(cluster, {"node": "node-1", "children": [child]})

    # Without wait_for_completion the answer does not wait for a zombie child: it comes while the
    # child (which outlives its cancellation by 10 s) is still there, cancelled.
    quick = zombie_tree("10s")
    slow = zombie_tree("1500ms")
    wait_until(
        lambda: len(descendants(cluster, quick)) == 2 and len(descendants(cluster, slow)) == 2
    )

    cancel(cluster, f"/_tasks/{quick}/_cancel")
    left = descendants(cluster, quick)
    assert len(left) == 2 and all(t["cancelled"] for t in left)  # still there, cancelled

    # With it, the answer comes once the whole tree is gone, and not before the zombie's 1.5 s.
    started = time.monotonic()
    cancel(cluster, f"/_tasks/{slow}/_cancel?wait_for_completion=true")
    assert time.monotonic() - started >= 1.3
    assert descendants(cluster, slow) == []


def test_opensearch_py_cancel_and_get(cluster: RunningCluster) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[cluster.url])
    root = start(
        cluster,
        {"node": "node-3", "action": "indices:data/read/search", "children": [{"nodes": "node-4"}]},
    )
    wait_until(lambda: len(descendants(cluster, root)) == 2)
    got = client.tasks.get(task_id=root)
    assert got["completed"] is False and got["task"]["cancellable"] is True
    answer = client.tasks.cancel(task_id=root, wait_for_completion=True)
    (entry,) = [t for n in answer["nodes"].values() for t in n["tasks"].values()]
    assert entry["cancelled"] is True and f"{entry['node']}:{entry['id']}" == root
    assert descendants(cluster, root) == []
    answer = client.tasks.cancel(task_id=root)
    assert answer["node_failures"][0]["caused_by"]["reason"] == f"task [{root}] is not found"
    more = [
        start(cluster, {"node": n, "action": "indices:data/read/search"})
        for n in ("node-1", "node-2")
    ]
    answer = client.tasks.cancel(actions="indices:data/read/search", nodes="node-1")
    assert {k for n in answer["nodes"].values() for k in n["tasks"]} == {more[0]}
