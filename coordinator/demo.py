"""`tasksim up --demo`: long-running simulated work, so that `_tasks` shows more than itself.

A cancellable `indices:data/write/reindex` on the first node with a scroll search (cancellable) and
a bulk request (not cancellable, with a shard-level `bulk[s]` child) on the other nodes, and a
cancellable search with query-phase children. They run for ten minutes unless cancelled.
"""

from __future__ import annotations

import json

from coordinator.cluster import Cluster
from simnode._wire import node_pb2 as pb

TEN_MINUTES_MS = 10 * 60 * 1000


def _spec(
    action: str,
    *,
    cancellable: bool,
    description: str = "",
    children: list[pb.ChildSpec] | None = None,
    status: dict[str, object] | None = None,
) -> pb.TaskSpec:
    spec = pb.TaskSpec(
        action=action,
        cancellable=cancellable,
        duration_millis=TEN_MINUTES_MS,
        description=description,
        children=children or [],
        on_cancel="immediate",
    )
    if status is not None:
        spec.status_json = json.dumps(status)
    return spec


def demo_trees(node_ids: list[str]) -> list[tuple[str, pb.TaskSpec]]:
    """(node id, tree) pairs; children go round-robin over the other nodes."""
    first = node_ids[0]
    others = node_ids[1:] or node_ids

    def pick(i: int) -> str:
        return others[i % len(others)]

    reindex_status = {
        "total": 1000000,
        "updated": 0,
        "created": 12000,
        "deleted": 0,
        "batches": 13,
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
    }
    reindex = _spec(
        "indices:data/write/reindex",
        cancellable=True,
        description="reindex from [logs-2026] to [logs-2026-v2]",
        status=reindex_status,
        children=[
            pb.ChildSpec(
                node_id=pick(0),
                task=_spec(
                    "indices:data/read/search",
                    cancellable=True,
                    description="indices[logs-2026], search_type[QUERY_THEN_FETCH], scroll[5m]",
                ),
            ),
            pb.ChildSpec(
                node_id=pick(1),
                task=_spec(
                    "indices:data/write/bulk",
                    cancellable=False,
                    description="requests[1000], indices[logs-2026-v2]",
                    children=[
                        pb.ChildSpec(
                            node_id=pick(0),
                            task=_spec(
                                "indices:data/write/bulk[s]",
                                cancellable=False,
                                description="requests[500], index[logs-2026-v2][0]",
                            ),
                        )
                    ],
                ),
            ),
        ],
    )
    search_root = node_ids[1] if len(node_ids) > 1 else first
    search = _spec(
        "indices:data/read/search",
        cancellable=True,
        description='indices[orders], search_type[QUERY_THEN_FETCH], source[{"size":10}]',
        children=[
            pb.ChildSpec(
                node_id=n,
                task=_spec(
                    "indices:data/read/search[phase/query]",
                    cancellable=True,
                    description="shardId[[orders][0]]",
                ),
            )
            for n in node_ids
        ],
    )
    return [(first, reindex), (search_root, search)]


async def start_demo(cluster: Cluster) -> list[str]:
    """Start the demo trees on the data nodes; returns the root task ids."""
    data_nodes = [n.id for n in cluster.state.nodes if n.id != cluster.local.local.id]
    started = []
    for node_id, spec in demo_trees(data_nodes or [cluster.local.local.id]):
        node = cluster.state.get(node_id)
        assert node is not None
        answer = await cluster.transport.call(
            node, "StartTask", pb.RunTaskRequest(spec=spec), timeout=30.0
        )
        started.append(answer.task_id)
    return started
