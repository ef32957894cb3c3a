"""REST handlers of documents: the single-document APIs, `_bulk`, `_search`, `_count`,
`_refresh`, `_mget`, an index's `_mapping` and its dynamic `_settings`.

Every decision is taken in coordinator/documents/ (versions, conflicts, queries, search); this
module parses the request as the OpenSearch Rest*Action does, runs the operation's task tree on the
coordinating node (coordinator/ops.py: a write is `indices:data/write/<op>` or `.../bulk` →
`bulk[s]` → `bulk[s][p]` → `bulk[s][r]`; a search or count is `indices:data/read/search` with its
query and fetch phases), and applies the writes to the store once the tree has run — the writes
happen "on the primary", so a write whose tree fails (its node is gone) did not happen. Writes to a
missing index create it (`action.auto_create_index` is true by default), except deletes; reads of a
missing index are `index_not_found_exception`.

`refresh=true` refreshes the written indices after the write (`forced_refresh: true`);
`refresh=wait_for` waits until a refresh makes the write visible: the next scheduled one (every
`index.refresh_interval`, on trio's clock — virtual on the sim engine), or, with the schedule off
(`-1`), the next explicit one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import trio

from coordinator import rest_scroll
from coordinator.cluster import Cluster
from coordinator.documents import (
    ParsingError,
    SearchRequest,
    WriteResult,
    count,
    count_body,
    parse_interval,
    parse_query,
    parse_search,
    parse_version_type,
    query_string,
    search,
    shard_of,
)
from coordinator.documents.store import Target
from coordinator.http import PARSE_AHEAD_BYTES, RestRequest, RestResponse, Router
from coordinator.indices import Index
from coordinator.ops import (
    BulkItem,
    parse_bulk,
    plan_bulk,
    plan_search,
    write_spec,
)
from coordinator.params import Params
from coordinator.scroll import Scrolls, parse_keep_alive
from simnode import jsontext
from simnode._wire import node_pb2 as pb
from simnode.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    IndexNotFoundError,
    OpenSearchError,
    ResourceNotFoundError,
    SearchPhaseExecutionError,
)
from simnode.offload import offload
from simnode.registry import Headers
from simnode.wire import headers_to_pb

INDEX_ACTION = "indices:data/write/index"
DELETE_ACTION = "indices:data/write/delete"
UPDATE_ACTION = "indices:data/write/update"
GET_ACTION = "indices:data/read/get"
MGET_ACTION = "indices:data/read/mget"
REFRESH_ACTION = "indices:admin/refresh"
MAX_ID_BYTES = 512
BULK_PLAN_AHEAD_ITEMS = 10_000
APPLY_BATCH = 500  # bulk items worked on the loop between two of its checkpoints
OFFLOAD_DOCS = 20_000  # a search or count over more documents runs in a worker thread

_SEARCH_PARAMS = (
    "timeout",
    "expand_wildcards",
    "request_cache",
    "routing",
    "preference",
    "search_type",
    "batched_reduce_size",
    "typed_keys",
    "cancel_after_time_interval",
    "allow_partial_search_results",
    "analyzer",
    "analyze_wildcard",
    "default_operator",
    "lenient",
    "explain",
    "track_scores",
    "terminate_after",
    "stored_fields",
    "docvalue_fields",
    "ccs_minimize_roundtrips",
    "max_concurrent_shard_requests",
    "pre_filter_shard_size",
    "phase_took",
)
# Search parameters `parse_search` reads (they override the body).
_SEARCH_VALUES = (
    "q",
    "df",
    "from",
    "size",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "rest_total_hits_as_int",
    "version",
    "seq_no_primary_term",
)
_COUNT_PARAMS = (
    "expand_wildcards",
    "min_score",
    "preference",
    "routing",
    "analyzer",
    "analyze_wildcard",
    "default_operator",
    "lenient",
    "terminate_after",
)


class MapperParsingError(OpenSearchError):
    type = "mapper_parsing_exception"
    status = 400


@dataclass(frozen=True)
class WriteOptions:
    """The parameters of a write (`RestIndexAction` and friends)."""

    refresh: str = "false"  # false | true | wait_for
    version: int | None = None
    version_type: str = "internal"
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    op_type: str | None = None


def parse_refresh(value: str | None) -> str:
    """`WriteRequest.RefreshPolicy.parse`."""
    if value is None or value == "false":
        return "false"
    if value in ("", "true"):
        return "true"
    if value == "wait_for":
        return "wait_for"
    raise IllegalArgumentError(f"Unknown value for refresh: [{value}].")


def _long(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise IllegalArgumentError(
            f"Failed to parse long parameter [{name}] with value [{value}]"
        ) from None


def write_options(get: Any, *, op_type: bool = False) -> WriteOptions:
    """Read a write's options through `get(name)` (URL parameters, or a bulk action line)."""
    opts = WriteOptions(
        refresh=parse_refresh(get("refresh")),
        version=_long(get("version"), "version"),
        version_type=parse_version_type(get("version_type")),
        if_seq_no=_long(get("if_seq_no"), "if_seq_no"),
        if_primary_term=_long(get("if_primary_term"), "if_primary_term"),
        op_type=get("op_type") if op_type else None,
    )
    if opts.op_type is not None and opts.op_type not in ("index", "create"):
        raise IllegalArgumentError(f"opType must be 'create' or 'index', found: [{opts.op_type}]")
    return opts


