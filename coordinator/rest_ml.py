"""REST handlers of ML Commons (`/_plugins/_ml/...`) and of the ML cluster settings.

Routes, parameters and bodies follow ML Commons' Rest*Action classes: register, deploy, undeploy
and train a model, get a model, get/delete/search/cancel ML tasks. `PUT/GET _cluster/settings`
knows the settings of coordinator/ml_state.py `SETTINGS` only (ML Commons' `plugins.ml_commons.*`
and tasksim's `tasksim.ml.*`); any other setting is `not recognized`. The work is done by
coordinator/ml.py; nothing here decides behaviour.
"""

from __future__ import annotations

from typing import Any

from coordinator.cluster import Cluster
from coordinator.documents import ParsingError
from coordinator.http import RestRequest, RestResponse, Router, parse_content_to_map
from coordinator.ml import MlService
from coordinator.ml_state import SETTINGS, nest_settings
from simnode.errors import ActionRequestValidationError, IllegalArgumentError

SETTINGS_UPDATE_ACTION = "cluster:admin/settings/update"


def _prepare(request: RestRequest) -> Any:
    """Read the body (consuming `source`, as `prepareRequest` does), then run the REST checks."""
    body = _body(request)
    request.finish(body_allowed=True)
    return body


def _body(request: RestRequest) -> Any:
    """`contentOrSourceParamParser`: the body, else the `source` parameter."""
    body = request.json_body()
    if body is None:
        source = request.params.param("source")
        if source:
            body = parse_content_to_map(source)
    return body


def _id_list(body: Any, key: str) -> list[str]:
    if not isinstance(body, dict) or body.get(key) is None:
        return []
    value = body[key]
    if not isinstance(value, list):
        raise IllegalArgumentError(f"[{key}] must be an array")
    return [str(v) for v in value]


def register(router: Router, cluster: Cluster) -> MlService:
    ml = MlService(cluster)

    async def register_model(request: RestRequest) -> RestResponse:
        body = _prepare(request)
        ml.start()
        return RestResponse(ml.register_model(body, request.task_headers))

    async def deploy_model(request: RestRequest) -> RestResponse:
        body = _prepare(request)
        ml.start()
        return RestResponse(
            ml.deploy_model(request.path_params["model_id"], body, request.task_headers)
        )

    async def undeploy_model(request: RestRequest) -> RestResponse:
        body = _prepare(request)
        ml.start()
        model_id = request.path_params.get("model_id")
        model_ids = [model_id] if model_id else _id_list(body, "model_ids")
        node_ids = _id_list(body, "node_ids")
        return RestResponse(await ml.undeploy_models(model_ids, node_ids, request.task_headers))

    async def get_model(request: RestRequest) -> RestResponse:
        request.finish()
        ml.start()
        return RestResponse(ml.get_model(request.path_params["model_id"], request.task_headers))

    async def train(request: RestRequest) -> RestResponse:
        is_async = request.params.param_bool("async", False)
        body = _prepare(request)
        ml.start()
        return RestResponse(
            await ml.train(request.path_params["algorithm"], body, is_async, request.task_headers)
        )

    async def get_task(request: RestRequest) -> RestResponse:
        request.finish()
        ml.start()
        return RestResponse(ml.get_task(request.path_params["task_id"], request.task_headers))

    async def delete_task(request: RestRequest) -> RestResponse:
        request.finish()
        ml.start()
        return RestResponse(ml.delete_task(request.path_params["task_id"], request.task_headers))

    async def search_tasks(request: RestRequest) -> RestResponse:
        body = _prepare(request)
        ml.start()
        try:
            return RestResponse(ml.search_tasks(body, request.task_headers))
        except ParsingError as e:  # with the line and column of the offending token
            raise e.located(request.body or request.params.peek("source")) from None

    async def cancel_task(request: RestRequest) -> RestResponse:
        request.finish()
        ml.start()
        return RestResponse(ml.cancel_task(request.path_params["task_id"], request.task_headers))

    # -- _cluster/settings (the ML settings) -----------------------------------------------------

    def _render(flat: dict[str, Any], flat_settings: bool) -> dict[str, Any]:
        if flat_settings:
            return {
                k: (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in sorted(flat.items())
            }
        return nest_settings(flat)

    async def get_settings(request: RestRequest) -> RestResponse:
        flat = request.params.param_bool("flat_settings", False)
        defaults = request.params.param_bool("include_defaults", False)
        for name in ("master_timeout", "cluster_manager_timeout", "timeout"):
            request.params.param_time(name)
        request.params.param_bool("local", False)
        request.finish()
        body: dict[str, Any] = {
            "persistent": _render(ml.settings.persistent, flat),
            "transient": _render(ml.settings.transient, flat),
        }
        if defaults:
            body["defaults"] = _render(
                {
                    name: s.default
                    for name, s in SETTINGS.items()
                    if name not in ml.settings.persistent and name not in ml.settings.transient
                },
                flat,
            )
        return RestResponse(body)

    async def put_settings(request: RestRequest) -> RestResponse:
        flat = request.params.param_bool("flat_settings", False)
        for name in ("master_timeout", "cluster_manager_timeout", "timeout"):
            request.params.param_time(name)
        request.finish(body_allowed=True)
        body = request.json_body()
        if not isinstance(body, dict):
            body = {}
        persistent = body.get("persistent") or {}
        transient = body.get("transient") or {}
        if not persistent and not transient:
            raise ActionRequestValidationError.of("no settings to update")
        me = cluster.local.register(
            SETTINGS_UPDATE_ACTION, local=False, headers=request.task_headers
        )
        try:
            # Validate both scopes before applying either (OpenSearch applies all or nothing).
            scratch = type(ml.settings)(dict(ml.settings.persistent), dict(ml.settings.transient))
            scratch.apply("persistent", persistent)
            scratch.apply("transient", transient)
            applied_p = ml.settings.apply("persistent", persistent)
            applied_t = ml.settings.apply("transient", transient)
        finally:
            cluster.local.unregister(me)
        ml.settings_changed()
        return RestResponse(
            {
                "acknowledged": True,
                "persistent": _render(applied_p, flat),
                "transient": _render(applied_t, flat),
            }
        )

    base = "/_plugins/_ml"
    router.add("POST", f"{base}/models/_register", register_model)
    router.add("POST", f"{base}/models/{{model_id}}/_deploy", deploy_model)
    router.add("POST", f"{base}/models/{{model_id}}/_undeploy", undeploy_model)
    router.add("POST", f"{base}/models/_undeploy", undeploy_model)
    router.add("GET", f"{base}/models/{{model_id}}", get_model)
    router.add("POST", f"{base}/_train/{{algorithm}}", train)
    router.add("GET", f"{base}/tasks/{{task_id}}", get_task)
    router.add("DELETE", f"{base}/tasks/{{task_id}}", delete_task)
    router.add("GET", f"{base}/tasks/_search", search_tasks)
    router.add("POST", f"{base}/tasks/_search", search_tasks)
    router.add("POST", f"{base}/tasks/{{task_id}}/_cancel", cancel_task)
    router.add("GET", "/_cluster/settings", get_settings)
    router.add("PUT", "/_cluster/settings", put_settings)
    return ml
