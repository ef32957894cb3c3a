"""Documents: a small, real document store per index, the query DSL, and search — pure.

The package owns what documents are and what operations on them decide; it does no I/O and reads
no clock (times are arguments: seconds as `trio.current_time()` gives them, on either engine).

- `store.py`: `DocumentStore` (index name → `IndexDocs`), documents with `_version`, `_seq_no`,
  `_primary_term`; index/create/get/delete/update; conflicts; refresh and near-real-time views;
- `mapping.py`: field types (dynamic mapping, explicit `properties`), the analyser in small;
- `query.py`: the query DSL (`parse_query` → `Query`), OpenSearch's parsing errors with line/col;
- `search.py`: `parse_search`, `matching`, `search` (`SearchResponse`), `count`.

Recipes for the operations built on it (by-query operations, `.tasks`, ML Commons):

    docs = store["my-index"]                       # IndexNotFoundError when missing
    docs.index("1", {"a": 1})                      # → WriteResult(result="created", version=1, ...)
    docs.index(auto_id, src, op_type="create")     # VersionConflictError (409) if "1" is live
    docs.get("1")                                  # realtime: the live Document or None
    docs.delete("1", if_seq_no=d.seq_no, if_primary_term=d.primary_term)  # conflict-checked
    docs.index("1", src, version=7, version_type="external")              # reindex's versions
    docs.update("1", doc={"b": 2}, detect_noop=True)                      # merge; "noop"
    docs.refresh(now) / store.refresh(names, now)  # make writes visible to searches

    # a by-query operation: one point-in-time snapshot when it starts, then batches of writes
    targets = store.targets(["a", "b"], now)       # due scheduled refreshes happen first
    query = parse_query(body["query"], ("query",)) # ParsingError(...).located(raw_body)
    for target, doc in matching(targets, query):   # in doc order; doc.seq_no/primary_term/version
        store[target.name].delete(doc.id, if_seq_no=doc.seq_no, if_primary_term=doc.primary_term)

`VersionConflictError` is the version conflict of such an operation (`conflicts=proceed` counts
it); `DocumentMissingError` is an update without upsert of a missing id.
"""

from coordinator.documents.mapping import IndexMapping, analyze, field_values
from coordinator.documents.query import (
    MATCH_ALL,
    NamedObjectNotFoundError,
    ParsingError,
    Query,
    QueryShardError,
    parse_query,
    query_string,
)
from coordinator.documents.search import (
    SearchRequest,
    SortField,
    SourceFilter,
    check_sort,
    count,
    count_body,
    matching,
    parse_search,
    search,
)
from coordinator.documents.store import (
    CREATED,
    DELETED,
    NOOP,
    NOT_FOUND,
    UPDATED,
    AutoIds,
    Document,
    DocumentMissingError,
    DocumentStore,
    IndexDocs,
    Target,
    VersionConflictError,
    WriteResult,
    merge_doc,
    missing_body,
    parse_interval,
    parse_version_type,
    shard_of,
)

__all__ = [
    "CREATED",
    "DELETED",
    "MATCH_ALL",
    "NOOP",
    "NOT_FOUND",
    "UPDATED",
    "AutoIds",
    "Document",
    "DocumentMissingError",
    "DocumentStore",
    "IndexDocs",
    "IndexMapping",
    "NamedObjectNotFoundError",
    "ParsingError",
    "Query",
    "QueryShardError",
    "SearchRequest",
    "SortField",
    "SourceFilter",
    "Target",
    "VersionConflictError",
    "WriteResult",
    "analyze",
    "check_sort",
    "count",
    "count_body",
    "field_values",
    "matching",
    "merge_doc",
    "missing_body",
    "parse_interval",
    "parse_query",
    "parse_search",
    "parse_version_type",
    "query_string",
    "search",
    "shard_of",
]