def validate_write(opts: WriteOptions, doc_id: str | None, *, create: bool = False) -> None:
    """`IndexRequest.validate` / `DeleteRequest.validate`: the version checks and the id."""
    errors = write_errors(opts, doc_id, create=create)
    if errors:
        raise ActionRequestValidationError.of(*errors)


def write_errors(opts: WriteOptions, doc_id: str | None, *, create: bool = False) -> list[str]:
    errors = []
    if opts.version is not None and opts.version_type == "internal":
        errors.append(
            "internal versioning can not be used for optimistic concurrency control. Please use "
            "`if_seq_no` and `if_primary_term` instead"
        )
    if opts.if_seq_no is not None and opts.version is not None:
        errors.append("compare and write operations can not use versioning")
    if opts.if_seq_no is not None and opts.if_primary_term is None:
        errors.append("ifSeqNo is set, but primary term is [0]")
    if opts.if_primary_term is not None and opts.if_seq_no is None:
        errors.append(f"ifSeqNo is unassigned, but primary term is [{opts.if_primary_term}]")
    if create and opts.version_type != "internal":
        errors.append("create operations only support internal versioning. use index instead")
    if opts.version_type != "internal" and opts.version is None:
        errors.append("an external version is required")
    if doc_id is not None and len(doc_id.encode()) > MAX_ID_BYTES:
        errors.append(
            f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
            f"{len(doc_id.encode())}"
        )
    return errors


def validate_bulk(items: list[BulkItem]) -> None:
    """`BulkRequest.validate`: every item's own checks, all at once — one failing item fails
    the whole request (400 `action_request_validation_exception`). Items without versioning
    metadata and with a short id have nothing to check (the common case, kept fast)."""
    errors: list[str] = []
    for item in items:
        if not item.meta and (item.id is None or len(item.id) <= MAX_ID_BYTES // 4):
            continue
        if item.op == "update":
            continue  # checked as the update runs (its document decides)
        opts = write_options(item.meta.get, op_type=item.op == "index")
        create = item.op == "create" or opts.op_type == "create"
        errors += write_errors(opts, item.id, create=create)
    if errors:
        raise ActionRequestValidationError.of(*errors)


MAX_SOURCE_LENGTH_IN_TOSTRING = 2048


def byte_size(n: int) -> str:
    """`ByteSizeValue.toString`: the largest unit, one decimal when it has one."""
    value, suffix = float(n), "b"
    for unit, size in (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20),
                       ("kb", 1 << 10)):  # fmt: skip
        if n >= size:
            value, suffix = n / size, unit
            break
    text = f"{value:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + suffix


def source_description(source: Any) -> str:
    """The `source[...]` of `IndexRequest.toString` (a task's description): the JSON, or its
    length when it is longer than 2 kB."""
    text = jsontext.dumps(source)
    length = len(text.encode())
    if length > MAX_SOURCE_LENGTH_IN_TOSTRING:
        return (
            f"n/a, actual length: [{byte_size(length)}], max length: "
            f"{byte_size(MAX_SOURCE_LENGTH_IN_TOSTRING)}"
        )
    return text


def _source_of(body: Any) -> dict[str, Any]:
    if body is None:
        raise ActionRequestValidationError.of("source is missing")
    if not isinstance(body, dict):
        # `DocumentParser.validateStart`, wrapped by `parseDocument`
        raise MapperParsingError(
            "failed to parse",
            cause=MapperParsingError("Malformed content, must start with an object"),
        )
    return body


_UPDATE_KEYS = frozenset(
    {"doc", "upsert", "doc_as_upsert", "detect_noop", "script", "scripted_upsert", "_source"}
)


