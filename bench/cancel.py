"""Cancel propagation: `POST _tasks/<root>/_cancel?wait_for_completion=true` → every descendant gone.

A cancellable tree is started on the first node with the node `StartTask` RPC: the root has one
child on each node, and the remaining descendants hang under those children, spread round-robin over
the nodes (so cancellation crosses nodes twice: bans to the children's nodes, then to the
grandchildren's). Every task runs until cancelled. Once `GET _tasks` lists the whole tree, the clock
starts; the cancel request waits for completion, and a listing afterwards must show no task of the
tree — if one is still listed, listings repeat and the time runs to the first empty one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc

from bench import procs
from bench.measure import CHANNEL_OPTIONS, HttpClient, Summary
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc

ROOT_ACTION = "bench:cancel/root"
CHILD_ACTION = "bench:cancel/child"
LEAF_ACTION = "bench:cancel/leaf"
TREE_PATH = "/_tasks?actions=bench:cancel/*&group_by=none"
ONE_HOUR_MS = 3_600_000
SETTLE_TIMEOUT = 60.0


def _spec(action: str, children: list[pb.ChildSpec] | None = None) -> pb.TaskSpec:
    return pb.TaskSpec(
        action=action,
        cancellable=True,
        duration_millis=ONE_HOUR_MS,
        on_cancel="immediate",
        children=children or [],
    )


def tree(node_ids: list[str], descendants: int) -> pb.TaskSpec:
    """A root with `descendants` descendants over `node_ids` (children one per node, round-robin)."""
    width = min(len(node_ids), descendants)
    rest = descendants - width
    children = []
    for i in range(width):
        count = rest // width + (1 if i < rest % width else 0)
        grandchildren = [
            pb.ChildSpec(node_id=node_ids[(i + 1 + j) % len(node_ids)], task=_spec(LEAF_ACTION))
            for j in range(count)
        ]
        children.append(pb.ChildSpec(node_id=node_ids[i], task=_spec(CHILD_ACTION, grandchildren)))
    return _spec(ROOT_ACTION, children)


def _listed(http: HttpClient) -> int:
    return len(json.loads(http.get_ok(TREE_PATH))["tasks"])


def _wait_for(http: HttpClient, count: int) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while (found := _listed(http)) != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {count} tasks of the tree, found {found}")
        time.sleep(0.01)


def once(cluster: procs.Cluster, descendants: int) -> dict[str, float]:
    nodes = cluster.data_nodes
    http = HttpClient(cluster.port)
    channel = grpc.insecure_channel(nodes[0].address, options=CHANNEL_OPTIONS)
    try:
        spec = tree([n.id for n in nodes], descendants)
        root = pb_grpc.NodeStub(channel).StartTask(pb.RunTaskRequest(spec=spec)).task_id
        _wait_for(http, descendants + 1)
        t0 = time.perf_counter()
        status, body = http.request(
            "POST", f"/_tasks/{root}/_cancel?wait_for_completion=true&group_by=none"
        )
        acknowledged = time.perf_counter() - t0
        if status != 200 or [t["action"] for t in json.loads(body)["tasks"]] != [ROOT_ACTION]:
            raise RuntimeError(f"cancel of {root} answered {status}: {body[:300]!r}")
        gone = acknowledged
        while _listed(http):
            gone = time.perf_counter() - t0
            if gone > SETTLE_TIMEOUT:
                raise RuntimeError(f"the tree of {root} is still listed after {gone:.1f}s")
        return {"acknowledged": acknowledged, "gone": gone}
    finally:
        channel.close()
        http.close()


def run(cluster: procs.Cluster, *, descendants: list[int], reps: int) -> list[dict[str, Any]]:
    out = []
    for count in descendants:
        runs = [once(cluster, count) for _ in range(reps)]
        out.append(
            {
                "descendants": count,
                "nodes": len(cluster.data_nodes),
                "gone_ms": Summary.of([r["gone"] for r in runs]).as_dict(),
                "acknowledged_ms": Summary.of([r["acknowledged"] for r in runs]).as_dict(),
                "still_listed_after_ack": sum(r["gone"] > r["acknowledged"] for r in runs),
            }
        )
    return out
