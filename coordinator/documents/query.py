"""The query DSL: the clauses tasksim understands, parsed into predicates over documents.

One implementation for every search of the house (`_search`, `_count`, by-query operations, ML
Commons' `_plugins/_ml/tasks/_search`). `parse_query(body)` validates a query clause as
`AbstractQueryBuilder.parseInnerQueryBuilder` and the clause's `fromXContent` do, and returns a
`Query`: `query.matches(doc_id, source, mapping)`, whether it scores (`scoring`: hits of a pure
filter score 0.0) and whether it matches every document (`matches_all`: what synthetic documents,
which have no content, answer to). The field's type in the index's mapping decides a comparison
(coordinator/documents/mapping.py): `term` on a `text` field matches one of its analysed words,
on a `keyword` the whole value.

Clauses: `match_all`, `match_none`, `term`, `terms`, `match` (`operator` or/and), `exists`,
`range` (gt/gte/lt/lte, from/to), `ids`, `prefix`, `bool` (must/filter/should/must_not,
`minimum_should_match`), and `query_string` in its trivial forms (`*`, `field:value`, `value`),
which `q=` uses. Anything else is OpenSearch's 400 `parsing_exception` `unknown query [x]`; its
`line`/`col` (the `{` after the name, as Jackson counts) come from `ParsingError.located(body)`.
Pure: no I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from coordinator.documents.mapping import (
    BOOLEAN,
    DATE,
    NUMERIC_TYPES,
    OBJECT,
    TEXT_TYPES,
    IndexMapping,
    analyze,
)
from coordinator.params import _levenshtein_similarity as levenshtein_similarity
from simnode.errors import IllegalArgumentError, OpenSearchError

Path = tuple[str | int, ...]


class NamedObjectNotFoundError(OpenSearchError):
    """`NamedObjectNotFoundException` (an XContent exception, not an OpenSearch one)."""

    type = "named_object_not_found_exception"
    status = 400

    @property
    def is_opensearch_exception(self) -> bool:
        return False


class ParsingError(OpenSearchError):
    """`ParsingException`: `line` and `col` of the offending token when the body is known."""

    type = "parsing_exception"
    status = 400

    def __init__(
        self,
        reason: str,
        *,
        path: Path = (),
        unknown: str | None = None,
        cause: OpenSearchError | None = None,
        metadata: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(reason, cause=cause, metadata=metadata)
        self.path = path
        self.unknown = unknown
        self.line: int | None = None
        self.col: int | None = None

    def located(self, body: bytes | str | None, prefix: Path = ()) -> ParsingError:
        """Set `line`/`col` from where `prefix + path` is in the JSON text `body`."""
        if body is None:
            return self
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        found = locate(text, prefix + self.path)
        if found is not None:
            self.line, self.col = found
            if self.unknown is not None:
                self.cause = NamedObjectNotFoundError(
                    f"[{self.line}:{self.col}] unknown field [{self.unknown}]"
                )
        return self

    def xcontent(self, *, with_cause: bool = True) -> dict[str, Any]:
        body = super().xcontent(with_cause=False)
        if self.line is not None:
            body["line"] = self.line
            body["col"] = self.col
        if with_cause and self.cause is not None:
            body["caused_by"] = self.cause.xcontent()
        return body


class QueryShardError(OpenSearchError):
    type = "query_shard_exception"
    status = 400


# -- where a value is in JSON text -------------------------------------------------------------------


def locate(text: str, path: Path) -> tuple[int, int] | None:
    """(line, column), both from 1, of the first character of the value at `path` in `text`."""
    pos = 0
    n = len(text)

    def skip_ws(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def skip_string(i: int) -> int:  # text[i] == '"'
        i += 1
        while i < n and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        return i + 1

    def skip_value(i: int) -> int:
        i = skip_ws(i)
        if i >= n:
            return i
        if text[i] == '"':
            return skip_string(i)
        if text[i] in "{[":
            depth = 0
            while i < n:
                c = text[i]
                if c == '"':
                    i = skip_string(i)
                    continue
                if c in "{[":
                    depth += 1
                elif c in "}]":
                    depth -= 1
                    if depth == 0:
                        return i + 1
                i += 1
            return i
        while i < n and text[i] not in ",}] \t\r\n":
            i += 1
        return i

    def read_string(i: int) -> tuple[str, int]:
        end = skip_string(i)
        import json

        try:
            return str(json.loads(text[i:end])), end
        except ValueError:
            return text[i + 1 : end - 1], end

    pos = skip_ws(pos)
    for step in path:
        if pos >= n:
            return None
        if isinstance(step, int):
            if text[pos] != "[":
                return None
            pos = skip_ws(pos + 1)
            for _ in range(step):
                pos = skip_ws(skip_value(pos))
                if pos < n and text[pos] == ",":
                    pos = skip_ws(pos + 1)
        else:
            if text[pos] != "{":
                return None
            pos = skip_ws(pos + 1)
            while True:
                if pos >= n or text[pos] != '"':
                    return None
                key, pos = read_string(pos)
                pos = skip_ws(pos)
                if pos < n and text[pos] == ":":
                    pos = skip_ws(pos + 1)
                if key == step:
                    break
                pos = skip_ws(skip_value(pos))
                if pos < n and text[pos] == ",":
                    pos = skip_ws(pos + 1)
                else:
                    return None
    if pos >= n:
        return None
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


# -- queries ----------------------------------------------------------------------------------------

Test = Callable[[str, Mapping[str, Any], IndexMapping], bool]


@dataclass(frozen=True)
class Query:
    """A parsed query clause."""

    kind: str
    test: Test
    scoring: bool = True
    matches_all: bool = False

    def matches(self, doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        return self.test(doc_id, source, mapping)


MATCH_ALL: Final = Query("match_all", lambda _i, _s, _m: True, True, True)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool_text(value: Any) -> str:
    return str(value).lower()


def _equals(kind: str | None, doc_value: Any, wanted: Any, *, insensitive: bool = False) -> bool:
    """A `term` of `wanted` against one indexed value of a field of type `kind`."""
    if kind in NUMERIC_TYPES:
        a, b = _as_number(doc_value), _as_number(wanted)
        return a is not None and b is not None and a == b
    if kind == BOOLEAN:
        return _bool_text(doc_value) == _bool_text(wanted)
    if kind in TEXT_TYPES:
        word = str(wanted).lower() if insensitive else str(wanted)
        return word in analyze(str(doc_value))
    if kind == DATE and _as_number(wanted) is not None and _as_number(doc_value) is not None:
        return _as_number(doc_value) == _as_number(wanted)
    left = _bool_text(doc_value) if isinstance(doc_value, bool) else str(doc_value)
    right = _bool_text(wanted) if isinstance(wanted, bool) else str(wanted)
    return left.lower() == right.lower() if insensitive else left == right


def _single_field(kind: str, body: Any, path: Path) -> tuple[str, Any]:
    if not isinstance(body, dict):
        raise ParsingError(f"[{kind}] query malformed, no start_object after query name", path=path)
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        if not fields:
            raise IllegalArgumentError(f"[{kind}] query requires a field")
        raise ParsingError(
            f"[{kind}] query doesn't support multiple fields, found [{fields[0]}] and "
            f"[{fields[1]}]",
            path=path,
        )
    return fields[0], body[fields[0]]


def _term(body: Any, path: Path, kind: str = "term") -> Query:
    name, value = _single_field(kind, body, path)
    insensitive = False
    if isinstance(value, dict):
        insensitive = bool(value.get("case_insensitive", False))
        if "value" not in value:
            raise ParsingError(
                f"[{kind}] query does not support [{next(iter(value), '')}]", path=path
            )
        value = value["value"]
    if value is None or isinstance(value, (dict, list)):
        raise IllegalArgumentError("value cannot be null")

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if name == "_id":
            return doc_id == str(value)
        field_type = mapping.type_of(name)
        if field_type is None or field_type == OBJECT:
            return False
        return any(
            _equals(field_type, v, value, insensitive=insensitive)
            for v in mapping.values(source, name)
        )

    return Query(kind, test)


def _terms(body: Any, path: Path) -> Query:
    if not isinstance(body, dict):
        raise ParsingError("[terms] query malformed, no start_object after query name", path=path)
    fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise ParsingError("[terms] query does not support multiple fields", path=path)
    ((name, wanted),) = fields.items()
    if not isinstance(wanted, list):
        raise ParsingError(f"[terms] query does not support [{name}]", path=path)

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if name == "_id":
            return doc_id in {str(w) for w in wanted}
        field_type = mapping.type_of(name)
        if field_type is None or field_type == OBJECT:
            return False
        return any(_equals(field_type, v, w) for v in mapping.values(source, name) for w in wanted)

    return Query("terms", test)


def _match(body: Any, path: Path) -> Query:
    name, value = _single_field("match", body, path)
    op = "or"
    minimum: Any = None
    if isinstance(value, dict):
        unknown = set(value) - {
            "query",
            "operator",
            "minimum_should_match",
            "boost",
            "analyzer",
            "lenient",
            "fuzziness",
            "prefix_length",
            "max_expansions",
            "zero_terms_query",
            "auto_generate_synonyms_phrase_query",
            "fuzzy_transpositions",
        }
        if unknown:
            raise ParsingError(f"[match] query does not support [{sorted(unknown)[0]}]", path=path)
        if "query" not in value:
            raise IllegalArgumentError("No text specified for text query")
        op = str(value.get("operator", "or")).lower()
        if op not in ("or", "and"):
            raise IllegalArgumentError(f"operator needs to be either [and, or], but was [{op}]")
        minimum = value.get("minimum_should_match")
        value = value["query"]
    if value is None or isinstance(value, (dict, list)):
        raise IllegalArgumentError("No text specified for text query")
    term = _term({name: value}, path)

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if mapping.type_of(name) not in TEXT_TYPES:
            return term.matches(doc_id, source, mapping)
        words = analyze(str(value))
        if not words:
            return False
        have = {w for v in mapping.values(source, name) for w in analyze(str(v))}
        hits = sum(1 for w in dict.fromkeys(words) if w in have)
        needed = len(dict.fromkeys(words)) if op == "and" else 1
        if minimum is not None:
            needed = max(needed, _minimum_should_match(minimum, len(dict.fromkeys(words))))
        return hits >= needed

    return Query("match", test)


_RANGE_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _range(body: Any, path: Path) -> Query:
    name, bounds = _single_field("range", body, path)
    if not isinstance(bounds, dict):
        raise ParsingError(f"[range] query does not support [{name}]", path=path)
    checks: list[tuple[Callable[[Any, Any], bool], Any]] = []
    include_lower = bool(bounds.get("include_lower", True))
    include_upper = bool(bounds.get("include_upper", True))
    for op, bound in bounds.items():
        if op in ("format", "boost", "time_zone", "relation", "include_lower", "include_upper"):
            continue
        if op == "from":
            op = "gte" if include_lower else "gt"
        elif op == "to":
            op = "lte" if include_upper else "lt"
        compare = _RANGE_OPS.get(op)
        if compare is None:
            raise ParsingError(f"[range] query does not support [{op}]", path=path)
        if bound is not None:
            checks.append((compare, bound))

    def test(_doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        field_type = mapping.type_of(name)
        if field_type is None or field_type == OBJECT:
            return False
        for v in mapping.values(source, name):
            if field_type in NUMERIC_TYPES or (field_type == DATE and _as_number(v) is not None):
                x = _as_number(v)
                bs = [(c, _as_number(b)) for c, b in checks]
                if x is not None and all(b is not None and c(x, b) for c, b in bs):
                    return True
            elif all(c(str(v), str(b)) for c, b in checks):
                return True
        return False

    return Query("range", test)


def _exists(body: Any, path: Path) -> Query:
    if not isinstance(body, dict) or "field" not in body:
        raise IllegalArgumentError("[exists] must be provided with a [field]")
    name = str(body["field"])

    def test(_doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if name in ("_id", "_index", "_source"):
            return True
        if mapping.type_of(name) == OBJECT:
            return any(mapping.values(source, sub) for sub in mapping if sub.startswith(name + "."))
        return mapping.type_of(name) is not None and bool(mapping.values(source, name))

    return Query("exists", test)


def _ids(body: Any, path: Path) -> Query:
    if not isinstance(body, dict):
        raise ParsingError("[ids] query malformed, no start_object after query name", path=path)
    values = body.get("values", [])
    if not isinstance(values, list):
        raise ParsingError("[ids] query does not support [values]", path=path)
    wanted = {str(v) for v in values}
    return Query("ids", lambda doc_id, _s, _m: doc_id in wanted)


def _prefix(body: Any, path: Path) -> Query:
    name, value = _single_field("prefix", body, path)
    insensitive = False
    if isinstance(value, dict):
        insensitive = bool(value.get("case_insensitive", False))
        value = value.get("value")
    if value is None:
        raise IllegalArgumentError("value cannot be null")
    start = str(value).lower() if insensitive else str(value)

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if name == "_id":
            return doc_id.startswith(start)
        field_type = mapping.type_of(name)
        if field_type is None or field_type == OBJECT:
            return False
        for v in mapping.values(source, name):
            if field_type in TEXT_TYPES:
                if any(w.startswith(start) for w in analyze(str(v))):
                    return True
            else:
                text = str(v).lower() if insensitive else str(v)
                if text.startswith(start):
                    return True
        return False

    return Query("prefix", test)


def _minimum_should_match(spec: Any, optional: int) -> int:
    """`Queries.calculateMinShouldMatch` for integers and percentages (negative: all but)."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            count = int(optional * pct / 100) if pct >= 0 else optional - int(optional * -pct / 100)
        else:
            number = int(text)
            count = number if number >= 0 else optional + number
    except ValueError:
        raise IllegalArgumentError(
            f"Unable to parse [minimum_should_match] value [{text}]"
        ) from None
    return max(0, min(count, optional)) if optional else max(0, count)