def parse_update(body: Any) -> dict[str, Any]:
    """`UpdateRequest.fromXContent` for a partial document (scripts are not simulated)."""
    if not isinstance(body, dict):
        raise ActionRequestValidationError.of("script or doc is missing")
    unknown = [k for k in body if k not in _UPDATE_KEYS]
    if unknown:
        raise IllegalArgumentError(f"[UpdateRequest] unknown field [{unknown[0]}]")
    if "script" in body:
        raise IllegalArgumentError(
            "[script] is not supported by tasksim's update: use a partial [doc] (with "
            "[doc_as_upsert] or [upsert])"
        )
    doc = body.get("doc")
    if doc is None:
        raise ActionRequestValidationError.of("script or doc is missing")
    if not isinstance(doc, dict) or not isinstance(body.get("upsert", {}), dict):
        raise ParsingError("[UpdateRequest] failed to parse field [doc]")
    return {
        "doc": doc,
        "upsert": body.get("upsert"),
        "doc_as_upsert": bool(body.get("doc_as_upsert", False)),
        "detect_noop": bool(body.get("detect_noop", True)),
    }


def run_search(
    snapshot: list[Target], req: SearchRequest, shards: dict[str, int]
) -> dict[str, Any]:
    return search(snapshot, req, took=0, shards=shards)


