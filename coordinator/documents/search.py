"""`_search` and `_count` over documents: the request, the matching, the `SearchResponse`.

`parse_search(body, params)` reads a search body (`query`, `from`, `size`, `sort`, `_source`,
`track_total_hits`, `version`, `seq_no_primary_term`) and the URL parameters that override it
(`q`, `from`, `size`, `sort`, `_source*`, `track_total_hits`, `rest_total_hits_as_int`, ...), as
`RestSearchAction.parseSearchSource` does. `matching(targets, query)` is every matching document of
some indices as of their snapshot, in doc order (index, shard, write order): the one filter a
by-query operation uses. `search(...)` renders OpenSearch's `SearchResponse`; `count(...)` the
number `_count` answers.

Scores: tasksim has no relevance model. A hit of a scoring query scores 1.0, of a pure filter 0.0;
hits come in doc order unless sorted. Synthetic documents (an index's claimed volume, with no
content) count in totals for a query that matches everything, and are never hits.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from coordinator.documents.mapping import DATE, NUMERIC_TYPES, OBJECT, TEXT_TYPES, IndexMapping
from coordinator.documents.query import (
    MATCH_ALL,
    ParsingError,
    Query,
    QueryShardError,
    parse_query,
    query_string,
)
from coordinator.documents.store import Document, Target
from simnode.errors import IllegalArgumentError
from simnode.regex import simple_match

DEFAULT_TRACK_TOTAL_HITS: Final = 10_000
SEARCH_KEYS: Final = frozenset(
    {
        "query",
        "size",
        "from",
        "sort",
        "_source",
        "track_total_hits",
        "seq_no_primary_term",
        "version",
        "timeout",
        "terminate_after",
        "track_scores",
        "explain",
        "stored_fields",
        "min_score",
    }
)


@dataclass(frozen=True)
class SourceFilter:
    """`_source`: on/off, `includes`/`excludes` with `*` wildcards (`FetchSourceContext`)."""

    fetch: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def apply(self, source: Mapping[str, Any]) -> dict[str, Any]:
        if not self.includes and not self.excludes:
            return dict(source)
        return _filter(source, "", self.includes, self.excludes)


def _path_matches(patterns: Sequence[str], path: str, *, partial: bool) -> bool:
    """A `_source` pattern (`Regex.simpleMatch`: only `*` is special) matches `path` or a parent of
    it; with `partial`, `path` may also be a parent of what the pattern names."""
    for p in patterns:
        if simple_match(p, path) or simple_match(p + ".*", path):
            return True
        if partial and (p.startswith(path + ".") or simple_match(p[: len(path) + 1], path + ".")):
            return True
    return False


def _filter(
    node: Mapping[str, Any], prefix: str, includes: Sequence[str], excludes: Sequence[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if excludes and _path_matches(excludes, path, partial=False):
            continue
        if isinstance(value, dict):
            if not includes or _path_matches(includes, path, partial=False):
                inner = _filter(value, f"{path}.", (), excludes)
            elif _path_matches(includes, path, partial=True):
                inner = _filter(value, f"{path}.", includes, excludes)
                if not inner:
                    continue
            else:
                continue
            out[key] = inner
        elif not includes or _path_matches(includes, path, partial=False):
            out[key] = value
    return out


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split(",") if v)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    raise ParsingError(f"Expected one of [VALUE_STRING, START_ARRAY] but found [{value!r}]")


def parse_source_filter(value: Any) -> SourceFilter:
    if isinstance(value, bool):
        return SourceFilter(fetch=value)
    if isinstance(value, (str, list)):
        return SourceFilter(includes=_as_list(value))
    if isinstance(value, dict):
        unknown = set(value) - {"includes", "include", "excludes", "exclude"}
        if unknown:
            raise ParsingError(f"Unknown key for a VALUE_STRING in [{sorted(unknown)[0]}].")
        return SourceFilter(
            includes=_as_list(value.get("includes", value.get("include"))),
            excludes=_as_list(value.get("excludes", value.get("exclude"))),
        )
    raise ParsingError(
        "Expected one of [VALUE_BOOLEAN, START_OBJECT, START_ARRAY, VALUE_STRING] but found "
        f"[{type(value).__name__}]"
    )


@dataclass(frozen=True)
class SortField:
    name: str
    descending: bool = False
    unmapped_type: str | None = None  # an index that does not map the field sorts it as missing


@dataclass(frozen=True)
class SearchRequest:
    query: Query = MATCH_ALL
    size: int = 10
    from_: int = 0
    sort: tuple[SortField, ...] = ()
    source: SourceFilter = field(default_factory=SourceFilter)
    track_total_hits: bool | int = DEFAULT_TRACK_TOTAL_HITS  # True: exact; False: none
    total_hits_as_int: bool = False
    version: bool = False
    seq_no_primary_term: bool = False
    track_scores: bool = False

    @property
    def scoring(self) -> bool:
        return self.query.scoring


def parse_sort(spec: Any) -> tuple[SortField, ...]:
    """`SortBuilder.fromXContent`: a name, `{name: order}`, `{name: {order: ...}}`, or a list."""
    items = spec if isinstance(spec, list) else [spec]
    out: list[SortField] = []
    for item in items:
        if isinstance(item, str):
            name, order = item, ("desc" if item == "_score" else "asc")
        elif isinstance(item, dict) and len(item) == 1:
            ((name, how),) = item.items()
            default = "desc" if name == "_score" else "asc"
            order = how.get("order", default) if isinstance(how, dict) else str(how)
        else:
            raise ParsingError(
                "malformed sort format, within the sort array, an object, or an actual string "
                "are allowed"
            )
        if order not in ("asc", "desc"):
            raise IllegalArgumentError(f"Unknown SortOrder [{order}]")
        unmapped = (
            how.get("unmapped_type") if isinstance(item, dict) and isinstance(how, dict) else None
        )
        out.append(SortField(name, order == "desc", None if unmapped is None else str(unmapped)))
    return tuple(out)


def _sort_param(text: str) -> tuple[SortField, ...]:
    """`sort=field:desc,other` of the URL."""
    out = []
    for part in text.split(","):
        name, _, order = part.partition(":")
        if order and order not in ("asc", "desc"):
            raise IllegalArgumentError(f"Unknown SortOrder [{order}]")
        default = "desc" if name == "_score" else "asc"
        out.append(SortField(name, (order or default) == "desc"))
    return tuple(out)


def parse_track_total_hits(value: Any) -> bool | int:
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("true", "false"):
        return text == "true"
    try:
        number = int(text)
    except ValueError:
        raise IllegalArgumentError(
            f"Failed to parse value [{text}] as only [true] or [false] are allowed."
        ) from None
    if number < -1:
        raise IllegalArgumentError(
            f"[track_total_hits] parameter must be positive or equals to -1, got {number}"
        )
    return True if number == -1 else number


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ParsingError(f"[{name}] failed to parse field [{name}]")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(
            f"Failed to parse int parameter [{name}] with value [{value}]"
        ) from None


def _bool_param(value: str, name: str) -> bool:
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise IllegalArgumentError(
        f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    )


def token_name(value: Any) -> str:
    """The Jackson token a JSON value starts with (`XContentParser.Token`)."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


