"""`POST _tasks/<id>/_cancel?wait_for_completion=true` answers once the whole tree is done — children
and grandchildren on other nodes, a slow-to-stop one included — and not before (reference §3.3:
completion, not the lifting of the bans, is what the answer waits for)."""

from __future__ import annotations

import time

import grpc
import pytest

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import RunningCluster

pytestmark = pytest.mark.cluster

ONE_HOUR_MS = 3_600_000
LINGER_MS = 600


def spec(action: str, *children: pb.ChildSpec, linger_ms: int = 0) -> pb.TaskSpec:
    return pb.TaskSpec(
        action=action,
        cancellable=True,
        duration_millis=ONE_HOUR_MS,
        on_cancel="ignore" if linger_ms else "immediate",
        ignore_cancel_millis=linger_ms,
        children=list(children),
    )


def tree_actions(cluster: RunningCluster) -> list[str]:
    status, body = cluster.get("/_tasks?actions=test:wait/*&group_by=none")
    assert status == 200, body
    return sorted(t["action"] for t in body["tasks"])


def start_tree(cluster: RunningCluster, lingering: str = "") -> str:
    """root (node-1) → child (node-2) → leaves (node-3, node-1); root → child (node-3). The task
    named `lingering` keeps running for 600 ms after it is cancelled."""
    n1, n2, n3 = (cluster.node(f"node-{i}") for i in (1, 2, 3))

    def linger(name: str) -> int:
        return LINGER_MS if name == lingering else 0

    root = spec(
        "test:wait/root",
        pb.ChildSpec(
            node_id=n2.id,
            task=spec(
                "test:wait/child",
                pb.ChildSpec(node_id=n3.id, task=spec("test:wait/leaf", linger_ms=linger("leaf"))),
                pb.ChildSpec(node_id=n1.id, task=spec("test:wait/leaf")),
                linger_ms=linger("child"),
            ),
        ),
        pb.ChildSpec(node_id=n3.id, task=spec("test:wait/child")),
        linger_ms=linger("root"),
    )
    with grpc.insecure_channel(n1.address) as channel:
        task_id = pb_grpc.NodeStub(channel).StartTask(pb.RunTaskRequest(spec=root)).task_id
    deadline = time.monotonic() + 15
    while len(tree_actions(cluster)) != 5:
        assert time.monotonic() < deadline, tree_actions(cluster)
        time.sleep(0.02)
    return task_id


@pytest.mark.parametrize("lingering", ["", "leaf", "child", "root"])
def test_the_answer_comes_when_every_descendant_is_gone(
    cluster: RunningCluster, lingering: str
) -> None:
    root = start_tree(cluster, lingering)
    started = time.monotonic()
    status, body = cluster.post(f"/_tasks/{root}/_cancel?wait_for_completion=true&group_by=none")
    took = time.monotonic() - started
    assert status == 200, body
    assert [t["action"] for t in body["tasks"]] == ["test:wait/root"]
    assert tree_actions(cluster) == []
    if lingering:
        assert took >= LINGER_MS / 1000  # the lingering task was waited for


def test_a_cancelled_tree_leaves_the_nodes_ready_for_the_next_one(cluster: RunningCluster) -> None:
    for _ in range(3):
        root = start_tree(cluster)
        status, _ = cluster.post(f"/_tasks/{root}/_cancel?wait_for_completion=true")
        assert status == 200
        assert tree_actions(cluster) == []
