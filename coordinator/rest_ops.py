"""REST handlers of the operations that create tasks: indices, `_reindex`, `_update_by_query`,
`_delete_by_query`, `_rethrottle`, and the simulator's `/_sim/indices`.

Every operation runs as a REST-entry task on the coordinating node (the node that received the
request, as in OpenSearch), whose tree comes from coordinator/ops.py. A bulk-by-scroll request
becomes an `Operation` of coordinator/byquery.py, registered with the coordinating node's
`hit_source` for as long as its task runs: its workers read and write the documents through it.
With `wait_for_completion=false` it answers `{"task": "<coordinating node>:<id>"}` at once and
stores its result in `.tasks` when done; with `true` it answers the response (409 when a version
conflict aborted it, as `BulkIndexByScrollResponseContentListener` answers)."""

from __future__ import annotations

from typing import Any

import trio

from coordinator import fanout
from coordinator.byquery import Dest, Env, Operation, Operations
from coordinator.cluster import Cluster
from coordinator.documents import (
    MATCH_ALL,
    IndexDocs,
    IndexMapping,
    ParsingError,
    Query,
    parse_interval,
    parse_query,
    parse_version_type,
    query_string,
)
from coordinator.documents.search import parse_sort, parse_source_filter
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.indices import DEFAULT_REPLICAS, DEFAULT_SHARDS, Index
from coordinator.ops import (
    BulkByScrollRequest,
    check_reindex_body,
    parse_manual_slice,
    parse_requests_per_second,
    parse_slices,
    plan_bulk_by_scroll,
    set_max_docs,
)
from coordinator.painless import parse_script
from coordinator.params import check_group_by
from coordinator.render import tasks_response
from coordinator.rest_docs import OFFLOAD_DOCS
from simnode import bulk_by_scroll, jsontext
from simnode._wire import node_pb2 as pb
from simnode.errors import (
    IllegalArgumentError,
    OpenSearchError,
)
from simnode.offload import offload
from simnode.registry import Headers
from simnode.taskid import TaskId
from simnode.wire import error_to_pb, headers_to_pb

_BY_QUERY_PARAMS = (
    "conflicts",
    "q",
    "routing",
    "search_timeout",
    "allow_no_indices",
    "ignore_unavailable",
    "expand_wildcards",
    "analyzer",
    "default_operator",
    "df",
    "lenient",
    "scroll",
)


