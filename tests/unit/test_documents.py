"""The document store, the query DSL and search, from OpenSearch's behaviour (InternalEngine's
versions and conflicts, UpdateHelper, the query builders, RestSearchAction) — plain values only."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.documents import (
    AutoIds,
    DocumentMissingError,
    DocumentStore,
    IndexDocs,
    IndexMapping,
    ParsingError,
    VersionConflictError,
    count,
    matching,
    parse_query,
    parse_search,
    search,
)
from coordinator.documents.search import SourceFilter
from coordinator.documents.store import Target, parse_interval
from simnode.errors import IllegalArgumentError, OpenSearchError

# -- versions, sequence numbers, conflicts ----------------------------------------------------------


def test_index_create_update_versions_and_seq_nos() -> None:
    docs = IndexDocs("test", "uuid-1")
    first = docs.index("1", {"foo": "bar"})
    assert (first.result, first.version, first.seq_no, first.primary_term) == ("created", 1, 0, 1)
    assert first.status == 201
    again = docs.index("1", {"foo": "baz"})
    assert (again.result, again.version, again.seq_no, again.status) == ("updated", 2, 1, 200)
    other = docs.index("2", {"foo": "qux"})
    assert (other.version, other.seq_no) == (1, 2)
    got = docs.get("1")
    assert got is not None and got.source == {"foo": "baz"} and got.version == 2
    assert got.get_body("test") == {
        "_index": "test", "_id": "1", "_version": 2, "_seq_no": 1, "_primary_term": 1,
        "found": True, "_source": {"foo": "baz"},
    }  # fmt: skip


def test_create_of_a_live_id_conflicts_with_opensearchs_message() -> None:
    docs = IndexDocs("test", "uuid-1")
    docs.index("1", {"a": 1})
    with pytest.raises(VersionConflictError) as e:
        docs.index("1", {"a": 2}, op_type="create")
    err = e.value
    assert err.status == 409 and err.type == "version_conflict_engine_exception"
    assert err.reason == "[1]: version conflict, document already exists (current version [1])"
    assert err.xcontent() == {
        "type": "version_conflict_engine_exception",
        "reason": "[1]: version conflict, document already exists (current version [1])",
        "index_uuid": "uuid-1",
        "shard": "0",
        "index": "test",
    }
    assert docs.get("1") is not None and docs.get("1").source == {"a": 1}  # type: ignore[union-attr]


def test_delete_leaves_a_tombstone_and_a_missing_delete_is_not_found() -> None:
    docs = IndexDocs("test")
    docs.index("1", {"a": 1})
    gone = docs.delete("1")
    assert (gone.result, gone.version, gone.seq_no, gone.status) == ("deleted", 2, 1, 200)
    missing = docs.delete("1")
    assert (missing.result, missing.version, missing.status) == ("not_found", 3, 404)
    back = docs.index("1", {"a": 2})
    assert (back.result, back.version) == ("created", 4)  # versions continue after deletes
    never = docs.delete("zzz")
    assert (never.result, never.version) == ("not_found", 1)
    assert docs.index("x", {}, op_type="create").result == "created"


def test_if_seq_no_and_primary_term() -> None:
    docs = IndexDocs("test")
    docs.index("1", {"a": 1})
    docs.index("1", {"a": 2})  # seq_no 1
    with pytest.raises(VersionConflictError) as e:
        docs.index("1", {"a": 3}, if_seq_no=0, if_primary_term=1)
    assert e.value.reason == (
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has "
        "seqNo [1] and primary term [1]"
    )
    with pytest.raises(VersionConflictError) as e:
        docs.delete("2", if_seq_no=5, if_primary_term=1)
    assert e.value.reason == (
        "[2]: version conflict, required seqNo [5], primary term [1]. but no document was found"
    )
    ok = docs.index("1", {"a": 3}, if_seq_no=1, if_primary_term=1)
    assert (ok.result, ok.version, ok.seq_no) == ("updated", 3, 2)
    assert docs.delete("1", if_seq_no=2, if_primary_term=1).result == "deleted"


def test_external_versions() -> None:
    docs = IndexDocs("test")
    made = docs.index("1", {"a": 1}, version=5, version_type="external")
    assert (made.result, made.version) == ("created", 5)
    with pytest.raises(VersionConflictError) as e:
        docs.index("1", {"a": 2}, version=5, version_type="external")
    assert e.value.reason == (
        "[1]: version conflict, current version [5] is higher or equal to the one provided [5]"
    )
    same = docs.index("1", {"a": 2}, version=5, version_type="external_gte")
    assert (same.result, same.version) == ("updated", 5)
    with pytest.raises(VersionConflictError) as e:
        docs.index("1", {"a": 2}, version=4, version_type="external_gte")
    assert e.value.reason == (
        "[1]: version conflict, current version [5] is higher than the one provided [4]"
    )
    assert docs.index("1", {"a": 3}, version=9, version_type="external").version == 9


def test_update_merges_detects_noops_and_upserts() -> None:
    docs = IndexDocs("test", "u")
    docs.index("1", {"a": {"b": 1, "c": 2}, "d": [1, 2]})
    merged = docs.update("1", doc={"a": {"b": 5}, "e": "x"})
    assert (merged.result, merged.version) == ("updated", 2)
    assert docs.get("1").source == {"a": {"b": 5, "c": 2}, "d": [1, 2], "e": "x"}  # type: ignore[union-attr]
    noop = docs.update("1", doc={"e": "x"})
    assert (noop.result, noop.version, noop.seq_no) == ("noop", 2, merged.seq_no)
    assert noop.body({"total": 2, "successful": 1, "failed": 0})["_shards"] == {
        "total": 0, "successful": 0, "failed": 0,
    }  # fmt: skip
    forced = docs.update("1", doc={"e": "x"}, detect_noop=False)
    assert (forced.result, forced.version) == ("updated", 3)
    with pytest.raises(DocumentMissingError) as e:
        docs.update("2", doc={"a": 1})
    assert (e.value.status, e.value.reason) == (404, "[2]: document missing")
    up = docs.update("2", doc={"a": 1}, upsert={"a": 0})
    assert (up.result, docs.get("2").source) == ("created", {"a": 0})  # type: ignore[union-attr]
    as_upsert = docs.update("3", doc={"a": 1}, doc_as_upsert=True)
    assert (as_upsert.result, docs.get("3").source) == ("created", {"a": 1})  # type: ignore[union-attr]


def test_write_body_shape() -> None:
    docs = IndexDocs("test")
    body = docs.index("1", {}).body({"total": 2, "successful": 1, "failed": 0})
    assert body == {
        "_index": "test", "_id": "1", "_version": 1, "result": "created",
        "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1,
    }  # fmt: skip


def test_seq_nos_are_per_shard() -> None:
    docs = IndexDocs("test", shards=3)
    results = [docs.index(str(i), {}) for i in range(30)]
    for shard in range(3):
        numbers = [r.seq_no for r in results if r.shard == shard]
        assert numbers == list(range(len(numbers)))
    assert {r.shard for r in results} == {0, 1, 2}


def test_auto_ids_are_20_url_safe_characters_unique_and_deterministic() -> None:
    ids = AutoIds(7)
    made = [ids.next(1_700_000_000_000) for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(len(i) == 20 and set(i) <= set(_URL_SAFE) for i in made)
    assert AutoIds(7).next(1_700_000_000_000) == made[0]
    assert AutoIds(8).next(1_700_000_000_000) != made[0]


_URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# -- near-real-time -----------------------------------------------------------------------------------


def test_searches_see_the_last_refresh_get_is_realtime() -> None:
    docs = IndexDocs("test", refresh_interval=1.0, last_refresh=0.0)
    docs.index("1", {"a": 1})
    assert docs.get("1") is not None
    assert docs.searchable(0.5) == ()  # written at 0.5, the next refresh is due at 1.0
    assert docs.next_refresh_at(0.5) == 1.0
    assert [d.id for d in docs.searchable(1.0)] == ["1"]
    docs.index("2", {"a": 2})
    snapshot = docs.visible()
    docs.refresh(1.2)
    assert [d.id for d in snapshot] == ["1"]  # a snapshot stays as it was
    assert [d.id for d in docs.visible()] == ["1", "2"]
    assert docs.next_refresh_at(1.3) == 1.3  # nothing pending: visible now


def test_refresh_interval_minus_one_disables_the_schedule() -> None:
    docs = IndexDocs("test", refresh_interval=-1)
    docs.index("1", {})
    assert docs.searchable(1e9) == () and docs.next_refresh_at(5.0) is None
    docs.refresh(5.0)
    assert len(docs.searchable(5.0)) == 1
    assert parse_interval("1s") == 1.0 and parse_interval("500ms") == 0.5
    assert parse_interval("-1") == -1.0 and parse_interval("2m") == 120.0
    with pytest.raises(IllegalArgumentError):
        parse_interval("soon")
    # a time setting, TimeValue's grammar: no fractions, no bare number of milliseconds
    with pytest.raises(IllegalArgumentError, match="fractional time values are not supported"):
        parse_interval("1.5s")
    with pytest.raises(IllegalArgumentError, match="unit is missing or unrecognized"):
        parse_interval("1000")


def test_source_patterns_are_simple_matches_where_only_the_star_is_special() -> None:
    source = {"ab": 1, "a?": 2, "a[b]": 3, "user": {"name": "x", "age": 3}}
    assert SourceFilter(includes=("a?",)).apply(source) == {"a?": 2}  # `?` is no wildcard
    assert SourceFilter(includes=("a[b]",)).apply(source) == {"a[b]": 3}  # nor `[...]`
    assert SourceFilter(includes=("a*",)).apply(source) == {"ab": 1, "a?": 2, "a[b]": 3}
    assert SourceFilter(includes=("user.n*",)).apply(source) == {"user": {"name": "x"}}


def test_store_targets_and_missing_index() -> None:
    store = DocumentStore(seed=1)
    store.open("a", shards=2)
    store["a"].index("1", {"x": 1})
    store["a"].refresh(0.0)
    (target,) = store.targets(["a"], 0.0, {"a": 5})
    assert target.synthetic == 5 and [d.id for d in target.docs] == ["1"]
    with pytest.raises(OpenSearchError) as e:
        store["nope"]
    assert (e.value.type, e.value.status) == ("index_not_found_exception", 404)


# -- mapping ----------------------------------------------------------------------------------------


def test_dynamic_mapping() -> None:
    m = IndexMapping()
    m.learn({"title": "Hello", "n": 1, "f": 1.5, "ok": True, "when": "2024-01-02T03:04:05Z",
             "obj": {"inner": "x"}, "tags": ["a", "b"], "none": None})  # fmt: skip
    assert m.type_of("title") == "text" and m.type_of("title.keyword") == "keyword"
    assert m.type_of("n") == "long" and m.type_of("f") == "float" and m.type_of("ok") == "boolean"
    assert m.type_of("when") == "date" and m.type_of("obj") == "object"
    assert m.type_of("obj.inner") == "text" and m.type_of("tags") == "text"
    assert m.type_of("none") is None
    m.learn({"n": "now a string"})
    assert m.type_of("n") == "long"  # the first value decides
    assert m.body()["properties"]["title"] == {
        "type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
    }  # fmt: skip
    assert m.body()["properties"]["obj"] == {"properties": {"inner": m.fields["obj.inner"].body()}}


# -- queries ----------------------------------------------------------------------------------------

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("1", {"user": "kimchy", "msg": "Trying out OpenSearch", "likes": 5, "tag": ["x", "y"]}),
    ("2", {"user": "Alice Smith", "msg": "OpenSearch rocks, trying more", "likes": 10}),
    ("3", {"user": "bob", "likes": 0, "nested": {"level": 3}, "flag": True}),
    ("4", {"user": "carol", "msg": None, "flag": False}),
]


def target(name: str = "test", synthetic: int = 0) -> Target:
    docs = IndexDocs(name)
    for doc_id, source in ROWS:
        docs.index(doc_id, source)
    docs.refresh(0.0)
    return Target(name, docs.visible(), docs.mapping, synthetic)


def hits(query: Any) -> list[str]:
    return [d.id for _, d in matching([target()], parse_query(query))]


def test_term_on_text_matches_a_word_on_keyword_the_whole_value() -> None:
    assert hits({"term": {"user": "kimchy"}}) == ["1"]
    assert hits({"term": {"user": "alice"}}) == ["2"]  # a word of the analysed text
    assert hits({"term": {"user": "Alice"}}) == []  # term is not analysed
    assert hits({"term": {"user.keyword": "Alice Smith"}}) == ["2"]
    assert hits({"term": {"user.keyword": "alice smith"}}) == []
    assert hits({"term": {"user.keyword": {"value": "alice smith", "case_insensitive": True}}}) == [
        "2"
    ]
    assert hits({"term": {"likes": 5}}) == ["1"] and hits({"term": {"likes": "10"}}) == ["2"]
    assert hits({"term": {"flag": "true"}}) == ["3"] and hits({"term": {"flag": False}}) == ["4"]
    assert hits({"term": {"tag": "y"}}) == ["1"] and hits({"term": {"nested.level": 3}}) == ["3"]
    assert hits({"term": {"_id": "4"}}) == ["4"]
    assert hits({"term": {"unmapped": "x"}}) == []


def test_terms_match_exists_range_ids_prefix() -> None:
    assert hits({"terms": {"user": ["bob", "carol"]}}) == ["3", "4"]
    assert hits({"match": {"msg": "TRYING opensearch"}}) == ["1", "2"]
    assert hits({"match": {"msg": {"query": "trying rocks", "operator": "and"}}}) == ["2"]
    assert hits({"match": {"msg": {"query": "trying rocks", "operator": "or"}}}) == ["1", "2"]
    assert hits({"match": {"likes": 10}}) == ["2"]
    assert hits({"exists": {"field": "msg"}}) == ["1", "2"]  # null is not a value
    assert hits({"exists": {"field": "nested"}}) == ["3"]
    assert hits({"range": {"likes": {"gte": 5}}}) == ["1", "2"]
    assert hits({"range": {"likes": {"gt": 0, "lt": 10}}}) == ["1"]
    assert hits({"range": {"likes": {"from": 0, "to": 5, "include_upper": False}}}) == ["3"]
    assert hits({"ids": {"values": ["3", "1", "nope"]}}) == ["1", "3"]
    assert hits({"prefix": {"user": "ali"}}) == ["2"]
    assert hits({"prefix": {"user.keyword": "Ali"}}) == ["2"]
    assert hits({"match_none": {}}) == []
    assert hits({"match_all": {}}) == ["1", "2", "3", "4"]
    assert hits({"query_string": {"query": "user:bob"}}) == ["3"]


def test_bool() -> None:
    q = {"bool": {"must": [{"range": {"likes": {"gte": 0}}}], "must_not": {"term": {"likes": 0}}}}
    assert hits(q) == ["1", "2"]
    assert hits({"bool": {"should": [{"term": {"user": "bob"}}, {"term": {"likes": 5}}]}}) == [
        "1",
        "3",
    ]
    two = {"bool": {"should": [{"term": {"user": "kimchy"}}, {"term": {"likes": 5}},
                               {"term": {"likes": 10}}], "minimum_should_match": 2}}  # fmt: skip
    assert hits(two) == ["1"]
    # with a must, should clauses are optional
    assert hits({"bool": {"filter": {"term": {"user": "bob"}}, "should": {"term": {"x": 1}}}}) == [
        "3"
    ]
    assert hits({"bool": {"must_not": {"exists": {"field": "msg"}}}}) == ["3", "4"]


def test_unknown_query_is_a_parsing_exception_with_line_and_col() -> None:
    body = '{"query": {"bool": {"must": [{"wildcard": {"user": "k*"}}]}}}'
    with pytest.raises(ParsingError) as e:
        parse_search(__import__("json").loads(body))
    err = e.value.located(body)
    assert (err.status, err.reason, err.line, err.col) == (400, "unknown query [wildcard]", 1, 43)
    assert err.xcontent() == {
        "type": "parsing_exception",
        "reason": "unknown query [wildcard]",
        "line": 1,
        "col": 43,
        "caused_by": {
            "type": "named_object_not_found_exception",
            "reason": "[1:43] unknown field [wildcard]",
        },
    }
    assert [c.type for c in err.root_causes()] == ["parsing_exception"]
    pretty = '{\n  "query": {\n    "nope": {}\n  }\n}'
    with pytest.raises(ParsingError) as e:
        parse_search(__import__("json").loads(pretty))
    assert (e.value.located(pretty).line, e.value.col) == (3, 13)


def test_an_unknown_query_suggests_close_names() -> None:
    """`SuggestingErrorOnUnknown.suggest` over the query names OpenSearch registers."""
    reasons = {}
    for name in ("mach", "termz", "nope", "wildcard"):
        with pytest.raises(ParsingError) as e:
            parse_query({name: {}})
        reasons[name] = e.value.reason
    assert reasons == {
        "mach": "unknown query [mach] did you mean [match]?",
        "termz": "unknown query [termz] did you mean any of [term, terms]?",
        "nope": "unknown query [nope]",
        "wildcard": "unknown query [wildcard]",  # OpenSearch's, not simulated: no suggestion
    }


@pytest.mark.parametrize(
    ("query", "kind", "reason"),
    [
        ({"term": "x"}, "parsing_exception", "[term] query malformed, no start_object after query name"),
        ({"term": {"a": 1, "b": 2}}, "parsing_exception",
         "[term] query doesn't support multiple fields, found [a] and [b]"),
        ({"bool": {"nope": []}}, "parsing_exception", "[bool] query does not support [nope]"),
        ({}, "illegal_argument_exception", "query malformed, empty clause found"),
        ({"exists": {}}, "illegal_argument_exception", "[exists] must be provided with a [field]"),
    ],
)  # fmt: skip
def test_query_errors(query: Any, kind: str, reason: str) -> None:
    with pytest.raises(OpenSearchError) as e:
        parse_query(query)
    assert (e.value.type, e.value.reason, e.value.status) == (kind, reason, 400)


# -- search ------------------------------------------------------------------------------------------


def test_search_response_shape_paging_and_sort() -> None:
    t = target()
    out = search([t], parse_search({"query": {"match_all": {}}, "size": 2}))
    assert out["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert [h["_id"] for h in out["hits"]["hits"]] == ["1", "2"]
    assert list(out["hits"]["hits"][0]) == ["_index", "_id", "_score", "_source"]
    assert out["hits"]["max_score"] == 1.0
    desc = search([t], parse_search({"sort": [{"likes": "desc"}], "from": 1, "size": 2}))
    assert [h["_id"] for h in desc["hits"]["hits"]] == ["1", "3"]
    assert desc["hits"]["hits"][0]["sort"] == [5] and desc["hits"]["hits"][0]["_score"] is None
    assert desc["hits"]["max_score"] is None
    missing_last = search([t], parse_search({"sort": "likes"}))
    assert [h["_id"] for h in missing_last["hits"]["hits"]] == ["3", "1", "2", "4"]
    filtered = search([t], parse_search({"query": {"bool": {"filter": {"match_all": {}}}}}))
    assert filtered["hits"]["hits"][0]["_score"] == 0.0


def test_search_source_filtering_versions_and_seq_nos() -> None:
    t = target()
    body = {"_source": {"includes": ["u*", "nested.*"], "excludes": ["likes"]}, "version": True,
            "seq_no_primary_term": True, "query": {"ids": {"values": ["3"]}}}  # fmt: skip
    (hit,) = search([t], parse_search(body))["hits"]["hits"]
    assert hit["_source"] == {"user": "bob", "nested": {"level": 3}}
    assert list(hit) == ["_index", "_id", "_version", "_seq_no", "_primary_term", "_score",
                         "_source"]  # fmt: skip
    (none,) = search([t], parse_search({"_source": False, "query": {"ids": {"values": ["3"]}}}))[
        "hits"
    ]["hits"]
    assert "_source" not in none
    params = {"_source_includes": "user", "q": "user:bob"}
    (hit,) = search([t], parse_search(None, params))["hits"]["hits"]
    assert hit["_source"] == {"user": "bob"}


def test_track_total_hits_and_rest_total_hits_as_int() -> None:
    t = target(synthetic=20_000)
    default = search([t], parse_search({"size": 0}))
    assert default["hits"]["total"] == {"value": 10_000, "relation": "gte"}
    exact = search([t], parse_search({"size": 0, "track_total_hits": True}))
    assert exact["hits"]["total"] == {"value": 20_004, "relation": "eq"}
    capped = search([t], parse_search({"size": 0, "track_total_hits": 100}))
    assert capped["hits"]["total"] == {"value": 100, "relation": "gte"}
    off = search([t], parse_search({"size": 0, "track_total_hits": False}))
    assert "total" not in off["hits"]
    as_int = search([t], parse_search({}, {"rest_total_hits_as_int": "true"}))
    assert as_int["hits"]["total"] == 20_004
    off_int = search([t], parse_search({"track_total_hits": False}, {"rest_total_hits_as_int": ""}))
    assert off_int["hits"]["total"] == -1
    with pytest.raises(IllegalArgumentError) as e:
        parse_search({"track_total_hits": 10}, {"rest_total_hits_as_int": "true"})
    assert e.value.reason == (
        "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, "
        "got 10"
    )
    # synthetic documents have no content: they count for a query that matches everything only
    assert count([t], parse_query({"match_all": {}})) == 20_004
    assert count([t], parse_query({"term": {"user": "bob"}})) == 1
    assert [h["_id"] for h in search([t], parse_search({}))["hits"]["hits"]] == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        ({"sort": [{"nope": "asc"}]}, "query_shard_exception",
         "No mapping found for [nope] in order to sort on"),
        ({"aggs": {}}, "parsing_exception", "Unknown key for a START_OBJECT in [aggs]."),
        ({"from": 9_999, "size": 2}, "illegal_argument_exception",
         "Result window is too large, from + size must be less than or equal to: [10000] but was "
         "[10001]. See the scroll api for a more efficient way to request large data sets. This "
         "limit can be set by changing the [index.max_result_window] index level setting."),
    ],
)  # fmt: skip
def test_search_errors(body: Any, kind: str, reason: str) -> None:
    with pytest.raises(OpenSearchError) as e:
        search([target()], parse_search(body))
    assert (e.value.type, e.value.reason, e.value.status) == (kind, reason, 400)


def test_sort_on_a_text_field_is_refused() -> None:
    with pytest.raises(IllegalArgumentError) as e:
        search([target()], parse_search({"sort": "user"}))
    assert "Text fields are not optimised" in e.value.reason
    out = search([target()], parse_search({"sort": {"user.keyword": "desc"}}))
    assert [h["_id"] for h in out["hits"]["hits"]] == ["1", "4", "3", "2"]  # byte order: "A" < "b"


def test_dropping_an_index_wakes_whoever_waits_for_its_refresh() -> None:
    store = DocumentStore()
    docs = store.open("w", refresh_interval=-1)
    woken: list[str] = []
    docs.on_refresh.append(lambda: woken.append("refresh"))
    docs.index("1", {})
    docs.refresh(1.0)
    store.drop("w")
    assert woken == ["refresh", "refresh"] and store.get("w") is None


def test_any_depth_of_arrays_and_the_mapping_depth_limit() -> None:
    docs = IndexDocs("deep")
    nested: Any = 7
    for _ in range(990):  # arrays of arrays are flattened, at any depth
        nested = [nested]
    docs.index("list", {"f": nested})
    assert docs.update("list", doc={"f": nested}).result == "noop"
    docs.refresh(0.0)
    t = Target("deep", docs.visible(), docs.mapping)
    assert [d.id for _, d in matching([t], parse_query({"term": {"f": 7}}))] == ["list"]
    assert search([t], parse_search({"sort": "f"}))["hits"]["hits"][0]["sort"] == [7]
    obj: dict[str, Any] = {"v": 1}
    for _ in range(19):  # `o` and 19 objects in it: `v` would be at depth 21
        obj = {"a": obj}
    with pytest.raises(IllegalArgumentError) as e:
        docs.index("obj", {"o": obj})
    assert e.value.reason.startswith(
        "Limit of mapping depth [20] has been exceeded due to object field [o.a.a."
    )
    assert docs.get("obj") is None and docs.mapping.type_of("o") is None  # nothing written
    ok: dict[str, Any] = {"v": 1}
    for _ in range(18):
        ok = {"a": ok}
    assert docs.index("ok", {"o": ok}).result == "created"  # `v` at depth 20: the limit


def test_compound_queries_nest_up_to_a_limit() -> None:
    query: dict[str, Any] = {"match_all": {}}
    for _ in range(100):
        query = {"bool": {"must": [query]}}
    assert parse_query(query).matches("1", {}, IndexMapping())
    with pytest.raises(IllegalArgumentError):
        parse_query({"bool": {"filter": query}})


def test_explicit_mappings_decide_how_fields_match() -> None:
    mapping = IndexMapping.from_body(
        {"properties": {"tag": {"type": "keyword"}, "title": {"type": "text"},
                        "n": {"type": "integer"}, "meta": {"properties": {"k": {"type": "keyword"}}}}}
    )  # fmt: skip
    docs = IndexDocs("m", mapping=mapping)
    docs.index("1", {"tag": "Big Red", "title": "Big Red", "n": "7", "meta": {"k": "x"}})
    docs.refresh(0.0)
    t = Target("m", docs.visible(), docs.mapping)

    def ids(query: Any) -> list[str]:
        return [d.id for _, d in matching([t], parse_query(query))]

    assert ids({"term": {"tag": "Big Red"}}) == ["1"] and ids({"term": {"tag": "big"}}) == []
    assert ids({"term": {"title": "big"}}) == ["1"] and ids({"term": {"title": "Big Red"}}) == []
    assert ids({"match": {"tag": "Big Red"}}) == ["1"]  # a keyword: the whole value
    assert ids({"range": {"n": {"gte": 7}}}) == ["1"]  # "7" indexed as a number
    assert ids({"term": {"meta.k": "x"}}) == ["1"]
    assert docs.mapping.type_of("title.keyword") is None  # no sub-field unless mapped
    assert mapping.body()["properties"]["meta"] == {"properties": {"k": {"type": "keyword"}}}


def test_sort_unmapped_type_and_unknown_search_keys() -> None:
    t = target()
    body = {"sort": [{"nope": {"order": "asc", "unmapped_type": "long"}}, {"likes": "asc"}]}
    out = search([t], parse_search(body))
    assert [h["_id"] for h in out["hits"]["hits"]] == ["3", "1", "2", "4"]
    assert out["hits"]["hits"][0]["sort"] == [None, 0]
    for value, token in (({}, "START_OBJECT"), ([], "START_ARRAY"), ("x", "VALUE_STRING"),
                         (1, "VALUE_NUMBER"), (True, "VALUE_BOOLEAN")):  # fmt: skip
        with pytest.raises(ParsingError) as e:
            parse_search({"search_after": value})
        assert e.value.reason == f"Unknown key for a {token} in [search_after]."