def _clauses(value: Any, path: Path) -> list[Query]:
    if isinstance(value, list):
        return [parse_query(item, (*path, i)) for i, item in enumerate(value)]
    return [parse_query(value, path)]


_BOOL_KEYS: Final = frozenset(
    {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name",
     "adjust_pure_negative"}
)  # fmt: skip


def _bool(body: Any, path: Path) -> Query:
    if not isinstance(body, dict):
        raise ParsingError("[bool] query malformed, no start_object after query name", path=path)
    unknown = set(body) - _BOOL_KEYS
    if unknown:
        raise ParsingError(f"[bool] query does not support [{sorted(unknown)[0]}]", path=path)
    must = _clauses(body.get("must", []), (*path, "must"))
    filters = _clauses(body.get("filter", []), (*path, "filter"))
    should = _clauses(body.get("should", []), (*path, "should"))
    must_not = _clauses(body.get("must_not", []), (*path, "must_not"))
    spec = body.get("minimum_should_match")
    if spec is None:
        minimum = 0 if (must or filters or must_not) else (1 if should else 0)
    else:
        minimum = _minimum_should_match(spec, len(should))

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        if not all(q.matches(doc_id, source, mapping) for q in must + filters):
            return False
        if any(q.matches(doc_id, source, mapping) for q in must_not):
            return False
        return sum(1 for q in should if q.matches(doc_id, source, mapping)) >= minimum

    everything = (
        not must_not
        and all(q.matches_all for q in must + filters)
        and (minimum == 0 or (bool(should) and all(q.matches_all for q in should)))
    )
    return Query("bool", test, scoring=bool(must or should), matches_all=everything)


