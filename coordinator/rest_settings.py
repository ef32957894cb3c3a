"""REST handlers of the cluster settings: `PUT _cluster/settings` and `GET _cluster/settings`.

As OpenSearch's RestClusterUpdateSettingsAction / RestClusterGetSettingsAction: the body's
`persistent` and `transient` objects (flat or nested keys), the answer `{acknowledged, persistent,
transient}` with what the request set (`acknowledged: false` when a node did not apply the new
cluster state within `timeout`), `flat_settings`, `include_defaults` (a `defaults` section).
What a setting is and what an update does is decided by coordinator/settings.py; the settings live
in the cluster state's metadata (coordinator/cluster.py publishes them). Nothing here decides
behaviour.
"""

from __future__ import annotations

from typing import Any

from coordinator import settings
from coordinator.cluster import Cluster
from coordinator.http import RestRequest, RestResponse, Router
from simnode.errors import ActionRequestValidationError

SETTINGS_UPDATE_ACTION = "cluster:admin/settings/update"


def register(router: Router, cluster: Cluster) -> None:
    def node_settings() -> dict[str, settings.Value]:
        """The coordinating node's own settings (what `defaults` shows for them)."""
        return {"cluster.name": cluster.state.cluster_name, "node.name": cluster.local.local.name}

    async def get_settings(request: RestRequest) -> RestResponse:
        flat = request.params.param_bool("flat_settings", False)
        include_defaults = request.params.param_bool("include_defaults", False)
        for name in ("master_timeout", "cluster_manager_timeout", "timeout"):
            request.params.param_time(name)
        request.params.param_bool("local", False)
        request.finish()
        st = cluster.state
        persistent, transient = dict(st.persistent_settings), dict(st.transient_settings)
        body: dict[str, Any] = {
            "persistent": settings.render(persistent, flat_settings=flat),
            "transient": settings.render(transient, flat_settings=flat),
        }
        if include_defaults:
            found = settings.defaults(persistent, transient, node_settings())
            body["defaults"] = settings.render(found, flat_settings=flat)
        return RestResponse(body)

    async def put_settings(request: RestRequest) -> RestResponse:
        flat = request.params.param_bool("flat_settings", False)
        for name in ("master_timeout", "cluster_manager_timeout"):
            request.params.param_time(name)
        ack_timeout = request.params.param_time("timeout")
        request.finish(body_allowed=True)
        body = request.json_body()
        if not isinstance(body, dict):
            body = {}
        persistent = body.get("persistent") or {}
        transient = body.get("transient") or {}
        # ClusterUpdateSettingsRequest.validate: the settings, not the objects (`{"a": {}}` is none)
        if not settings.flatten(persistent) and not settings.flatten(transient):
            raise ActionRequestValidationError.of("no settings to update")
        me = cluster.local.register(
            SETTINGS_UPDATE_ACTION, local=False, headers=request.task_headers
        )
        try:
            result, acknowledged = await cluster.update_settings(
                persistent, transient, ack_timeout=ack_timeout
            )
        finally:
            cluster.local.unregister(me)
        return RestResponse(
            {
                "acknowledged": acknowledged,
                "persistent": settings.render(result.persistent_updates, flat_settings=flat),
                "transient": settings.render(result.transient_updates, flat_settings=flat),
            }
        )

    router.add("GET", "/_cluster/settings", get_settings)
    router.add("PUT", "/_cluster/settings", put_settings)