def _int_setting(settings: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = settings.get(f"index.{key}", settings.get(key, default))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(
            f"Failed to parse value [{value}] for setting [index.{key}]"
        ) from None
    if number < minimum:
        raise IllegalArgumentError(
            f"Failed to parse value [{number}] for setting [index.{key}] must be >= {minimum}"
        )
    return number


def _flat_settings(body: Any) -> dict[str, Any]:
    settings = body.get("settings", {}) if isinstance(body, dict) else {}
    flat = dict(settings) if isinstance(settings, dict) else {}
    nested = flat.pop("index", None)
    if isinstance(nested, dict):
        flat.update(nested)
    return flat


def _index_body(index: Index, names: dict[str, str], stored: int) -> dict[str, Any]:
    """`/_sim/indices`: `docs` is the synthetic volume, `stored_docs` the real documents."""
    return {
        "index": index.name,
        "uuid": index.uuid,
        "docs": index.docs,
        "stored_docs": stored,
        "shards": [
            {
                "shard": s.shard,
                "primary": names.get(s.primary, s.primary),
                "replicas": [names.get(r, r) for r in s.replicas],
            }
            for s in index.shards
        ],
    }


def _query(body: Any, path: tuple[str, ...], raw: bytes) -> Query:
    """The query of a by-query request (none: everything)."""
    if body is None:
        return MATCH_ALL
    try:
        return parse_query(body, path)
    except ParsingError as e:
        raise e.located(raw) from None


def register(router: Router, cluster: Cluster) -> None:
    indices = cluster.indices

    def data_nodes() -> list[str]:
        return [n.id for n in cluster.state.nodes if n.has_role("data")]

    def node_names() -> dict[str, str]:
        return {n.id: n.name for n in cluster.state.nodes}

    async def run(spec: pb.TaskSpec, headers: Headers) -> pb.RunTaskResponse:
        """Run a REST-entry task on the coordinating node and wait for it."""
        request = pb.RunTaskRequest(spec=spec, headers=headers_to_pb(headers))
        return await cluster.local.run_task(request, local=False)

    ensure_index = cluster.auto_create  # a write's index, auto-created when the setting allows

    # -- indices -------------------------------------------------------------------------------

    async def create_index(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        for key in (
            "wait_for_active_shards",
            "timeout",
            "master_timeout",
            "cluster_manager_timeout",
        ):
            request.params.param(key)
        request.finish(body_allowed=True)
        body = request.json_body() or {}
        settings = _flat_settings(body)
        shards = _int_setting(settings, "number_of_shards", DEFAULT_SHARDS, 1)
        replicas = _int_setting(settings, "number_of_replicas", DEFAULT_REPLICAS, 0)
        interval = parse_interval(
            settings.get("index.refresh_interval", settings.get("refresh_interval", "1s"))
        )
        mapping = IndexMapping.from_body(body.get("mappings") if isinstance(body, dict) else None)
        me = cluster.local.register(
            "indices:admin/create", local=False, headers=request.task_headers
        )
        try:
            indices.create(
                name,
                data_nodes(),
                shards=shards,
                replicas=replicas,
                mapping=mapping,
                refresh_interval=interval,
                now=trio.current_time(),
            )
        finally:
            cluster.local.unregister(me)
        return RestResponse({"acknowledged": True, "shards_acknowledged": True, "index": name})

    async def delete_index(request: RestRequest) -> RestResponse:
        for key in ("timeout", "master_timeout", "cluster_manager_timeout", "expand_wildcards"):
            request.params.param(key)
        request.finish()
        me = cluster.local.register(
            "indices:admin/delete", local=False, headers=request.task_headers
        )
        try:
            # TransportDeleteIndexAction.doExecute: `action.destructive_requires_name` first
            cluster.check_destructive(request.path_params["index"])
            indices.delete(request.path_params["index"])
        finally:
            cluster.local.unregister(me)
        return RestResponse({"acknowledged": True})

    async def get_index(request: RestRequest) -> RestResponse:
        """`GET /{index}`: mappings and settings of the matching indices (no aliases)."""
        for key in (
            "local",
            "master_timeout",
            "cluster_manager_timeout",
            "expand_wildcards",
            "flat_settings",
            "include_defaults",
            "ignore_unavailable",
            "allow_no_indices",
        ):
            request.params.param(key)
        request.finish()
        body: dict[str, Any] = {}
        for index in indices.resolve(request.path_params["index"]):
            body[index.name] = {
                "aliases": {},
                "mappings": indices.docs(index.name).mapping.body(),
                "settings": {"index": indices.settings_body(index)},
            }
        return RestResponse(body)

    async def sim_create_index(request: RestRequest) -> RestResponse:
        request.finish(body_allowed=True)
        body = request.json_body() or {}
        if not isinstance(body, dict) or not isinstance(body.get("index"), str):
            raise IllegalArgumentError("[sim_index] [index] is required")
        docs = body.get("docs", 0)
        if isinstance(docs, bool) or not isinstance(docs, int) or docs < 0:
            raise IllegalArgumentError("[sim_index] [docs] must be an integer >= 0")
        shards = _int_setting(body, "shards", DEFAULT_SHARDS, 1)
        replicas = _int_setting(body, "replicas", DEFAULT_REPLICAS, 0)
        index = indices.create(
            body["index"], data_nodes(), shards=shards, replicas=replicas, docs=docs
        )
        return RestResponse(_index_body(index, node_names(), 0))

    async def sim_list_indices(request: RestRequest) -> RestResponse:
        request.finish()
        names = node_names()
        return RestResponse(
            {"indices": [_index_body(i, names, len(indices.docs(i.name))) for i in indices.all()]}
        )

    # -- _reindex, _update_by_query, _delete_by_query --------------------------------------------

    def parse_bulk_by_scroll(kind: str, request: RestRequest) -> BulkByScrollRequest:
        """`AbstractBaseReindexRestHandler`, `AbstractBulkByQueryRestHandler`,
        `ReindexRequest.fromXContent`: parameters and body, with OpenSearch's messages."""
        params = request.params
        wait = params.param_bool("wait_for_completion", True)
        refresh = params.param_bool("refresh", False)
        params.param("timeout")
        slices = parse_slices(params)
        params.param("wait_for_active_shards")
        rps = parse_requests_per_second(params)
        max_docs = params.param("max_docs")
        params.param("scroll")
        params.param("require_alias")
        scroll_size = None
        size_param = None
        q = df = None
        if kind != "reindex":
            for key in _BY_QUERY_PARAMS:
                params.param(key)
            q, df = params.param("q"), params.param("df")
            scroll_size = params.param("scroll_size")
            size_param = params.param("size")
            if kind == "update_by_query":
                params.param("pipeline")
        conflicts = params.param("conflicts")
        request.finish(body_allowed=True)
        body = request.json_body() or {}
        if not isinstance(body, dict):
            raise IllegalArgumentError("request body must be a JSON object")
        req = BulkByScrollRequest(kind=kind, sources=[], wait_for_completion=wait)
        req.refresh = refresh
        if slices is not None:
            req.slices = slices
        if rps is not None:
            req.requests_per_second = rps
        if kind == "reindex":
            check_reindex_body(body, request.body, req)
            source = body.get("source", {})
            names = source.get("index", []) if isinstance(source, dict) else []
            req.sources = [n for n in (names.split(",") if isinstance(names, str) else names) if n]
            dest = body.get("dest", {})
            req.dest = str(dest.get("index", "")) if isinstance(dest, dict) else ""
            if isinstance(dest, dict):
                op_type = dest.get("op_type", "index")
                if op_type not in ("index", "create"):
                    raise IllegalArgumentError(
                        f"opType must be 'create' or 'index', found: [{op_type}]"
                    )
                req.op_type = str(op_type)
                req.version_type = parse_version_type(dest.get("version_type"))
            if isinstance(source, dict):
                if isinstance(source.get("size"), int):
                    req.batch_size = source["size"]
                req.query = _query(source.get("query"), ("source", "query"), request.body)
                if "_source" in source:
                    req.source_filter = parse_source_filter(source["_source"])
                if "sort" in source:  # deprecated, still honoured
                    req.sort = parse_sort(source["sort"])
                if "slice" in source:
                    parse_manual_slice(source["slice"], req)
            if isinstance(body.get("size"), int):  # deprecated: max_docs
                set_max_docs(req, body["size"])
        else:
            req.sources = [n for n in request.path_params["index"].split(",") if n]
            if scroll_size is not None:
                try:
                    req.batch_size = int(scroll_size)
                except ValueError:
                    raise IllegalArgumentError(
                        f"Failed to parse int parameter [scroll_size] with value [{scroll_size}]"
                    ) from None
            if "stored_fields" in body:
                req.invalid.append("stored_fields is not supported in this context")
            if "slice" in body:
                parse_manual_slice(body["slice"], req)
            if kind == "delete_by_query" and "query" not in body and q is None:
                req.invalid.append("query is missing")
            if q is not None:
                req.query = query_string(q, df)
            elif "query" in body:
                req.query = _query(body["query"], ("query",), request.body)
            for value in (size_param, body.get("size")):  # deprecated: max_docs
                if value is not None:
                    try:
                        set_max_docs(req, int(value))
                    except ValueError:
                        raise IllegalArgumentError(
                            f"Failed to parse int parameter [size] with value [{value}]"
                        ) from None
        if "script" in body and kind != "delete_by_query":
            req.script = parse_script(body["script"])
        conflicts = body.get("conflicts", conflicts) if conflicts is None else conflicts
        if conflicts is not None:
            if conflicts not in ("proceed", "abort"):
                raise IllegalArgumentError(
                    f'conflicts may only be "proceed" or "abort" but was [{conflicts}]'
                )
            req.abort_on_version_conflict = conflicts == "abort"
        if isinstance(body.get("max_docs"), int):
            set_max_docs(req, body["max_docs"])
        if req.batch_size < 0:  # `SearchSourceBuilder.size`
            raise IllegalArgumentError(
                f"[size] parameter cannot be negative, found [{req.batch_size}]"
            )
        if max_docs is not None:
            try:
                set_max_docs(req, int(max_docs))
            except ValueError:
                raise IllegalArgumentError(
                    f"Failed to parse int parameter [max_docs] with value [{max_docs}]"
                ) from None
        req.validate()
        return req

    store = indices.documents
    operations = Operations()  # the coordinating node's `hit_source` (set when one starts)

    def ensure_docs(name: str) -> IndexDocs:
        """A write to a missing index creates it (1 shard, 1 replica), with its documents —
        unless `action.auto_create_index` says no (the item's `index_not_found_exception`)."""
        ensure_index(name)
        return indices.docs(name)

    def synthetic_docs(name: str) -> int:
        index = indices.get(name)
        return index.docs if index is not None else 0

    env = Env(
        store=store,
        now=trio.current_time,
        create_index=ensure_docs,
        auto_id=lambda: store.ids.next(int(trio.current_time() * 1000)),
        synthetic=synthetic_docs,
        add_synthetic=indices.add_docs,
    )

    def operation_of(req: BulkByScrollRequest, sources: list[str]) -> Operation:
        """The operation on the documents of `sources` (the request's indices, resolved)."""
        dest = None
        if req.kind == "reindex":
            dest = Dest(req.dest, req.op_type, req.version_type)
        return Operation(
            req.kind,
            sources,
            req.query,
            env,
            dest=dest,
            script=req.script,
            abort_on_version_conflict=req.abort_on_version_conflict,
            max_docs=req.max_docs,
            refresh=req.refresh,
            source_filter=req.source_filter,
            sort=req.sort,
            manual_slice=req.manual_slice,
        )

    async def drop_when_done(task_id: int, key: str) -> None:
        task = cluster.local.registry.get(task_id)
        try:
            if task is not None:
                await cluster.local.wait_done(task)
        finally:
            operations.drop(key)

    def bulk_by_scroll_handler(kind: str) -> Any:
        async def handler(request: RestRequest) -> RestResponse:
            req = parse_bulk_by_scroll(kind, request)
            failure: OpenSearchError | None = None
            sources: list[Index] = []
            try:
                sources = indices.resolve(",".join(req.sources), allow_no_indices=False)
            except OpenSearchError as e:
                failure = e
            dest = indices.get(req.dest) if kind == "reindex" else None
            spec = plan_bulk_by_scroll(req, sources, dest, cluster.timing)
            key = ""
            if failure is not None:  # the task starts, and fails as it would when it runs
                # `initTaskState` made it a worker before the search failed: its stored status
                # is a worker's, all zero (`requests_per_second: -1.0` when unthrottled).
                zero = bulk_by_scroll.Status(requests_per_second=req.requests_per_second)
                spec.status_json = jsontext.dumps(zero.xcontent())
                spec.ClearField("bulk_by_scroll")
                spec.error.CopyFrom(error_to_pb(failure))
            else:
                operation = operation_of(req, [i.name for i in sources])
                targets = operation.targets()
                if sum(len(t.docs) for t in targets) >= OFFLOAD_DOCS:
                    # A scan of many documents: taken now, off the loop, not by the first
                    # worker on it (a snapshot of the same moment, give or take a scroll child).
                    await offload(operation.match, targets)
                key = operations.add(operation)
                spec.bulk_by_scroll.operation = key
                cluster.local.hit_source = operations  # the router is built before the node
            headers = request.task_headers
            if not req.wait_for_completion:
                try:
                    started = cluster.local.start_task(
                        pb.RunTaskRequest(spec=spec, headers=headers_to_pb(headers))
                    )
                except BaseException:
                    operations.drop(key)
                    raise
                task_id = TaskId.parse(started.task_id)
                cluster.local.spawn(
                    f"dropping the operation of task [{task_id}]", drop_when_done, task_id.id, key
                )
                return RestResponse({"task": started.task_id})
            try:
                answer = await run(spec, headers)
            finally:
                operations.drop(key)
            response = bulk_by_scroll.filter_response(jsontext.loads(answer.response_json), kind)
            return RestResponse(response, status=bulk_by_scroll.response_status(response))

        return handler

    async def rethrottle(request: RestRequest) -> RestResponse:
        task_id = TaskId.parse(request.path_params["task_id"])
        rps = parse_requests_per_second(request.params)
        if rps is None:
            raise IllegalArgumentError("requests_per_second is a required parameter")
        group_by = request.params.param("group_by", "nodes") or "nodes"
        request.finish()
        check_group_by(group_by)
        result = await fanout.rethrottle(cluster, task_id, rps, request.task_headers)
        human = request.human
        return RestResponse(tasks_response(result, cluster.state, group_by=group_by, human=human))

    router.add("GET", "/{index}", get_index)
    router.add("PUT", "/{index}", create_index)
    router.add("DELETE", "/{index}", delete_index)
    router.add("POST", "/_sim/indices", sim_create_index)
    router.add("GET", "/_sim/indices", sim_list_indices)
    router.add("POST", "/_reindex", bulk_by_scroll_handler("reindex"))
    router.add("POST", "/{index}/_update_by_query", bulk_by_scroll_handler("update_by_query"))
    router.add("POST", "/{index}/_delete_by_query", bulk_by_scroll_handler("delete_by_query"))
    for prefix in ("_reindex", "_update_by_query", "_delete_by_query"):
        router.add("POST", f"/{prefix}/{{task_id}}/_rethrottle", rethrottle)
