"""REST handlers of the Tasks API: `GET _tasks`, `GET _tasks/<id>`, `POST _tasks[/<id>]/_cancel`.

Each handler follows its OpenSearch Rest*Action: parse and consume parameters (`prepareRequest`),
then `finish()` (unrecognized parameters, body), then `group_by` (`listTasksResponseListener`),
then the transport action (coordinator/fanout.py: register the task — the header-size check —,
then the request's own `validate()`, then the fan-out), then render (coordinator/render.py).
"""

from __future__ import annotations

from typing import Any

from coordinator import fanout
from coordinator.cluster import Cluster
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.params import check_group_by, parse_cancel, parse_get, parse_list
from coordinator.render import tasks_response
from coordinator.results import GetTaskResult


def get_task_body(result: GetTaskResult, *, human: bool) -> dict[str, Any]:
    """`GetTaskResponse` → `TaskResult.innerToXContent`."""
    return result.source(human=human)


def register(router: Router, cluster: Cluster) -> None:
    async def list_tasks(request: RestRequest) -> RestResponse:
        req = parse_list(request.params)
        request.finish()
        check_group_by(req.group_by)
        result = await fanout.list_tasks(cluster, req, request.task_headers)
        return RestResponse(
            tasks_response(result, cluster.state, group_by=req.group_by, human=request.human)
        )

    async def get_task(request: RestRequest) -> RestResponse:
        req = parse_get(request.params)
        request.finish()
        result = await fanout.get_task(cluster, req, request.task_headers)
        return RestResponse(get_task_body(result, human=request.human))

    async def cancel_tasks(request: RestRequest) -> RestResponse:
        req = parse_cancel(request.params)
        request.finish()
        check_group_by(req.group_by)
        result = await fanout.cancel_tasks(cluster, req, request.task_headers)
        return RestResponse(
            tasks_response(result, cluster.state, group_by=req.group_by, human=request.human)
        )

    router.add("GET", "/_tasks", list_tasks)
    router.add("GET", "/_tasks/{task_id}", get_task)
    router.add("POST", "/_tasks/_cancel", cancel_tasks)
    router.add("POST", "/_tasks/{task_id}/_cancel", cancel_tasks)
