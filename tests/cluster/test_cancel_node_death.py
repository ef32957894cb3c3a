"""What a parent's node dying does to its children (reference §3.4): children received over the
transport are cancelled when the channel closes (`channel was closed`), and bans set by a node are
dropped when it leaves the cluster. Each test kills a node, so each gets its own cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.sim import bans, descendants, ids, start, tasks, wait_until
from tests.harness import RunningCluster, running_cluster


@pytest.fixture
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=3) as c:
        yield c


def test_children_of_a_dead_parent_are_cancelled(cluster: RunningCluster) -> None:
    parent = start(
        cluster,
        {
            "node": "node-1",
            "children": [
                {"node": "node-2", "store_result": True, "children": [{"node": "node-3"}]}
            ],
        },
    )
    tree = wait_until(lambda: (d := descendants(cluster, parent)) and len(d) == 3 and d)
    child = next(f"{t['node']}:{t['id']}" for t in tree if t.get("parent_task_id") == parent)
    grandchild = next(f"{t['node']}:{t['id']}" for t in tree if t.get("parent_task_id") == child)

    cluster.node_process("node-1").kill()

    status, result = cluster.get(f"/_tasks/{child}?wait_for_completion=true&timeout=20s")
    assert status == 200, result
    assert result["completed"] is True
    assert result["task"]["cancelled"] is True
    assert result["error"] == {
        "type": "task_cancelled_exception",
        "reason": "cancelled task with reason: channel was closed",
    }
    wait_until(lambda: not (ids(tasks(cluster)) & {child, grandchild}))
    wait_until(lambda: not any(bans(cluster).values()))


def test_bans_of_a_node_that_left_are_dropped(cluster: RunningCluster) -> None:
    parent = start(
        cluster,
        {"node": "node-1", "children": [{"node": "node-2", "on_cancel": "ignore"}]},
    )
    wait_until(lambda: len(descendants(cluster, parent)) == 2)
    status, _ = cluster.post(f"/_tasks/{parent}/_cancel")
    assert status == 200
    assert bans(cluster)["node-2"] == {parent: "by user request"}

    cluster.node_process("node-1").kill()

    # node-1 leaves the cluster (follower checks), and node-2 drops the ban node-1 had set.
    wait_until(lambda: "node-1" not in bans(cluster), timeout=30)
    wait_until(lambda: bans(cluster)["node-2"] == {}, timeout=30)
