"""REST endpoints of fault injection, for interactive use and for the Python client
(coordinator/client.py) that tests and scenarios drive:

    GET    /_sim/faults                      the rules (by fault id and level), their version, who
                                             applied it; packets cut by each net-level fault
    POST   /_sim/faults                      install {"link"|"slow"|"partition": {...}}, or
                                             {"faults": [ ... ]} at once
    DELETE /_sim/faults                      remove every rule
    DELETE /_sim/faults/<id>                 remove one fault
    POST   /_sim/faults/_heal                rules cleared, paused nodes resumed, dead ones restarted
    GET    /_sim/nodes[?tasks=true]          every process: pid, alive, paused, in the cluster, the
                                             rule version it applied, its bans (and live tasks)
    POST   /_sim/nodes/<name>/kill|pause|resume|restart

Handlers only parse, call the nemesis (coordinator/nemesis.py) and render; errors are OpenSearch
errors rendered by the one envelope renderer.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from coordinator.cluster import Cluster
from coordinator.faultspec import FaultSpec, parse_fault
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.nemesis import Nemesis
from simnode.errors import IllegalArgumentError, ParseError


def validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"[{loc}] {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def _faults_of(body: Any) -> list[FaultSpec]:
    if body is None:
        raise ParseError("request body is required")
    items = body["faults"] if isinstance(body, dict) and set(body) == {"faults"} else [body]
    if not isinstance(items, list) or not items:
        raise IllegalArgumentError("[faults] must be a non-empty list")
    specs = []
    for item in items:
        try:
            specs.append(parse_fault(item))
        except ValidationError as e:
            kind = next(iter(item)) if isinstance(item, dict) and item else "fault"
            raise IllegalArgumentError(f"invalid {kind} fault: {validation_message(e)}") from e
        except ValueError as e:
            raise IllegalArgumentError(str(e)) from e
    return specs


def register(router: Router, cluster: Cluster) -> None:
    nemesis = Nemesis(cluster)

    async def get_faults(request: RestRequest) -> RestResponse:
        request.finish()
        return RestResponse(await nemesis.describe_live())

    async def install(request: RestRequest) -> RestResponse:
        request.finish(body_allowed=True)
        specs = _faults_of(request.json_body())
        return RestResponse(await nemesis.install(specs))

    async def clear(request: RestRequest) -> RestResponse:
        request.finish()
        return RestResponse(await nemesis.clear())

    async def remove(request: RestRequest) -> RestResponse:
        request.finish()
        return RestResponse(await nemesis.remove(request.path_params["fault_id"]))

    async def heal(request: RestRequest) -> RestResponse:
        request.finish()
        return RestResponse(await nemesis.heal())

    async def nodes(request: RestRequest) -> RestResponse:
        tasks = request.params.param_bool("tasks", False)
        request.finish()
        return RestResponse({"nodes": await nemesis.inspect(tasks=tasks)})

    def process_action(name: str) -> Any:
        async def handler(request: RestRequest) -> RestResponse:
            request.finish()
            node = request.path_params["node"]
            return RestResponse(await getattr(nemesis, name)(node))

        return handler

    router.add("GET", "/_sim/faults", get_faults)
    router.add("POST", "/_sim/faults", install)
    router.add("DELETE", "/_sim/faults", clear)
    router.add("DELETE", "/_sim/faults/{fault_id}", remove)
    router.add("POST", "/_sim/faults/_heal", heal)
    router.add("GET", "/_sim/nodes", nodes)
    for action in ("kill", "pause", "resume", "restart"):
        router.add("POST", f"/_sim/nodes/{{node}}/{action}", process_action(action))