def query_string(text: str, default_field: str | None = None) -> Query:
    """`query_string` in its trivial forms: `*` or `*:*` (everything), `field:value` (a `match`
    of the value on the field), `value` (a `match` on every field, or `default_field`)."""
    text = text.strip()
    if text in ("*", "*:*", ""):
        return Query("query_string", MATCH_ALL.test, True, True)
    field_name, sep, value = text.partition(":")
    if sep and field_name and " " not in field_name:
        value = value.strip().strip('"')
        if value == "*":
            return _exists({"field": field_name}, ())
        return _match({field_name: value}, ())
    target = default_field

    def test(doc_id: str, source: Mapping[str, Any], mapping: IndexMapping) -> bool:
        names = [target] if target and target != "*" else [n for n in mapping]
        return any(
            _match({n: text.strip('"')}, ()).matches(doc_id, source, mapping)
            for n in names
            if mapping.type_of(n) not in (None, OBJECT)
        )

    return Query("query_string", test)


def _query_string(body: Any, path: Path) -> Query:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ParsingError("[query_string] must be provided with a [query]", path=path)
    return query_string(body["query"], body.get("default_field"))


# The query names an OpenSearch 2 distribution registers (`SearchModule` and the modules that
# ship with it): the candidates of "did you mean" — including those tasksim does not simulate.
QUERY_NAMES: Final = (
    "bool", "boosting", "combined_fields", "constant_score", "dis_max", "distance_feature",
    "exists", "field_masking_span", "function_score", "fuzzy", "geo_bounding_box",
    "geo_distance", "geo_polygon", "geo_shape", "has_child", "has_parent", "ids", "intervals",
    "match", "match_all", "match_bool_prefix", "match_none", "match_phrase",
    "match_phrase_prefix", "more_like_this", "multi_match", "nested", "parent_id", "percolate",
    "prefix", "query_string", "range", "rank_feature", "regexp", "script", "script_score",
    "simple_query_string", "span_containing", "span_field_masking", "span_first", "span_gap",
    "span_multi", "span_near", "span_not", "span_or", "span_term", "span_within", "term",
    "terms", "terms_set", "wildcard", "wrapper",
)  # fmt: skip


