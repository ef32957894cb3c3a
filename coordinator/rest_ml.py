"""REST handlers of ML Commons (`/_plugins/_ml/...`).

Routes, parameters and bodies follow ML Commons' Rest*Action classes: register, deploy, undeploy
and train a model, get a model, get/delete/search/cancel ML tasks. The ML settings are cluster
settings (coordinator/settings.py, served by coordinator/rest_settings.py). The work is done by
coordinator/ml.py; nothing here decides behaviour.
"""

from __future__ import annotations

from typing import Any

from coordinator.cluster import Cluster
from coordinator.documents import ParsingError
from coordinator.http import RestRequest, RestResponse, Router, parse_content_to_map
from coordinator.ml import MlService
from simnode.errors import IllegalArgumentError


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
    return ml
