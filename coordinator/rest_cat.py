"""REST handlers of `GET _cat/tasks` and `GET _cat/nodes` (OpenSearch's `RestTasksAction` and
`RestNodesAction` under `AbstractCatAction`).

`_cat/tasks` reads the list parameters (`RestListTasksAction.generateListTasksRequest`: nodes,
actions, detailed, parent_task_id, wait_for_completion, timeout), runs the same fan-out as
`GET _tasks` and prints the task groups as a table. `full_id` is read only while the table is
built, after the parameter check, so — as in OpenSearch — `_cat/tasks?full_id` is an unrecognized
parameter. `_cat/nodes` reads `local`, `cluster_manager_timeout` / `master_timeout` and `full_id`,
asks every node for its status (OpenSearch's nodes info + nodes stats; a node that does not answer
gets empty cells) and reads the numbers of each node's process with psutil: `heap.*` is the
process's resident memory against the machine's memory (there is no JVM heap), `ram.*`, `cpu` and
`load_*` are the machine's, as every node shares it.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import psutil
import trio

from coordinator import fanout
from coordinator.cat import (
    CAT_RESPONSE_PARAMS,
    CatOptions,
    NodeStats,
    Table,
    nodes_rows,
    nodes_table,
    render_help,
    render_json,
    render_text,
    tasks_rows,
    tasks_table,
)
from coordinator.cluster import Cluster
from coordinator.http import TEXT_TYPE, RestRequest, RestResponse, Router
from coordinator.params import parse_list_request, parse_time_value
from coordinator.rest_cluster import BUILD_HASH, OPENSEARCH_VERSION
from simnode._wire import node_pb2 as pb
from simnode.discovery import DiscoveryNode
from simnode.errors import OpenSearchError, ParseError

CAT_TASKS_RESPONSE_PARAMS = CAT_RESPONSE_PARAMS | {"detailed"}
DUPLICATE_TIMEOUTS = (
    "Please only use one of the request parameters [master_timeout, cluster_manager_timeout]."
)


def _answer(request: RestRequest, table: Table) -> RestResponse:
    """`RestTable.buildResponse`: JSON with `format=json` (or `Accept: application/json`), else text."""
    opts = CatOptions.read(request.params, request.headers.get("accept"))
    if opts.json:
        return RestResponse(render_json(table, opts))
    return RestResponse(render_text(table, opts), content_type=TEXT_TYPE, raw=True)


def _help(table: Table) -> RestResponse:
    return RestResponse(render_help(table), content_type=TEXT_TYPE, raw=True)


def process_stats(pid: int, cpu_percent: int) -> NodeStats:
    """One node process's numbers, as `nodes stats` would report them (see the module doc);
    `cpu_percent` is the machine's, measured once per request."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            rss = proc.memory_info().rss
            fds = proc.num_fds()
            started = proc.create_time()
            try:
                max_fds: int | None = proc.rlimit(psutil.RLIMIT_NOFILE)[0]
            except (AttributeError, psutil.Error):
                max_fds = None
    except psutil.Error:
        return NodeStats(pid=pid)
    memory = psutil.virtual_memory()
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    return NodeStats(
        pid=pid,
        heap_used=rss,
        heap_max=memory.total,
        ram_used=memory.total - memory.available,
        ram_total=memory.total,
        open_fds=fds,
        max_fds=max_fds if max_fds is not None and max_fds >= 0 else None,
        cpu_percent=cpu_percent,
        load=load,
        uptime_nanos=max(0, int((time.time() - started) * 1e9)),
    )


def register(router: Router, cluster: Cluster) -> None:
    async def cat_tasks(request: RestRequest) -> RestResponse:
        params = request.params
        if params.param_bool("help", False):
            request.finish(response_params=CAT_TASKS_RESPONSE_PARAMS)
            return _help(tasks_table(params.param_bool("detailed", False)))
        req = parse_list_request(params)
        request.finish(response_params=CAT_TASKS_RESPONSE_PARAMS)
        result = await fanout.list_tasks(cluster, req, request.task_headers)
        full_id = params.param_bool("full_id", False)
        table = tasks_rows(
            tasks_table(req.detailed),
            result.tasks,
            cluster.state,
            detailed=req.detailed,
            version=OPENSEARCH_VERSION,
            full_id=full_id,
        )
        return _answer(request, table)

    async def cat_nodes(request: RestRequest) -> RestResponse:
        params = request.params
        if params.param_bool("help", False):
            request.finish(response_params=CAT_RESPONSE_PARAMS)
            return _help(nodes_table())
        params.param_bool("local", False)
        params.param_time("cluster_manager_timeout")
        if params.has("master_timeout"):
            if params.has("cluster_manager_timeout"):
                raise ParseError(DUPLICATE_TIMEOUTS)
            params.param_time("master_timeout")
        full_id = params.param_bool("full_id", False)
        request.finish(response_params=CAT_RESPONSE_PARAMS)
        raw_timeout = params.peek("timeout")
        timeout = None
        if raw_timeout is not None:
            seconds = parse_time_value(raw_timeout, "NodesInfoRequest.timeout")
            timeout = None if seconds < 0 else seconds
        state = cluster.state
        statuses: dict[str, NodeStats] = {}
        stats_of = cluster.hosts.stats_reader()  # the engine's: processes, or simulated numbers

        async def one(node: DiscoveryNode) -> None:
            try:
                with trio.move_on_after(math.inf if timeout is None else timeout + 1.0):
                    status: Any = await cluster.local.send(
                        node.id, "Status", pb.Empty(), timeout=timeout
                    )
                    statuses[node.id] = stats_of(int(status.pid))
            except OpenSearchError:
                pass  # a node that does not answer gets empty cells

        async with trio.open_nursery() as nursery:
            for node in state.nodes:
                nursery.start_soon(one, node)

        local = cluster.local.local.id

        def http_address(node: DiscoveryNode) -> str | None:
            if node.id == local and request.local_address is not None:
                host, port = request.local_address
                return f"{host}:{port}"
            return None

        table = nodes_rows(
            nodes_table(),
            state,
            lambda n: statuses.get(n.id, NodeStats()),
            version=OPENSEARCH_VERSION,
            build_type="tar",
            build_hash=BUILD_HASH,
            http_address=http_address,
            full_id=full_id,
        )
        return _answer(request, table)

    router.add("GET", "/_cat/tasks", cat_tasks)
    router.add("GET", "/_cat/nodes", cat_nodes)