def suggest(unknown: str, candidates: Iterable[str]) -> str:
    """`SuggestingErrorOnUnknown.suggest`: `" did you mean [x]?"`, `" did you mean any of [x,
    y]?"` for the candidates more than half similar (Lucene's Levenshtein), or nothing."""
    scored = [
        (score, c)
        for c in candidates
        if 2 * abs(len(unknown) - len(c)) < max(len(unknown), len(c), 1)
        and (score := levenshtein_similarity(unknown, c)) > 0.5
    ]
    scored.sort(key=lambda sc: (-sc[0], sc[1]))
    names = [c for _, c in scored]
    if not names:
        return ""
    if len(names) == 1:
        return f" did you mean [{names[0]}]?"
    return f" did you mean any of [{', '.join(names)}]?"


_PARSERS: Final[Mapping[str, Callable[[Any, Path], Query]]] = {
    "term": _term,
    "terms": _terms,
    "match": _match,
    "range": _range,
    "exists": _exists,
    "ids": _ids,
    "prefix": _prefix,
    "bool": _bool,
    "query_string": _query_string,
}


MAX_NESTING: Final = 100  # compound clauses within compound clauses (tasksim's limit)


def parse_query(query: Any, path: Path = ()) -> Query:
    """One query clause (`{"<kind>": {...}}`) → its `Query`. `path` is where the clause is in
    the request body, for the location of an error. Compound clauses nest at most `MAX_NESTING`
    deep (OpenSearch's limit is its stack's; tasksim's predicates recurse)."""
    if sum(1 for step in path if step == "bool") > MAX_NESTING:
        raise IllegalArgumentError(
            f"tasksim does not simulate queries nested deeper than [{MAX_NESTING}] levels"
        )
    if not isinstance(query, dict):
        raise ParsingError("[_na] query malformed, must start with start_object", path=path)
    if not query:
        raise IllegalArgumentError("query malformed, empty clause found")
    kind = next(iter(query))
    body = query[kind]
    if not isinstance(body, dict):
        raise ParsingError(
            f"[{kind}] query malformed, no start_object after query name", path=(*path, kind)
        )
    if len(query) > 1:
        second = list(query)[1]
        raise ParsingError(
            f"[{kind}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
            path=(*path, second),
        )
    if kind == "match_all":
        return MATCH_ALL
    if kind == "match_none":
        return Query("match_none", lambda _i, _s, _m: False)
    parser = _PARSERS.get(kind)
    if parser is None:
        # A name OpenSearch knows but tasksim does not simulate gets no suggestion: it is not a
        # typo. (OpenSearch itself would run it.)
        hint = "" if kind in QUERY_NAMES else suggest(kind, QUERY_NAMES)
        raise ParsingError(f"unknown query [{kind}]{hint}", path=(*path, kind), unknown=kind)
    return parser(body, (*path, kind))
