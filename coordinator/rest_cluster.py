"""The cluster-level endpoints clients need to connect: `GET /`, `_nodes`, `_cluster/health`,
`_cluster/state`. They answer from the cluster state the coordinator publishes, in OpenSearch's
shapes, so that opensearch-py and OpenSearch's own REST tests find what they look for.
"""

from __future__ import annotations

import hashlib
from typing import Any

from coordinator import settings
from coordinator.cluster import Cluster
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.resolve import resolve_nodes
from simnode.discovery import DiscoveryNode

OPENSEARCH_VERSION = "2.19.0"
LUCENE_VERSION = "9.12.1"
BUILD_HASH = hashlib.sha1(b"tasksim").hexdigest()
BUILD_DATE = "2025-02-01T00:00:00.000000000Z"

# Parameters OpenSearch's cluster endpoints accept; tasksim's cluster is always green and settled,
# so the wait_* ones are satisfied at once.
_HEALTH_PARAMS = (
    "level",
    "local",
    "master_timeout",
    "cluster_manager_timeout",
    "timeout",
    "wait_for_active_shards",
    "wait_for_nodes",
    "wait_for_events",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
    "wait_for_status",
    "awareness_attribute",
    "expand_wildcards",
    "ensure_node_commissioned",
)
_STATE_PARAMS = (
    "local",
    "master_timeout",
    "cluster_manager_timeout",
    "flat_settings",
    "wait_for_metadata_version",
    "wait_for_timeout",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
)


def _node_info(node: DiscoveryNode) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": node.name,
        "transport_address": node.transport_address,
        "host": node.host,
        "ip": node.ip,
        "version": OPENSEARCH_VERSION,
        "build_type": "tar",
        "build_hash": BUILD_HASH,
        "roles": list(node.roles),
    }
    if node.attributes:
        out["attributes"] = dict(node.attributes)
    return out


def register(router: Router, cluster: Cluster) -> None:
    async def root(request: RestRequest) -> RestResponse:
        request.finish()
        me = cluster.local.local
        return RestResponse(
            {
                "name": me.name,
                "cluster_name": cluster.state.cluster_name,
                "cluster_uuid": cluster.state.cluster_uuid,
                "version": {
                    "distribution": "opensearch",
                    "number": OPENSEARCH_VERSION,
                    "build_type": "tar",
                    "build_hash": BUILD_HASH,
                    "build_date": BUILD_DATE,
                    "build_snapshot": False,
                    "lucene_version": LUCENE_VERSION,
                    "minimum_wire_compatibility_version": "7.10.0",
                    "minimum_index_compatibility_version": "7.0.0",
                },
                "tagline": "The OpenSearch Project: https://opensearch.org/",
            }
        )

    async def nodes_info(request: RestRequest) -> RestResponse:
        for p in ("timeout", "flat_settings"):
            request.params.param(p)
        selectors = tuple(s for s in request.path_params.get("node_id", "").split(",") if s)
        request.finish()
        ids = resolve_nodes(cluster.state, selectors, cluster.local.local.id)
        nodes = {i: _node_info(n) for i in ids if (n := cluster.state.get(i)) is not None}
        return RestResponse(
            {
                "_nodes": {"total": len(nodes), "successful": len(nodes), "failed": 0},
                "cluster_name": cluster.state.cluster_name,
                "nodes": nodes,
            }
        )

    async def health(request: RestRequest) -> RestResponse:
        for p in _HEALTH_PARAMS:
            request.params.param(p)
        request.finish()
        state = cluster.state
        return RestResponse(
            {
                "cluster_name": state.cluster_name,
                "status": "green",
                "timed_out": False,
                "number_of_nodes": len(state.nodes),
                "number_of_data_nodes": sum(1 for n in state.nodes if n.has_role("data")),
                "discovered_master": bool(state.cluster_manager_node_id),
                "discovered_cluster_manager": bool(state.cluster_manager_node_id),
                "active_primary_shards": 0,
                "active_shards": 0,
                "relocating_shards": 0,
                "initializing_shards": 0,
                "unassigned_shards": 0,
                "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0,
            }
        )

    async def state(request: RestRequest) -> RestResponse:
        for p in _STATE_PARAMS:
            request.params.param(p)
        request.finish()
        st = cluster.state
        metrics = set(request.path_params.get("metric", "_all").split(","))
        everything = "_all" in metrics
        body: dict[str, Any] = {"cluster_name": st.cluster_name, "cluster_uuid": st.cluster_uuid}
        if everything or "version" in metrics:
            body["version"] = st.version
            body["state_uuid"] = hashlib.sha1(
                f"{st.cluster_uuid}:{st.version}".encode()
            ).hexdigest()[:22]
        if everything or "master_node" in metrics or "cluster_manager_node" in metrics:
            body["master_node"] = st.cluster_manager_node_id
            body["cluster_manager_node"] = st.cluster_manager_node_id
        if everything or "blocks" in metrics:
            body["blocks"] = {}
        if everything or "nodes" in metrics:
            body["nodes"] = {
                n.id: {
                    "name": n.name,
                    "ephemeral_id": n.ephemeral_id or n.id,
                    "transport_address": n.transport_address,
                    "attributes": dict(n.attributes),
                }
                for n in st.nodes
            }
        if everything or "metadata" in metrics:
            metadata: dict[str, Any] = {"cluster_uuid": st.cluster_uuid}
            # Metadata.toXContent: the persistent settings as `settings`, the transient ones as
            # `transient_settings`, flat, each only when there are some.
            if st.persistent_settings:
                metadata["settings"] = settings.render(
                    dict(st.persistent_settings), flat_settings=True
                )
            if st.transient_settings:
                metadata["transient_settings"] = settings.render(
                    dict(st.transient_settings), flat_settings=True
                )
            metadata["indices"] = {}
            body["metadata"] = metadata
        if everything or "routing_table" in metrics:
            body["routing_table"] = {"indices": {}}
        return RestResponse(body)

    router.add("GET", "/", root)
    router.add("HEAD", "/", root)
    router.add("GET", "/_nodes", nodes_info)
    router.add("GET", "/_nodes/{node_id}", nodes_info)
    router.add("GET", "/_cluster/health", health)
    router.add("GET", "/_cluster/state", state)
    router.add("GET", "/_cluster/state/{metric}", state)