def parse_search(body: Any, params: Mapping[str, str] | None = None) -> SearchRequest:
    """A search body and the URL parameters that override it."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ParsingError("Expected [START_OBJECT] but found [START_ARRAY]")
    unknown = [k for k in body if k not in SEARCH_KEYS]
    if unknown:
        kind = token_name(body[unknown[0]])
        raise ParsingError(f"Unknown key for a {kind} in [{unknown[0]}].", path=(unknown[0],))
    query = parse_query(body["query"], ("query",)) if "query" in body else MATCH_ALL
    size = _int(body.get("size", 10), "size")
    from_ = _int(body.get("from", 0), "from")
    sort = parse_sort(body["sort"]) if "sort" in body else ()
    source = parse_source_filter(body["_source"]) if "_source" in body else SourceFilter()
    tracked: bool | int = DEFAULT_TRACK_TOTAL_HITS
    if "track_total_hits" in body:
        tracked = parse_track_total_hits(body["track_total_hits"])
    req = SearchRequest(
        query=query,
        size=size,
        from_=from_,
        sort=sort,
        source=source,
        track_total_hits=tracked,
        version=bool(body.get("version", False)),
        seq_no_primary_term=bool(body.get("seq_no_primary_term", False)),
        track_scores=bool(body.get("track_scores", False)),
    )
    tracked_set = "track_total_hits" in body
    p = params or {}
    if "q" in p:
        req = replace(req, query=query_string(p["q"], p.get("df")))
    if "from" in p:
        req = replace(req, from_=_int(p["from"], "from"))
    if "size" in p:
        req = replace(req, size=_int(p["size"], "size"))
    if "sort" in p:
        req = replace(req, sort=_sort_param(p["sort"]))
    if "_source" in p:
        text = p["_source"]
        if text in ("true", "false"):
            req = replace(req, source=SourceFilter(fetch=text == "true"))
        else:
            req = replace(req, source=SourceFilter(includes=_as_list(text)))
    if "_source_includes" in p or "_source_excludes" in p:
        req = replace(
            req,
            source=SourceFilter(
                includes=_as_list(p.get("_source_includes")) or req.source.includes,
                excludes=_as_list(p.get("_source_excludes")) or req.source.excludes,
            ),
        )
    if "version" in p:
        req = replace(req, version=_bool_param(p["version"], "version"))
    if "seq_no_primary_term" in p:
        req = replace(
            req, seq_no_primary_term=_bool_param(p["seq_no_primary_term"], "seq_no_primary_term")
        )
    if "track_total_hits" in p:
        tracked_set = True
        req = replace(req, track_total_hits=parse_track_total_hits(p["track_total_hits"]))
    if "rest_total_hits_as_int" in p and _bool_param(p["rest_total_hits_as_int"], "x"):
        # RestSearchAction.checkRestTotalHits
        if not tracked_set:
            req = replace(req, track_total_hits=True)
        elif req.track_total_hits is not True and req.track_total_hits is not False:
            raise IllegalArgumentError(
                "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not "
                f"accurate, got {req.track_total_hits}"
            )
        req = replace(req, total_hits_as_int=True)
    if req.size < 0:
        raise IllegalArgumentError(f"[size] parameter cannot be negative, found [{req.size}]")
    if req.from_ < 0:
        raise IllegalArgumentError(f"[from] parameter cannot be negative, found [{req.from_}]")
    if req.from_ + req.size > 10_000:
        raise IllegalArgumentError(
            "Result window is too large, from + size must be less than or equal to: [10000] but "
            f"was [{req.from_ + req.size}]. See the scroll api for a more efficient way to request "
            "large data sets. This limit can be set by changing the [index.max_result_window] "
            "index level setting."
        )
    return req


# -- execution --------------------------------------------------------------------------------------


def matching(targets: Iterable[Target], query: Query) -> list[tuple[Target, Document]]:
    """Every real document of `targets` that `query` matches, in doc order."""
    return [(t, d) for t in targets for d in t.docs if query.matches(d.id, d.source, t.mapping)]


def count(targets: Sequence[Target], query: Query) -> int:
    """`_count`: matching real documents, plus the synthetic ones of a query matching all."""
    synthetic = sum(t.synthetic for t in targets) if query.matches_all else 0
    return len(matching(targets, query)) + synthetic


def check_sort(sort: Sequence[SortField], mappings: Sequence[IndexMapping]) -> None:
    """The shard-level checks of a sort: a field no index maps, a text field."""
    for s in sort:
        if s.name in ("_score", "_doc"):
            continue
        kinds = [m.type_of(s.name) for m in mappings]
        if mappings and all(k is None for k in kinds) and s.unmapped_type is None:
            raise QueryShardError(f"No mapping found for [{s.name}] in order to sort on")
        if any(k in TEXT_TYPES for k in kinds):
            raise IllegalArgumentError(
                "Text fields are not optimised for operations that require per-document field "
                "data like aggregations and sorting, so these operations are disabled by default. "
                "Please use a keyword field instead. Alternatively, set fielddata=true on "
                f"[{s.name}] in order to load field data by uninverting the inverted index. Note "
                "that this can use significant memory."
            )


def _date_millis(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _sort_value(kind: str | None, values: list[Any], descending: bool) -> Any:
    if not values:
        return None
    if kind in NUMERIC_TYPES:
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not nums:
            nums = [float(v) for v in values if _is_number(v)]
        if not nums:
            return None
        pick = max(nums) if descending else min(nums)
        if kind in ("float", "double", "half_float", "scaled_float"):
            return float(pick)
        return int(pick)
    if kind == DATE:
        millis = [_date_millis(v) for v in values]
        nums = [m for m in millis if isinstance(m, int)]
        return (max(nums) if descending else min(nums)) if nums else None
    if kind == "boolean":
        bits = [1 if str(v).lower() == "true" else 0 for v in values]
        return max(bits) if descending else min(bits)
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    return max(texts) if descending else min(texts)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, bool)


def _ordered(
    hits: list[tuple[Target, Document]], sort: Sequence[SortField]
) -> list[tuple[tuple[Target, Document], list[Any]]]:
    rows = []
    for position, (t, d) in enumerate(hits):
        values: list[Any] = []
        for s in sort:
            if s.name == "_doc":
                values.append(position)
            elif s.name == "_score":
                values.append(1.0)
            else:
                kind = t.mapping.type_of(s.name)
                raw = [] if kind in (None, OBJECT) else t.mapping.values(d.source, s.name)
                values.append(_sort_value(kind, raw, s.descending))
        rows.append(((t, d), values))
    for i in reversed(range(len(sort))):
        present = [r for r in rows if r[1][i] is not None]
        missing = [r for r in rows if r[1][i] is None]
        present.sort(key=lambda r: _key(r[1][i]), reverse=sort[i].descending)
        rows = present + missing  # missing values last either way (`_last`)
    return rows


def _key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def total_hits(req: SearchRequest, total: int) -> Any:
    """`SearchHits.toXContent`'s `total`."""
    tracked = req.track_total_hits
    if tracked is False:
        return -1 if req.total_hits_as_int else None
    if tracked is True or total <= tracked:
        value, relation = total, "eq"
    else:
        value, relation = tracked, "gte"
    if req.total_hits_as_int:
        return value
    return {"value": value, "relation": relation}


