"""Operations a user really runs, planned as task trees: `_bulk` and single-document writes,
`_search`, `_reindex`, `_update_by_query`, `_delete_by_query` (the REST layer is
coordinator/rest_docs.py and coordinator/rest_ops.py).

Each `plan_*` takes the parsed request and the index model and returns the `TaskSpec` the
coordinating node runs as its REST-entry task, with OpenSearch's action names and descriptions:

- bulk: `indices:data/write/bulk` → one `bulk[s]` per shard written (through the node's client)
  → `bulk[s][p]` on the primary's node → `bulk[s][r]` on each replica's node;
- search: cancellable `indices:data/read/search` → `[phase/query]` on the node of each shard, then
  `[phase/fetch/id]` on the shards that have hits;
- bulk-by-scroll: a cancellable `BulkByScrollTask` whose worker (simnode/node.py) sends, batch by
  batch, a scroll search and a bulk request as children; `slices` > 1 makes it a leader of slice
  subtasks.

Parameter parsing keeps OpenSearch's messages (`AbstractBaseReindexRestHandler`). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.documents import MATCH_ALL, ParsingError, Query, SourceFilter, shard_of
from coordinator.documents.search import SortField
from coordinator.indices import Index, Indices, Timing
from coordinator.painless import Script
from coordinator.params import Params, parse_time_value
from simnode import bulk_by_scroll, jsontext
from simnode._wire import node_pb2 as pb
from simnode.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    NumberFormatError,
    OpenSearchError,
    ParseError,
)

BULK_ACTION = "indices:data/write/bulk"
SEARCH_ACTION = "indices:data/read/search"
BULK_OPS = ("index", "create", "update", "delete")
# The keys an action line may have (`BulkRequestParser`).
BULK_META = frozenset(
    {
        "_index",
        "_id",
        "routing",
        "op_type",
        "version",
        "version_type",
        "if_seq_no",
        "if_primary_term",
        "retry_on_conflict",
        "pipeline",
        "_source",
        "require_alias",
        "dynamic_templates",
    }
)


# -- bulk-by-scroll parameters ----------------------------------------------------------------------


def parse_requests_per_second(params: Params) -> float | None:
    """`AbstractBaseReindexRestHandler.parseRequestsPerSecond`: None, +inf for -1, else > 0."""
    text = params.param("requests_per_second")
    if text is None:
        return None
    message = "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling."
    try:
        value = float(text)
    except ValueError:
        raise IllegalArgumentError(message) from None
    if value == -1:
        return math.inf
    if not value > 0:
        raise IllegalArgumentError(message)
    return value


def parse_slices(params: Params) -> int | None:
    """`parseSlices`: None, 0 for `auto`, else a positive integer."""
    text = params.param("slices")
    if text is None:
        return None
    if text == "auto":
        return 0
    message = f'[slices] must be a positive integer or the string "auto", but was [{text}]'
    try:
        value = int(text)
    except ValueError:
        raise IllegalArgumentError(message) from None
    if value < 1:
        raise IllegalArgumentError(message)
    return value


@dataclass
class BulkByScrollRequest:
    kind: str
    sources: list[str]
    dest: str = ""
    batch_size: int = bulk_by_scroll.DEFAULT_SCROLL_SIZE
    max_docs: int = -1
    requests_per_second: float = math.inf
    slices: int = 1
    wait_for_completion: bool = True
    refresh: bool = False
    query: Query = MATCH_ALL
    script: Script | None = None
    abort_on_version_conflict: bool = True
    op_type: str = "index"  # reindex's dest
    version_type: str = "internal"
    source_filter: SourceFilter | None = None
    sort: tuple[SortField, ...] = ()  # reindex's deprecated `source.sort`
    manual_slice: tuple[int, int] | None = None  # `slice: {id, max}` of the search
    invalid: list[str] = field(default_factory=list)  # more `validate` errors, found parsing

    @property
    def description(self) -> str:
        sources = f"[{', '.join(self.sources)}]" if self.sources else "[all indices]"
        if self.kind == "reindex":
            return f"reindex from {sources} to [{self.dest}]"
        return f"{self.kind.replace('_', '-')} {sources}"

    def validate(self) -> None:
        errors = list(self.invalid)
        if self.kind == "reindex" and not self.sources:
            errors.append("use _all if you really want to copy from all existing indexes")
        if self.kind == "reindex" and not self.dest:
            errors.append("index must be specified")
        if not (self.max_docs == -1 or self.max_docs > 0):
            errors.append(
                "maxDocs should be greater than 0 if the request is limited to some number of "
                f"documents or -1 if it isn't but it was [{self.max_docs}]"
            )
        if errors:
            raise ActionRequestValidationError.of(*errors)


def set_max_docs(req: BulkByScrollRequest, value: int) -> None:
    """`setMaxDocsValidateIdentical` + `setMaxDocs`."""
    if req.max_docs != -1 and req.max_docs != value:
        raise IllegalArgumentError(
            f"[max_docs] set to two different values [{req.max_docs}] and [{value}]"
        )
    if value < 0:
        raise IllegalArgumentError(f"[max_docs] parameter cannot be negative, found [{value}]")
    if value < req.slices:
        raise IllegalArgumentError("[max_docs] should be >= [slices]")
    req.max_docs = value


def parse_manual_slice(spec: Any, req: BulkByScrollRequest) -> None:
    """`SliceBuilder`: `{"id": n, "max": m}`, 0 <= id < max, max > 1; not with `slices`."""
    if not isinstance(spec, dict):
        raise ParsingError("[slice] failed to parse object")
    slice_id, most = spec.get("id"), spec.get("max")
    if not isinstance(slice_id, int) or isinstance(slice_id, bool):
        raise IllegalArgumentError("id must be greater than or equal to 0")
    if not isinstance(most, int) or isinstance(most, bool) or most <= 1:
        raise IllegalArgumentError("max must be greater than 1")
    if slice_id < 0:
        raise IllegalArgumentError("id must be greater than or equal to 0")
    if slice_id >= most:
        raise IllegalArgumentError("max must be greater than id")
    req.manual_slice = (slice_id, most)
    if req.slices != 1:
        req.invalid.append("can't specify both manual and automatic slicing at the same time")


class XContentParseError(OpenSearchError):
    """`XContentParseException`: `[line:col] [parser] unknown field [name]`."""

    type = "x_content_parse_exception"
    status = 400


REINDEX_FIELDS = ("source", "dest", "size", "max_docs", "script", "conflicts")
DEST_FIELDS = ("index", "version_type", "op_type", "pipeline", "routing")
# What `source` may hold: the search source (`SearchSourceBuilder`) and reindex's own keys.
SOURCE_FIELDS = (
    "index", "query", "size", "from", "_source", "sort", "slice", "remote", "stored_fields",
    "docvalue_fields", "script_fields", "timeout", "terminate_after", "track_total_hits",
    "version", "seq_no_primary_term", "min_score", "post_filter", "search_after",
)  # fmt: skip
REMOTE_FIELDS = ("host", "username", "password", "headers", "socket_timeout", "connect_timeout")
_TOKENS = ((dict, "START_OBJECT"), (list, "START_ARRAY"), (bool, "VALUE_BOOLEAN"),
           (str, "VALUE_STRING"), (int, "VALUE_NUMBER"), (float, "VALUE_NUMBER"))  # fmt: skip


def _field_at(raw: bytes, name: str) -> str:
    """`line:col` of the first `"name"` key in the body (where the parser met it)."""
    text = raw.decode("utf-8", "replace")
    at = text.find(f'"{name}"')
    if at < 0:
        return "1:1"
    line = text.count("\n", 0, at) + 1
    return f"{line}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def check_reindex_body(body: dict[str, Any], raw: bytes, req: BulkByScrollRequest) -> None:
    """`ReindexRequest.fromXContent` and `validate`: unknown fields are parse errors (the body's
    `ObjectParser`s, the search source's `Unknown key`), and what reindex does not take
    (`from`, `stored_fields`, `_source: false`) is a validation error. A `remote` source is
    checked as OpenSearch checks it, and then refused: `reindex.remote.allowlist` is empty."""
    for key in body:
        if key not in REINDEX_FIELDS:
            raise XContentParseError(f"[{_field_at(raw, key)}] [reindex] unknown field [{key}]")
    dest = body.get("dest")
    if isinstance(dest, dict):
        for key in dest:
            if key not in DEST_FIELDS:
                raise XContentParseError(f"[{_field_at(raw, key)}] [dest] unknown field [{key}]")
    source = body.get("source")
    if not isinstance(source, dict):
        return
    for key, value in source.items():
        if key not in SOURCE_FIELDS:
            token = next((t for kind, t in _TOKENS if isinstance(value, kind)), "VALUE_NULL")
            raise ParsingError(f"Unknown key for a {token} in [{key}].")
    size = source.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise NumberFormatError(f'For input string: "{size}"')
    if "from" in source:
        req.invalid.append("from is not supported in this context")
    if "stored_fields" in source:
        req.invalid.append("stored_fields is not supported in this context")
    if source.get("_source") is False:
        req.invalid.append("_source:false is not supported in this context")
    remote = source.get("remote")
    if isinstance(remote, dict):
        _check_remote(remote)


def _time_value(text: str, name: str) -> None:
    """`TimeValue.parseTimeValue` (coordinator/params.py's); a number it cannot read (`borked` ends
    with the `d` of days) is, in the request body, a parse error caused by
    `NumberFormatException`."""
    try:
        parse_time_value(text, name)
    except IllegalArgumentError as e:
        if isinstance(e.cause, NumberFormatError):
            raise ParseError(e.reason, cause=e.cause) from e
        raise


def _check_remote(remote: dict[str, Any]) -> None:
    """`ReindexRequest.buildRemoteInfo`, then `ReindexValidator.checkRemoteAllowlist` with the
    default (empty) `reindex.remote.allowlist`."""
    host = remote.get("host")
    if host is None:
        raise IllegalArgumentError("[host] must be specified to reindex from a remote cluster")
    m = re.fullmatch(r"(\w+)://([^:/]+):(\d+)(/.*)?", str(host))
    if m is None:
        raise IllegalArgumentError(
            f"[host] must be of the form [scheme]://[host]:[port](/[pathPrefix])? but was [{host}]"
        )
    for key in ("socket_timeout", "connect_timeout"):
        if key in remote:
            _time_value(str(remote[key]), key)
    unsupported = [k for k in remote if k not in REMOTE_FIELDS]
    if unsupported:
        raise IllegalArgumentError(f"Unsupported fields in [remote]: [{','.join(unsupported)}]")
    raise IllegalArgumentError(f"[{m[2]}:{m[3]}] not allowlisted in reindex.remote.allowlist")


def plan_bulk_by_scroll(
    req: BulkByScrollRequest,
    sources: list[Index],
    dest: Index | None,
    timing: Timing,
) -> pb.TaskSpec:
    total = sum(i.docs for i in sources)
    if req.max_docs != -1:
        total = min(total, req.max_docs)
    slices = req.slices
    if slices == 0:
        slices = bulk_by_scroll.auto_slices([len(i.shards) for i in sources])
    written = dest if (req.kind == "reindex" and dest is not None) else None
    bulk_shards = (
        written.shards if written is not None else tuple(s for i in sources for s in i.shards)
    )
    spec = pb.TaskSpec(
        action=bulk_by_scroll.ACTION_OF_KIND[req.kind],
        cancellable=True,
        duration_millis=0,
        description=req.description,
        store_result=not req.wait_for_completion,
        bulk_by_scroll=pb.BulkByScrollSpec(
            kind=req.kind,
            total=total,
            batch_size=req.batch_size,
            requests_per_second=req.requests_per_second,
            slices=slices,
            search_nodes=[s.primary for i in sources for s in i.shards],
            bulk_nodes=[s.primary for s in bulk_shards],
            batch_millis=timing.batch_millis(req.batch_size),
            source_indices=[i.name for i in sources],
            dest_index=req.dest if req.kind == "reindex" else "",
        ),
    )
    return spec


# -- _search ---------------------------------------------------------------------------------------


def search_description(indices: list[str], source: dict[str, Any] | None) -> str:
    body = jsontext.dumps(source or {})
    return f"indices[{','.join(indices)}], search_type[QUERY_THEN_FETCH], source[{body}]"


def plan_search(
    indices: list[Index],
    source: dict[str, Any] | None,
    timing: Timing,
    response: dict[str, Any],
    *,
    fetch: set[tuple[str, int]] | frozenset[tuple[str, int]] = frozenset(),
    real_docs: dict[tuple[str, int], int] | None = None,
) -> pb.TaskSpec:
    """The search tree: a query phase on the node of every shard (its cost from the shard's
    synthetic and real documents), then a fetch phase on the shards in `fetch` (those with hits
    on the page); the coordinating task answers `response` when it is not cancelled."""
    real = real_docs or {}
    shards = [(i, s) for i in indices for s in i.shards]
    children: list[pb.ChildSpec] = []
    for index, shard in shards:
        docs = index.shard_docs(shard.shard) + real.get((index.name, shard.shard), 0)
        children.append(
            pb.ChildSpec(
                node_id=shard.primary,
                task=pb.TaskSpec(
                    action=f"{SEARCH_ACTION}[phase/query]",
                    cancellable=True,
                    duration_millis=timing.query_millis(docs),
                    description=f"shardId[[{index.name}][{shard.shard}]]",
                ),
            )
        )
    for index, shard in shards:
        if (index.name, shard.shard) not in fetch:
            continue
        children.append(
            pb.ChildSpec(
                node_id=shard.primary,
                phase=1,
                task=pb.TaskSpec(
                    action=f"{SEARCH_ACTION}[phase/fetch/id]",
                    cancellable=True,
                    duration_millis=timing.fetch_millis,
                    description=f"shardId[[{index.name}][{shard.shard}]]",
                ),
            )
        )
    return pb.TaskSpec(
        action=SEARCH_ACTION,
        cancellable=True,
        duration_millis=0,
        description=search_description([i.name for i in indices], source),
        response_json=jsontext.dumps(response),
        children=children,
    )


# -- _bulk and single-document writes ---------------------------------------------------------------


@dataclass
class BulkItem:
    """One action of a `_bulk` body: its op, index, id (None: auto-generated), the action line's
    other metadata (`if_seq_no`, `version`, ...), and its source line (None for delete)."""

    op: str
    index: str
    id: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    source: Any = None


def parse_bulk(body: bytes, default_index: str | None) -> list[BulkItem]:
    """The NDJSON of `_bulk`: an action line, then a source line for index/create/update."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    items: list[BulkItem] = []
    i = 0
    errors: list[str] = []
    while i < len(lines):
        number = i + 1
        try:
            action = jsontext.loads(lines[i])
        except ValueError:  # NestingTooDeep too
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{number}], expected START_OBJECT or "
                "END_OBJECT but found [VALUE_STRING]"
            ) from None
        if not isinstance(action, dict) or len(action) != 1:
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{number}], expected START_OBJECT but found "
                "[END_OBJECT]"
            )
        ((op, meta),) = action.items()
        if op not in BULK_OPS:
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{number}], expected field [create], [delete], "
                f"[index] or [update] but found [{op}]"
            )
        meta = meta if isinstance(meta, dict) else {}
        unknown = [k for k in meta if k not in BULK_META]
        if unknown:
            raise IllegalArgumentError(
                f"Action/metadata line [{number}] contains an unknown parameter [{unknown[0]}]"
            )
        index = meta.get("_index", default_index)
        if not index:
            errors.append("index is missing")
        doc_id = meta.get("_id")
        if op in ("update", "delete") and doc_id is None:
            errors.append("id is missing")
        source: Any = None
        if op != "delete":
            if i + 1 >= len(lines):
                raise IllegalArgumentError("The bulk request must be terminated by a newline [\\n]")
            try:
                source = jsontext.loads(lines[i + 1])
            except ValueError as e:
                raise ParseError(f"Failed to parse content to map: {e}") from None
        others = {k: v for k, v in meta.items() if k not in ("_index", "_id")}
        items.append(
            BulkItem(op, str(index or ""), None if doc_id is None else str(doc_id), others, source)
        )
        i += 1 if op == "delete" else 2
    if not items:
        errors.append("no requests added")
    if errors:
        raise ActionRequestValidationError.of(*errors)
    return items