def index_settings(body: Any) -> dict[str, Any]:
    """Index settings, nested or dotted, as flat `index.`-prefixed names (`null` resets)."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((f"{name}.", value))
            else:
                out[name if name.startswith("index.") else f"index.{name}"] = value
    return out


def register(router: Router, cluster: Cluster) -> None:
    indices = cluster.indices
    scrolls = Scrolls()  # `_search?scroll=` and coordinator/rest_scroll.py (byquery)
    rest_scroll.register(router, cluster, scrolls)
    waiting: dict[str, trio.Event] = {}  # index → woken by its next refresh

    def now() -> float:
        return trio.current_time()

    def data_nodes() -> list[str]:
        return [n.id for n in cluster.state.nodes if n.has_role("data")]

    def listen(name: str) -> None:
        docs = indices.documents.get(name)
        if docs is not None and not docs.on_refresh:

            def woken() -> None:
                event = waiting.pop(name, None)
                if event is not None:
                    event.set()

            docs.on_refresh.append(woken)

    ensure_index = cluster.auto_create  # a write's index, auto-created when the setting allows

    def existing(name: str) -> Index:
        index = indices.get(name)
        if index is None:
            raise IndexNotFoundError.of(name)
        return index

    async def run(spec: pb.TaskSpec, headers: Headers) -> pb.RunTaskResponse:
        request = pb.RunTaskRequest(spec=spec, headers=headers_to_pb(headers))
        return await cluster.local.run_task(request, local=False)

    async def wait_visible(name: str) -> None:
        """`refresh=wait_for`: until a refresh has made the index's writes visible."""
        while True:
            docs = indices.documents.get(name)
            if docs is None or not docs.pending:
                return
            due = docs.next_refresh_at(now())
            if due is None:  # the schedule is off: the next explicit refresh
                listen(name)
                event = waiting.setdefault(name, trio.Event())
                await event.wait()
                continue
            await trio.sleep_until(due)
            docs.searchable(now())

    async def after_write(names: Iterable[str], policy: str) -> bool:
        """The refresh policy of a write; True when it forced a refresh."""
        if policy == "true":
            for name in dict.fromkeys(names):
                if name in indices:
                    indices.docs(name).refresh(now())
            return True
        if policy == "wait_for":
            for name in dict.fromkeys(names):
                await wait_visible(name)
        return False

    def read_options(params: Params) -> tuple[bool, bool]:
        """`ignore_unavailable` and `allow_no_indices` (read before `finish()`)."""
        return (
            params.param_bool("ignore_unavailable", False),
            params.param_bool("allow_no_indices", True),
        )

    def resolve_for_read(request: RestRequest, options: tuple[bool, bool]) -> list[Index]:
        """The indices a search or count reads: `ignore_unavailable` skips missing names,
        `allow_no_indices=false` refuses an expression that matches nothing."""
        lenient, allow_none = options
        expression = request.path_params.get("index", "_all")
        found: dict[str, Index] = {}
        for part in expression.split(","):
            try:
                found.update((i.name, i) for i in indices.resolve(part))
            except IndexNotFoundError:
                if not lenient:
                    raise
        if not found and not allow_none:
            raise IndexNotFoundError.of(expression)
        return list(found.values())

    def targets(found: list[Index]) -> list[Target]:
        return indices.documents.targets(
            [i.name for i in found], now(), {i.name: i.docs for i in found}
        )

    def real_per_shard(found: list[Target]) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for t in found:
            for d in t.docs:
                out[(t.name, d.shard)] = out.get((t.name, d.shard), 0) + 1
        return out

    def search_shards(found: list[Index]) -> dict[str, int]:
        n = sum(len(i.shards) for i in found)
        return {"total": n, "successful": n, "skipped": 0, "failed": 0}

    # -- single documents ------------------------------------------------------------------------

    async def index_doc(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        doc_id = request.path_params.get("id")
        params = request.params
        create = request.path.rstrip("/").split("/")[2] == "_create"
        opts = write_options(params.param, op_type=not create)
        for key in ("routing", "pipeline", "timeout", "wait_for_active_shards", "require_alias"):
            params.param(key)
        request.finish(body_allowed=True)
        source = _source_of(request.json_body())
        # An auto-generated id is always a create (`IndexRequest.autoGenerateId`).
        create = create or opts.op_type == "create" or doc_id is None
        validate_write(opts, doc_id, create=create)
        index = ensure_index(name)
        if doc_id is None:
            doc_id = indices.documents.ids.next(int(now() * 1000))
        shard = shard_of(doc_id, len(index.shards))
        described = f"index {{[{name}][{doc_id}], source[{source_description(source)}]}}"
        await run(write_spec(INDEX_ACTION, [(index, shard)], cluster.timing,
                             description=described), request.task_headers)  # fmt: skip
        result = indices.docs(name).index(
            doc_id,
            source,
            op_type="create" if create else "index",
            if_seq_no=opts.if_seq_no,
            if_primary_term=opts.if_primary_term,
            version=opts.version,
            version_type=opts.version_type,
        )
        forced = await after_write([name], opts.refresh)
        headers = {"Location": f"/{name}/_doc/{doc_id}"} if result.status == 201 else {}
        body = result.body(index.shard_header(shard), forced_refresh=forced)
        return RestResponse(body, status=result.status, headers=headers)

    def source_filter(params: Params) -> Any:
        """`_source`, `_source_includes`, `_source_excludes` of a get (None: the whole source)."""
        values = {
            k: v
            for k in ("_source", "_source_includes", "_source_excludes")
            if (v := params.param(k)) is not None
        }
        return parse_search(None, values).source if values else None

    async def get_doc(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        doc_id = request.path_params["id"]
        params = request.params
        realtime = params.param_bool("realtime", True)
        refresh = params.param_bool("refresh", False)
        for key in ("routing", "preference", "stored_fields", "version", "version_type"):
            params.param(key)
        wanted = source_filter(params)
        request.finish()
        me = cluster.local.register(GET_ACTION, local=False, headers=request.task_headers)
        try:
            existing(name)
            docs = indices.docs(name)
            if refresh:
                docs.refresh(now())
            if realtime:
                doc = docs.get(doc_id)
            else:
                doc = next((d for d in docs.searchable(now()) if d.id == doc_id), None)
        finally:
            cluster.local.unregister(me)
        if doc is None:
            return RestResponse({"_index": name, "_id": doc_id, "found": False}, status=404)
        body = doc.get_body(name)
        if wanted is not None:
            if wanted.fetch:
                body["_source"] = wanted.apply(doc.source)
            else:
                del body["_source"]
        return RestResponse(body)

    async def mget(request: RestRequest) -> RestResponse:
        """`_mget`: `docs` (`_index`, `_id`) or `ids` (with an index in the path), realtime."""
        params = request.params
        params.param_bool("realtime", True)
        refresh = params.param_bool("refresh", False)
        for key in ("routing", "preference", "stored_fields"):
            params.param(key)
        wanted = source_filter(params)
        request.finish(body_allowed=True)
        body = request.json_body()
        default = request.path_params.get("index")
        wanted_docs: list[tuple[str | None, Any]] = []
        if isinstance(body, dict) and isinstance(body.get("docs"), list):
            for entry in body["docs"]:
                entry = entry if isinstance(entry, dict) else {}
                wanted_docs.append((entry.get("_index", default), entry.get("_id")))
        elif isinstance(body, dict) and isinstance(body.get("ids"), list):
            wanted_docs = [(default, doc_id) for doc_id in body["ids"]]
        errors = [f"index is missing for doc {n}" for n, (i, _) in enumerate(wanted_docs) if not i]
        errors += [
            f"id is missing for doc {n}" for n, (_, d) in enumerate(wanted_docs) if d is None
        ]
        if not wanted_docs:
            errors.append("no documents to get")
        if errors:
            raise ActionRequestValidationError.of(*errors)
        me = cluster.local.register(MGET_ACTION, local=False, headers=request.task_headers)
        out: list[dict[str, Any]] = []
        try:
            for name, doc_id in wanted_docs:
                assert name is not None
                if name not in indices:
                    out.append({"_index": name, "_id": str(doc_id),
                                "error": IndexNotFoundError.of(name).xcontent()})  # fmt: skip
                    continue
                docs = indices.docs(name)
                if refresh:
                    docs.refresh(now())
                doc = docs.get(str(doc_id))
                if doc is None:
                    out.append({"_index": name, "_id": str(doc_id), "found": False})
                    continue
                got = doc.get_body(name)
                if wanted is not None:
                    if wanted.fetch:
                        got["_source"] = wanted.apply(doc.source)
                    else:
                        del got["_source"]
                out.append(got)
        finally:
            cluster.local.unregister(me)
        return RestResponse({"docs": out})

    async def get_source(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        doc_id = request.path_params["id"]
        params = request.params
        params.param_bool("realtime", True)
        params.param_bool("refresh", False)
        for key in ("routing", "preference", "version", "version_type"):
            params.param(key)
        wanted = source_filter(params)
        request.finish()
        existing(name)
        doc = indices.docs(name).get(doc_id)
        if doc is None:
            raise ResourceNotFoundError(f"Document not found [{name}]/[{doc_id}]")
        if wanted is not None and wanted.fetch:
            return RestResponse(wanted.apply(doc.source))
        return RestResponse(doc.source)

    async def delete_doc(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        doc_id = request.path_params["id"]
        params = request.params
        opts = write_options(params.param)
        for key in ("routing", "timeout", "wait_for_active_shards"):
            params.param(key)
        request.finish()
        validate_write(opts, doc_id)
        index = existing(name)
        shard = shard_of(doc_id, len(index.shards))
        await run(write_spec(DELETE_ACTION, [(index, shard)], cluster.timing,
                             description=f"delete {{[{name}][{doc_id}]}}"),
                  request.task_headers)  # fmt: skip
        result = indices.docs(name).delete(
            doc_id,
            if_seq_no=opts.if_seq_no,
            if_primary_term=opts.if_primary_term,
            version=opts.version,
            version_type=opts.version_type,
        )
        forced = await after_write([name], opts.refresh)
        body = result.body(index.shard_header(shard), forced_refresh=forced)
        return RestResponse(body, status=result.status)

    async def update_doc(request: RestRequest) -> RestResponse:
        name = request.path_params["index"]
        doc_id = request.path_params["id"]
        params = request.params
        opts = write_options(params.param)
        for key in ("routing", "timeout", "wait_for_active_shards", "retry_on_conflict",
                    "require_alias", "lang"):  # fmt: skip
            params.param(key)
        wanted = source_filter(params)
        request.finish(body_allowed=True)
        update = parse_update(request.json_body())
        if opts.version is not None:
            raise ActionRequestValidationError.of(
                "can't provide version in update request, use `if_seq_no` and `if_primary_term`"
            )
        index = ensure_index(name)
        shard = shard_of(doc_id, len(index.shards))
        described = f"update {{[{name}][{doc_id}]}}"
        await run(write_spec(UPDATE_ACTION, [(index, shard)], cluster.timing,
                             description=described), request.task_headers)  # fmt: skip
        result = indices.docs(name).update(
            doc_id, if_seq_no=opts.if_seq_no, if_primary_term=opts.if_primary_term, **update
        )
        forced = await after_write([name], opts.refresh)
        body = result.body(index.shard_header(shard), forced_refresh=forced)
        if wanted is not None and wanted.fetch and result.source is not None:
            body["get"] = {
                "_seq_no": result.seq_no,
                "_primary_term": result.primary_term,
                "found": True,
                "_source": wanted.apply(result.source),
            }
        return RestResponse(body, status=result.status)

    # -- _bulk -----------------------------------------------------------------------------------

    def apply_item(
        item: BulkItem, policy: str, refused: dict[str, OpenSearchError]
    ) -> tuple[WriteResult | None, OpenSearchError | None]:
        """One bulk item on the store: its result, or the error its item answers with
        (`refused`: the indices auto-create would not create, with why)."""
        try:
            meta = item.meta
            opts = write_options(meta.get, op_type=item.op == "index")
            opts = replace(opts, refresh=policy)
            index = indices.get(item.index)
            if index is None:
                raise refused.get(item.index) or IndexNotFoundError.of(item.index)
            docs = indices.docs(item.index)
            assert item.id is not None
            if item.op in ("index", "create"):
                create = item.op == "create" or opts.op_type == "create"
                validate_write(opts, item.id, create=create)
                return docs.index(
                    item.id,
                    _source_of(item.source),
                    op_type="create" if create else "index",
                    if_seq_no=opts.if_seq_no,
                    if_primary_term=opts.if_primary_term,
                    version=opts.version,
                    version_type=opts.version_type,
                ), None
            if item.op == "delete":
                validate_write(opts, item.id)
                return docs.delete(
                    item.id,
                    if_seq_no=opts.if_seq_no,
                    if_primary_term=opts.if_primary_term,
                    version=opts.version,
                    version_type=opts.version_type,
                ), None
            update = parse_update(item.source)
            return docs.update(
                item.id, if_seq_no=opts.if_seq_no, if_primary_term=opts.if_primary_term, **update
            ), None
        except OpenSearchError as e:
            return None, e

    def item_body(
        item: BulkItem, result: WriteResult | None, error: OpenSearchError | None, forced: bool
    ) -> dict[str, Any]:
        if error is not None or result is None:
            assert error is not None
            return {
                item.op: {
                    "_index": item.index,
                    "_id": item.id,
                    "status": error.status,
                    "error": error.xcontent(),
                }
            }
        index = indices.get(item.index)
        shards = (
            index.shard_header(result.shard)
            if index is not None
            else {"total": 1, "successful": 1, "failed": 0}
        )
        body = result.body(shards, forced_refresh=forced)
        body["status"] = result.status
        return {item.op: body}

    async def bulk(request: RestRequest) -> RestResponse:
        params = request.params
        policy = parse_refresh(params.param("refresh"))
        for key in ("timeout", "wait_for_active_shards", "require_alias", "pipeline", "routing",
                    "_source", "_source_includes", "_source_excludes"):  # fmt: skip
            params.param(key)
        request.finish(body_allowed=True)
        default_index = request.path_params.get("index")
        if len(request.body) < PARSE_AHEAD_BYTES:
            items = parse_bulk(request.body, default_index)
        else:  # line by line, off the loop (simnode/offload.py): it keeps serving meanwhile
            items = await offload(parse_bulk, request.body, default_index)
        validate_bulk(items)
        # Indices of index/create/update items are created; a delete never creates one. An index
        # that `action.auto_create_index` refuses fails its items, not the request (as
        # TransportBulkAction's setResponseFailureIfIndexMatches).
        refused: dict[str, OpenSearchError] = {}
        for item in items:
            if item.op != "delete" and item.index not in refused:
                try:
                    ensure_index(item.index)
                except IndexNotFoundError as e:
                    refused[item.index] = e
        stamp = int(now() * 1000)
        for n, item in enumerate(items):
            if n and n % APPLY_BATCH == 0:
                await trio.lowlevel.checkpoint()
            if item.id is None:
                item.id = indices.documents.ids.next(stamp)
        planned = [i for i in items if i.index in indices]
        started = trio.current_time()
        if planned:
            if len(planned) < BULK_PLAN_AHEAD_ITEMS:
                spec = plan_bulk(planned, indices, cluster.timing)
            else:
                # the thread plans against the indices as they are now, not the live model
                taken = {i.index: index for i in planned if (index := indices.get(i.index))}
                spec = await offload(plan_bulk, planned, taken, cluster.timing)
            await run(spec, request.task_headers)
        outcomes: list[tuple[BulkItem, WriteResult | None, OpenSearchError | None]] = []
        for n, item in enumerate(items):
            if n and n % APPLY_BATCH == 0:
                await trio.lowlevel.checkpoint()
            result, error = apply_item(item, policy, refused)
            outcomes.append((item, result, error))
        written = [i.index for i, r, _ in outcomes if r is not None]
        forced = await after_write(written, policy)
        body_items = []
        for n, (item, result, error) in enumerate(outcomes):
            if n and n % APPLY_BATCH == 0:
                await trio.lowlevel.checkpoint()
            body_items.append(item_body(item, result, error, forced))
        took = int((trio.current_time() - started) * 1000)
        errors = any(e is not None for _, _, e in outcomes)
        return RestResponse({"took": took, "errors": errors, "items": body_items})

    # -- _search and _count ------------------------------------------------------------------------

    def search_values(params: Params) -> dict[str, str]:
        return {k: v for k in _SEARCH_VALUES if (v := params.param(k)) is not None}

    async def run_search_tree(
        request: RestRequest,
        found: list[Index],
        description: dict[str, Any] | None,
        response: dict[str, Any],
        fetch: set[tuple[str, int]],
        real: dict[tuple[str, int], int],
    ) -> dict[str, Any]:
        spec = plan_search(found, description, cluster.timing, response, fetch=fetch,
                           real_docs=real)  # fmt: skip
        started = trio.current_time()
        try:
            answer = await run(spec, request.task_headers)
        except OpenSearchError as e:
            raise SearchPhaseExecutionError(
                "all shards failed", metadata=[("phase", "query")], cause=e
            ) from e
        body: dict[str, Any] = jsontext.loads(answer.response_json)
        if "took" in body:
            body["took"] = int((trio.current_time() - started) * 1000)
        return body

    def shard_failure(e: OpenSearchError) -> OpenSearchError:
        """A query that fails on every shard: `all shards failed`, with the shard's status."""
        err = SearchPhaseExecutionError("all shards failed", metadata=[("phase", "query")], cause=e)
        err.status = e.status
        return err

    async def search_handler(request: RestRequest) -> RestResponse:
        params = request.params
        values = search_values(params)
        scroll = params.param("scroll")  # coordinator/scroll.py (byquery)
        for key in _SEARCH_PARAMS:
            params.param(key)
        options = read_options(params)
        request.finish(body_allowed=True)
        source = request.json_body()
        try:
            req = parse_search(source, values)
        except ParsingError as e:
            raise e.located(request.body) from None
        found = resolve_for_read(request, options)
        snapshot = targets(found)
        try:
            if sum(len(t.docs) for t in snapshot) < OFFLOAD_DOCS:
                response = search(snapshot, req, took=0, shards=search_shards(found))
            else:  # a long scan: in a worker thread (the snapshot is immutable), the loop serves
                response = await offload(run_search, snapshot, req, search_shards(found))
        except OpenSearchError as e:
            raise shard_failure(e) from e
        fetch = set()
        for hit in response["hits"]["hits"]:
            index = indices.get(hit["_index"])
            if index is not None:
                fetch.add((index.name, shard_of(hit["_id"], len(index.shards))))
        description = source if isinstance(source, dict) else None
        if "size" in values:
            description = {**(description or {}), "size": req.size}
        body = await run_search_tree(
            request, found, description, response, fetch, real_per_shard(snapshot)
        )
        if scroll is not None:  # the first page of a scroll: its context keeps the snapshot
            keep_alive = parse_keep_alive(scroll)
            body = {"_scroll_id": scrolls.open(snapshot, req, keep_alive, now()), **body}
        return RestResponse(body)

    async def count_handler(request: RestRequest) -> RestResponse:
        params = request.params
        q = params.param("q")
        df = params.param("df")
        options = read_options(params)
        for key in _COUNT_PARAMS:
            params.param(key)
        request.finish(body_allowed=True)
        source = request.json_body()
        query = None
        if source is not None:
            if not isinstance(source, dict):
                raise ParsingError("Expected [START_OBJECT] but found [START_ARRAY]")
            extra = [k for k in source if k != "query"]
            if extra:
                raise ParsingError(f"request does not support [{extra[0]}]").located(
                    request.body, ()
                )
            if "query" in source:
                try:
                    query = parse_query(source["query"], ("query",))
                except ParsingError as e:
                    raise e.located(request.body) from None
        if q is not None and source is None:  # `RestCountAction`: the body, else `q`
            query = query_string(q, df)
        if query is None:
            query = parse_query({"match_all": {}})
        found = resolve_for_read(request, options)
        snapshot = targets(found)
        shards = search_shards(found)
        if sum(len(t.docs) for t in snapshot) < OFFLOAD_DOCS:
            counted = count(snapshot, query)
        else:
            counted = await offload(count, snapshot, query)
        response = count_body(counted, shards)
        body = await run_search_tree(
            request, found, {"size": 0}, response, set(), real_per_shard(snapshot)
        )
        return RestResponse(body)

    # -- _refresh, _mapping, HEAD /{index} ---------------------------------------------------------

    async def refresh(request: RestRequest) -> RestResponse:
        for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards"):
            request.params.param(key)
        request.finish()
        me = cluster.local.register(REFRESH_ACTION, local=False, headers=request.task_headers)
        try:
            found = indices.resolve(request.path_params.get("index", "_all"))
            total = successful = 0
            for index in found:
                indices.docs(index.name).refresh(now())
                header = index.shards_header()
                total += header["total"]
                successful += header["successful"]
        finally:
            cluster.local.unregister(me)
        return RestResponse({"_shards": {"total": total, "successful": successful, "failed": 0}})

    async def get_settings(request: RestRequest) -> RestResponse:
        for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards", "local",
                    "flat_settings", "include_defaults", "master_timeout",
                    "cluster_manager_timeout"):  # fmt: skip
            request.params.param(key)
        request.finish()
        found = indices.resolve(request.path_params.get("index", "_all"))
        return RestResponse({i.name: {"settings": {"index": indices.settings_body(i)}}
                             for i in found})  # fmt: skip

    async def put_settings(request: RestRequest) -> RestResponse:
        """`PUT /{index}/_settings`: the dynamic settings tasksim simulates
        (`index.refresh_interval`, `index.number_of_replicas`), OpenSearch's errors otherwise."""
        for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards", "timeout",
                    "master_timeout", "cluster_manager_timeout", "preserve_existing",
                    "flat_settings"):  # fmt: skip
            request.params.param(key)
        request.finish(body_allowed=True)
        body = request.json_body()
        if isinstance(body, dict) and len(body) == 1 and isinstance(body.get("settings"), dict):
            body = body["settings"]
        flat = index_settings(body)
        if not flat:
            raise ActionRequestValidationError.of("no settings to update")
        found = indices.resolve(request.path_params["index"])
        changes: dict[str, Any] = {}
        for key, value in flat.items():
            if key == "index.refresh_interval":
                changes[key] = 1.0 if value is None else parse_interval(value)
            elif key == "index.number_of_replicas":
                number = _long(0 if value is None else value, key)
                if number is None or number < 0:
                    raise IllegalArgumentError(
                        f"Failed to parse value [{value}] for setting [{key}] must be >= 0"
                    )
                changes[key] = number
            elif key in ("index.number_of_shards", "index.hidden"):
                names = ", ".join(f"[{i.name}/{i.uuid}]" for i in found)
                raise IllegalArgumentError(
                    f"Can't update non dynamic settings [[{key}]] for open indices [{names}]"
                )
            else:
                raise IllegalArgumentError(
                    f"unknown setting [{key}] please check that any required plugins are "
                    "installed, or check the breaking changes documentation for removed settings"
                )
        me = cluster.local.register(
            "indices:admin/settings/update", local=False, headers=request.task_headers
        )
        try:
            for index in found:
                if "index.refresh_interval" in changes:
                    indices.docs(index.name).refresh_interval = changes["index.refresh_interval"]
                if "index.number_of_replicas" in changes:
                    indices.set_replicas(index.name, changes["index.number_of_replicas"],
                                         data_nodes())  # fmt: skip
        finally:
            cluster.local.unregister(me)
        return RestResponse({"acknowledged": True})

    async def get_mapping(request: RestRequest) -> RestResponse:
        for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards", "local",
                    "master_timeout", "cluster_manager_timeout"):  # fmt: skip
            request.params.param(key)
        request.finish()
        found = indices.resolve(request.path_params.get("index", "_all"))
        return RestResponse(
            {i.name: {"mappings": indices.docs(i.name).mapping.body()} for i in found}
        )

    async def index_exists(request: RestRequest) -> RestResponse:
        """`HEAD /{index}` (`RestIndicesExistsAction`): 200 when every name resolves, else 404."""
        for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards", "local",
                    "flat_settings", "include_defaults"):  # fmt: skip
            request.params.param(key)
        request.finish()
        try:
            found = indices.resolve(request.path_params["index"], allow_no_indices=False)
        except OpenSearchError:
            found = []
        return RestResponse("", status=200 if found else 404, raw=True)

    for method in ("PUT", "POST"):
        router.add(method, "/{index}/_doc/{id}", index_doc)
        router.add(method, "/{index}/_create/{id}", index_doc)
        router.add(method, "/_bulk", bulk)
        router.add(method, "/{index}/_bulk", bulk)
    router.add("POST", "/{index}/_doc", index_doc)
    router.add("GET", "/{index}/_doc/{id}", get_doc)
    router.add("HEAD", "/{index}/_doc/{id}", get_doc)
    router.add("GET", "/{index}/_source/{id}", get_source)
    router.add("HEAD", "/{index}/_source/{id}", get_source)
    router.add("DELETE", "/{index}/_doc/{id}", delete_doc)
    router.add("POST", "/{index}/_update/{id}", update_doc)
    for method in ("GET", "POST"):
        router.add(method, "/_search", search_handler)
        router.add(method, "/{index}/_search", search_handler)
        router.add(method, "/_count", count_handler)
        router.add(method, "/{index}/_count", count_handler)
        router.add(method, "/_refresh", refresh)
        router.add(method, "/{index}/_refresh", refresh)
        router.add(method, "/_mget", mget)
        router.add(method, "/{index}/_mget", mget)
    router.add("HEAD", "/{index}", index_exists)
    router.add("GET", "/_settings", get_settings)
    router.add("GET", "/{index}/_settings", get_settings)
    router.add("PUT", "/{index}/_settings", put_settings)
    router.add("GET", "/_mapping", get_mapping)
    router.add("GET", "/{index}/_mapping", get_mapping)