def search(
    targets: Sequence[Target],
    req: SearchRequest,
    *,
    took: int = 1,
    shards: Mapping[str, int] | None = None,
    index_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """OpenSearch's `SearchResponse` of `req` over `targets`. `shards` is the `_shards` object
    (default: one successful shard per target)."""
    check_sort(req.sort, [t.mapping for t in targets])
    hits = matching(targets, req.query)
    synthetic = sum(t.synthetic for t in targets) if req.query.matches_all else 0
    total = len(hits) + synthetic
    rows = _ordered(hits, req.sort) if req.sort else [(h, []) for h in hits]
    page = rows[req.from_ : req.from_ + req.size]
    sorted_by_score = any(s.name == "_score" for s in req.sort)
    score: float | None = 1.0 if req.scoring else 0.0
    if req.sort and not (req.track_scores or sorted_by_score):
        score = None
    rendered = []
    for (t, d), sort_values in page:
        hit: dict[str, Any] = {"_index": (index_names or {}).get(t.name, t.name), "_id": d.id}
        if req.version:
            hit["_version"] = d.version
        if req.seq_no_primary_term:
            hit["_seq_no"] = d.seq_no
            hit["_primary_term"] = d.primary_term
        hit["_score"] = score
        if req.source.fetch:
            hit["_source"] = req.source.apply(d.source)
        if req.sort:
            hit["sort"] = sort_values
        rendered.append(hit)
    shards_body = dict(shards) if shards is not None else _default_shards(len(targets))
    hits_body: dict[str, Any] = {}
    tracked = total_hits(req, total)
    if tracked is not None:
        hits_body["total"] = tracked
    hits_body["max_score"] = score if (rows and score is not None) else None
    hits_body["hits"] = rendered
    return {"took": took, "timed_out": False, "_shards": shards_body, "hits": hits_body}


def _default_shards(n: int) -> dict[str, int]:
    return {"total": n, "successful": n, "skipped": 0, "failed": 0}


def count_body(n: int, shards: Mapping[str, int]) -> dict[str, Any]:
    """`CountResponse` as `RestCountAction` renders it."""
    return {"count": n, "_shards": dict(shards)}
