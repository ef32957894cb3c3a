"""REST handlers of scrolls: `POST|GET /_search/scroll[/{scroll_id}]` and `DELETE /_search/scroll`
(the contexts themselves are coordinator/scroll.py's; `_search?scroll=` opens one in
coordinator/rest_docs.py). A scroll request runs as an `indices:data/read/scroll` task on the
coordinating node."""

from __future__ import annotations

from typing import Any

import trio

from coordinator.cluster import Cluster
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.scroll import Scrolls, parse_keep_alive
from simnode.errors import ActionRequestValidationError, IllegalArgumentError

SCROLL_ACTION = "indices:data/read/scroll"
CLEAR_SCROLL_ACTION = "indices:data/read/scroll/clear"


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def register(router: Router, cluster: Cluster, scrolls: Scrolls) -> None:
    async def scroll(request: RestRequest) -> RestResponse:
        params = request.params
        scroll_id = request.path_params.get("scroll_id") or params.param("scroll_id")
        keep_alive = params.param("scroll")
        params.param("rest_total_hits_as_int")
        request.finish(body_allowed=True)
        body = request.json_body()
        if isinstance(body, dict):
            scroll_id = body.get("scroll_id", scroll_id)
            keep_alive = body.get("scroll", keep_alive)
        elif body is not None:
            raise IllegalArgumentError("request body must be a JSON object")
        if not scroll_id:
            raise ActionRequestValidationError.of("scrollId is missing")
        alive = parse_keep_alive(str(keep_alive)) if keep_alive is not None else None
        me = cluster.local.register(SCROLL_ACTION, local=False, headers=request.task_headers)
        try:
            answer = scrolls.next(str(scroll_id), alive, trio.current_time())
        finally:
            cluster.local.unregister(me)
        return RestResponse(answer)

    async def clear(request: RestRequest) -> RestResponse:
        path_ids = request.path_params.get("scroll_id")
        request.finish(body_allowed=True)
        body = request.json_body()
        ids: list[str] | None = _ids(path_ids) if path_ids else None
        if ids is None and isinstance(body, dict) and "scroll_id" in body:
            ids = _ids(body["scroll_id"])
        me = cluster.local.register(CLEAR_SCROLL_ACTION, local=False, headers=request.task_headers)
        try:
            freed = scrolls.clear(ids)
        finally:
            cluster.local.unregister(me)
        return RestResponse({"succeeded": True, "num_freed": freed})

    for method in ("GET", "POST"):
        router.add(method, "/_search/scroll", scroll)
        router.add(method, "/_search/scroll/{scroll_id}", scroll)
    router.add("DELETE", "/_search/scroll", clear)
    router.add("DELETE", "/_search/scroll/{scroll_id}", clear)