def write_spec(
    action: str,
    writes: list[tuple[Index, int]],
    timing: Timing,
    *,
    description: str = "",
) -> pb.TaskSpec:
    """The tree of a write (`_bulk`, or a single index/delete/update): `action` → one `bulk[s]`
    per shard written (through the node's client) → `bulk[s][p]` on the primary's node →
    `bulk[s][r]` on each replica's node. `writes` is (index, shard) per document written."""
    spec = pb.TaskSpec(action=action, cancellable=False, duration_millis=0, description=description)
    per_shard: dict[tuple[str, int], int] = {}
    by_name: dict[str, Index] = {}
    for index, shard in writes:
        by_name[index.name] = index
        per_shard[(index.name, shard)] = per_shard.get((index.name, shard), 0) + 1
    for (name, shard_no), count in sorted(per_shard.items()):
        index = by_name[name]
        routing = index.shards[shard_no]
        described = f"requests[{count}], index[{name}][{shard_no}]"
        replicas = [
            pb.ChildSpec(
                node_id=node,
                task=pb.TaskSpec(
                    action=f"{BULK_ACTION}[s][r]",
                    cancellable=False,
                    duration_millis=timing.shard_write_millis,
                    description=described,
                ),
            )
            for node in routing.replicas
        ]
        primary = pb.TaskSpec(
            action=f"{BULK_ACTION}[s][p]",
            cancellable=False,
            duration_millis=timing.shard_write_millis,
            description=described,
            children=replicas,
        )
        spec.children.append(
            pb.ChildSpec(
                local_client=True,
                task=pb.TaskSpec(
                    action=f"{BULK_ACTION}[s]",
                    cancellable=False,
                    duration_millis=0,
                    description=described,
                    children=[pb.ChildSpec(node_id=routing.primary, task=primary)],
                ),
            )
        )
    return spec


def plan_bulk(
    items: list[BulkItem], indices: Indices | Mapping[str, Index], timing: Timing
) -> pb.TaskSpec:
    """The `indices:data/write/bulk` tree of `items` (every id assigned). Off the loop, give it
    the items' indices as a plain mapping taken on the loop, never the live `Indices`."""
    writes = []
    for item in items:
        index = indices.get(item.index)
        assert index is not None and item.id is not None, item
        writes.append((index, shard_of(item.id, len(index.shards))))
    description = f"requests[{len(items)}], indices[{', '.join(sorted({i.index for i in items}))}]"
    return write_spec(BULK_ACTION, writes, timing, description=description)
