"""Documents against real node processes, as OpenSearch's REST tests and opensearch-py use them:
single-document APIs, `_bulk` items, near-real-time visibility and refresh, `_search` / `_count`,
and `.tasks` as a real index. Every JSON answer is validated against the official schemas
(tests/openapi.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.sim import wait_until
from tests.harness import RunningCluster
from tests.openapi import Checked, validate

JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def api(cluster: RunningCluster) -> Checked:
    return Checked(cluster)


def send(api: Checked, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    status, answer, _ = api.request(method, path, body=data, headers=JSON if data else {})
    return status, answer


def bulk(api: Checked, path: str, lines: list[dict[str, Any]]) -> tuple[int, Any]:
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, answer, _ = api.request("POST", path, body=data, headers=NDJSON)
    return status, answer


def test_index_get_and_delete_a_document(api: Checked) -> None:
    status, body = send(api, "PUT", "/docs-a/_doc/1", {"foo": "bar"})
    assert status == 201, body
    assert body == {
        "_index": "docs-a", "_id": "1", "_version": 1, "result": "created",
        "_shards": {"total": 2, "successful": 2, "failed": 0}, "_seq_no": 0, "_primary_term": 1,
    }  # fmt: skip
    _, _, headers = api.request("PUT", "/docs-a/_doc/2", body=b'{"n":2}', headers=JSON)
    assert headers.get("location") == "/docs-a/_doc/2"
    status, body = send(api, "PUT", "/docs-a/_doc/1", {"foo": "baz"})
    assert (status, body["result"], body["_version"], body["_seq_no"]) == (200, "updated", 2, 2)
    status, body = send(api, "GET", "/docs-a/_doc/1")
    assert (status, body) == (200, {
        "_index": "docs-a", "_id": "1", "_version": 2, "_seq_no": 2, "_primary_term": 1,
        "found": True, "_source": {"foo": "baz"},
    })  # fmt: skip
    status, body, _ = api.request("GET", "/docs-a/_source/1")
    assert (status, body) == (200, {"foo": "baz"})
    status, body = send(api, "PUT", "/docs-a/_create/1", {"foo": "x"})
    assert status == 409
    assert body["error"]["type"] == "version_conflict_engine_exception"
    assert body["error"]["reason"] == (
        "[1]: version conflict, document already exists (current version [2])"
    )
    assert body["error"]["index"] == "docs-a" and body["error"]["shard"] == "0"
    status, body = send(api, "PUT", "/docs-a/_doc/1?op_type=create", {"foo": "x"})
    assert status == 409
    status, body = send(api, "PUT", "/docs-a/_doc/9", [1])
    assert status == 400 and body["error"]["type"] == "mapper_parsing_exception"
    assert body["error"]["caused_by"]["reason"] == "Malformed content, must start with an object"
    status, body = send(api, "PUT", "/docs-a/_doc/9")
    assert status == 400
    assert body["error"]["reason"] == "Validation Failed: 1: source is missing;"
    status, body = send(api, "POST", "/docs-a/_doc", {"auto": True})
    assert status == 201 and body["result"] == "created" and len(body["_id"]) == 20
    status, body = send(api, "DELETE", "/docs-a/_doc/1")
    assert (status, body["result"], body["_version"]) == (200, "deleted", 3)
    status, body = send(api, "DELETE", "/docs-a/_doc/1")
    assert (status, body["result"], body["_version"]) == (404, "not_found", 4)
    status, body = send(api, "GET", "/docs-a/_doc/1")
    assert (status, body) == (404, {"_index": "docs-a", "_id": "1", "found": False})
    status, body, _ = api.request("GET", "/docs-a/_source/1")
    assert status == 404 and body["error"]["type"] == "resource_not_found_exception"
    status, body = send(api, "POST", "/_mget", {"docs": [
        {"_index": "docs-a", "_id": "2"}, {"_index": "docs-a", "_id": "1"},
        {"_index": "nope-a", "_id": "1"}]})  # fmt: skip
    assert status == 200
    found, missing, error = body["docs"]
    assert (found["found"], found["_source"], missing["found"]) == (True, {"n": 2}, False)
    assert error["error"]["type"] == "index_not_found_exception"
    _, body = send(api, "POST", "/docs-a/_mget?_source=false", {"ids": ["2"]})
    assert body["docs"][0]["found"] is True and "_source" not in body["docs"][0]
    assert api.cluster.request("HEAD", "/docs-a")[0] == 200  # opensearch-py's indices.exists
    assert api.cluster.request("HEAD", "/docs-zz")[0] == 404
    head, _, _ = api.cluster.request("HEAD", "/docs-a/_doc/2")
    assert head == 200
    head, _, _ = api.cluster.request("HEAD", "/docs-a/_doc/1")
    assert head == 404


def test_optimistic_concurrency_and_versions(api: Checked) -> None:
    send(api, "PUT", "/docs-b/_doc/1", {"a": 1})
    send(api, "PUT", "/docs-b/_doc/1", {"a": 2})
    status, body = send(api, "PUT", "/docs-b/_doc/1?if_seq_no=0&if_primary_term=1", {"a": 3})
    assert status == 409
    assert body["error"]["reason"] == (
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has "
        "seqNo [1] and primary term [1]"
    )
    status, body = send(api, "DELETE", "/docs-b/_doc/9?if_seq_no=0&if_primary_term=1")
    assert status == 409 and body["error"]["reason"].endswith("but no document was found")
    status, body = send(api, "PUT", "/docs-b/_doc/1?if_seq_no=1&if_primary_term=1", {"a": 3})
    assert (status, body["_version"]) == (200, 3)
    status, body = send(api, "PUT", "/docs-b/_doc/2?version=10&version_type=external", {})
    assert (status, body["_version"]) == (201, 10)
    status, body = send(api, "PUT", "/docs-b/_doc/2?version=10&version_type=external", {})
    assert status == 409 and body["error"]["reason"] == (
        "[2]: version conflict, current version [10] is higher or equal to the one provided [10]"
    )
    status, body = send(api, "PUT", "/docs-b/_doc/2?version=3", {})
    assert status == 400 and body["error"]["type"] == "action_request_validation_exception"
    status, body = send(api, "PUT", "/docs-b/_doc/2?refresh=sometimes", {})
    assert status == 400 and body["error"]["reason"] == "Unknown value for refresh: [sometimes]."


def test_update(api: Checked) -> None:
    send(api, "PUT", "/docs-c/_doc/1", {"a": {"b": 1}, "c": 1})
    status, body = send(api, "POST", "/docs-c/_update/1", {"doc": {"a": {"d": 2}}})
    assert (status, body["result"], body["_version"]) == (200, "updated", 2)
    _, got = send(api, "GET", "/docs-c/_doc/1")
    assert got["_source"] == {"a": {"b": 1, "d": 2}, "c": 1}
    status, body = send(api, "POST", "/docs-c/_update/1", {"doc": {"c": 1}})
    assert (status, body["result"], body["_version"]) == (200, "noop", 2)
    assert body["_shards"] == {"total": 0, "successful": 0, "failed": 0}
    status, body = send(api, "POST", "/docs-c/_update/1", {"doc": {"c": 1}, "detect_noop": False})
    assert body["result"] == "updated"
    status, body = send(api, "POST", "/docs-c/_update/2", {"doc": {"x": 1}})
    assert status == 404 and body["error"]["type"] == "document_missing_exception"
    assert body["error"]["reason"] == "[2]: document missing"
    status, body = send(api, "POST", "/docs-c/_update/2", {"doc": {"x": 1}, "doc_as_upsert": True})
    assert (status, body["result"]) == (201, "created")
    status, body = send(api, "POST", "/docs-c/_update/3?_source=true",
                        {"doc": {"x": 1}, "upsert": {"x": 0}})  # fmt: skip
    assert (status, body["result"], body["get"]["_source"]) == (201, "created", {"x": 0})
    status, body = send(api, "POST", "/docs-c/_update/3", {"script": "ctx._source.x++"})
    assert status == 400 and body["error"]["type"] == "illegal_argument_exception"


def test_bulk_items(api: Checked) -> None:
    status, body = bulk(api, "/_bulk", [
        {"index": {"_index": "docs-d", "_id": "1"}}, {"a": 1},
        {"create": {"_index": "docs-d", "_id": "2"}}, {"a": 2},
        {"delete": {"_index": "docs-d", "_id": "404"}},
        {"update": {"_index": "docs-d", "_id": "1"}}, {"doc": {"b": 1}},
    ])  # fmt: skip
    assert status == 200, body
    assert body["errors"] is False  # a delete of a missing id is not an error
    results = [(op, item["result"], item["status"]) for i in body["items"]
               for op, item in i.items()]  # fmt: skip
    assert results == [
        ("index", "created", 201), ("create", "created", 201), ("delete", "not_found", 404),
        ("update", "updated", 200),
    ]  # fmt: skip
    assert body["items"][0]["index"]["_shards"] == {"total": 2, "successful": 2, "failed": 0}
    status, body = bulk(api, "/docs-d/_bulk?refresh=true", [
        {"create": {"_id": "1"}}, {"a": 1},
        {"update": {"_id": "nope"}}, {"doc": {"a": 1}},
        {"index": {"_id": "3", "if_seq_no": 99, "if_primary_term": 1}}, {"a": 3},
        {"delete": {"_id": "2"}},
    ])  # fmt: skip
    assert status == 200 and body["errors"] is True
    create, update, index, delete = (next(iter(i.values())) for i in body["items"])
    assert create["status"] == 409
    assert create["error"]["type"] == "version_conflict_engine_exception"
    assert update["status"] == 404 and update["error"]["type"] == "document_missing_exception"
    assert index["status"] == 409 and "but no document was found" in index["error"]["reason"]
    assert (delete["result"], delete["forced_refresh"]) == ("deleted", True)
    status, body = send(api, "GET", "/docs-d/_count")
    assert body["count"] == 1  # refresh=true: visible at once
    status, body = bulk(api, "/_bulk", [{"delete": {"_index": "never-made", "_id": "1"}}])
    item = body["items"][0]["delete"]
    assert body["errors"] is True and item["error"]["type"] == "index_not_found_exception"
    status, _ = send(api, "GET", "/never-made")
    assert status == 404  # a delete does not create its index


def test_near_real_time_and_refresh(api: Checked) -> None:
    status, _ = send(api, "PUT", "/docs-e", {"settings": {"index": {"refresh_interval": "-1"}}})
    assert status == 200
    send(api, "PUT", "/docs-e/_doc/1", {"a": 1})
    _, body = send(api, "GET", "/docs-e/_search")
    assert body["hits"]["total"] == {"value": 0, "relation": "eq"}  # not refreshed yet
    _, body = send(api, "GET", "/docs-e/_count")
    assert body["count"] == 0
    _, body = send(api, "GET", "/docs-e/_doc/1")
    assert body["found"] is True  # get is realtime
    status, body = send(api, "POST", "/docs-e/_refresh")
    assert (status, body) == (200, {"_shards": {"total": 2, "successful": 2, "failed": 0}})
    _, body = send(api, "GET", "/docs-e/_count")
    assert body["count"] == 1
    status, body = send(api, "POST", "/_refresh")  # not an index named `_refresh`
    assert status == 200 and body["_shards"]["failed"] == 0
    # refresh=wait_for waits for the next refresh; with the schedule off, an explicit one
    answer: dict[str, Any] = {}

    def write() -> None:
        answer["reply"] = send(api, "PUT", "/docs-e/_doc/2?refresh=wait_for", {"a": 2})

    thread = threading.Thread(target=write)
    thread.start()
    try:
        wait_until(lambda: send(api, "GET", "/docs-e/_doc/2")[1].get("found") is True, timeout=30)
        assert thread.is_alive()  # written, not visible yet: still waiting
        send(api, "POST", "/docs-e/_refresh")
    finally:
        thread.join(timeout=30)
    status, body = answer["reply"]
    assert (status, body["result"]) == (201, "created") and "forced_refresh" not in body
    _, body = send(api, "GET", "/docs-e/_count")
    assert body["count"] == 2


def test_search_and_count(api: Checked) -> None:
    docs = [
        {"user": "kimchy", "msg": "trying out OpenSearch", "likes": 5},
        {"user": "Alice Smith", "msg": "OpenSearch rocks", "likes": 10},
        {"user": "bob", "likes": 0, "tags": ["x", "y"]},
    ]
    lines: list[dict[str, Any]] = []
    for n, doc in enumerate(docs, start=1):
        lines += [{"index": {"_id": str(n)}}, doc]
    bulk(api, "/docs-f/_bulk?refresh=true", lines)

    def ids(body: Any, params: str = "") -> list[str]:
        status, answer = send(api, "POST", f"/docs-f/_search{params}", body)
        assert status == 200, answer
        return [h["_id"] for h in answer["hits"]["hits"]]

    assert ids({"query": {"term": {"user": "alice"}}}) == ["2"]
    assert ids({"query": {"term": {"user.keyword": "Alice Smith"}}}) == ["2"]
    assert ids({"query": {"match": {"msg": "opensearch trying"}}}) == ["1", "2"]
    assert ids({"query": {"match": {"msg": {"query": "opensearch trying",
                                            "operator": "and"}}}}) == ["1"]  # fmt: skip
    assert ids({"query": {"exists": {"field": "tags"}}}) == ["3"]
    assert ids({"query": {"range": {"likes": {"gt": 0}}}}) == ["1", "2"]
    assert ids({"query": {"bool": {"must_not": {"term": {"likes": 0}}, "filter": [
        {"terms": {"user": ["kimchy", "bob"]}}]}}}) == ["1"]  # fmt: skip
    assert ids({"sort": [{"likes": "desc"}], "size": 2}) == ["2", "1"]
    assert ids({"sort": "likes", "from": 1}) == ["1", "2"]
    assert ids(None, "?q=user:bob") == ["3"]
    _, body = send(api, "POST", "/docs-f/_search?rest_total_hits_as_int=true",
                   {"query": {"ids": {"values": ["1"]}}, "_source": ["user"],
                    "seq_no_primary_term": True, "version": True})  # fmt: skip
    assert body["hits"]["total"] == 1
    (hit,) = body["hits"]["hits"]
    assert hit["_source"] == {"user": "kimchy"} and hit["_version"] == 1
    assert hit["_seq_no"] >= 0 and hit["_primary_term"] == 1
    _, body = send(api, "POST", "/docs-f/_search", {"track_total_hits": False})
    assert "total" not in body["hits"]
    status, body = send(api, "POST", "/docs-f/_search", {"query": {"wildcard": {"user": "b*"}}})
    assert status == 400
    assert body["error"]["root_cause"][0] == {
        "type": "parsing_exception", "reason": "unknown query [wildcard]", "line": 1, "col": 24,
    }  # fmt: skip
    status, body = send(api, "POST", "/docs-f/_search", {"sort": "user"})
    assert status == 400 and body["error"]["type"] == "search_phase_execution_exception"
    assert body["error"]["caused_by"]["type"] == "illegal_argument_exception"
    status, body = send(api, "GET", "/docs-f/_count")
    assert (status, body) == (
        200, {"count": 3, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}},
    )  # fmt: skip
    _, body = send(api, "POST", "/docs-f/_count", {"query": {"range": {"likes": {"gte": 5}}}})
    assert body["count"] == 2
    _, body = send(api, "GET", "/docs-f/_count?q=user:kimchy")
    assert body["count"] == 1
    status, body = send(api, "POST", "/docs-f/_count", {"size": 1})
    assert status == 400 and body["error"]["reason"] == "request does not support [size]"
    status, body = send(api, "GET", "/missing-index/_search")
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"
    status, body = send(api, "GET", "/docs-f,missing-index/_count?ignore_unavailable=true")
    assert (status, body["count"]) == (200, 3)
    status, body = send(api, "GET", "/nothing-*/_search?allow_no_indices=false")
    assert status == 404 and body["error"]["reason"] == "no such index [nothing-*]"
    status, body = send(api, "POST", "/docs-f/_count?q=user:bob", {"query": {"match_all": {}}})
    assert body["count"] == 3  # the body's query wins over q
    status, body = bulk(api, "/docs-f/_bulk", [
        {"index": {"_id": "9"}}, {},
        {"index": {"_id": "10", "version": 3}}, {},
        {"delete": {"_id": "1", "if_seq_no": 0}},
    ])  # fmt: skip
    assert status == 400 and body["error"]["reason"] == (  # the whole request, nothing written
        "Validation Failed: 1: internal versioning can not be used for optimistic concurrency "
        "control. Please use `if_seq_no` and `if_primary_term` instead;2: ifSeqNo is set, but "
        "primary term is [0];"
    )
    assert send(api, "GET", "/docs-f/_doc/9")[0] == 404
    status, body = bulk(api, "/docs-f/_bulk", [{"index": {"_id": "9", "colour": "red"}}, {}])
    assert status == 400 and body["error"]["reason"] == (
        "Action/metadata line [1] contains an unknown parameter [colour]"
    )
    status, body = send(api, "GET", "/missing-index/_doc/1")
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"


def test_synthetic_volume_is_counted_never_hit(api: Checked) -> None:
    send(api, "POST", "/_sim/indices", {"index": "docs-g", "docs": 20_000, "shards": 2})
    send(api, "PUT", "/docs-g/_doc/real?refresh=true", {"kind": "real"})
    _, body = send(api, "GET", "/docs-g/_search")
    assert body["hits"]["total"] == {"value": 10_000, "relation": "gte"}
    assert [h["_id"] for h in body["hits"]["hits"]] == ["real"]
    _, body = send(api, "GET", "/docs-g/_count")
    assert body["count"] == 20_001
    _, body = send(api, "POST", "/docs-g/_count", {"query": {"term": {"kind": "real"}}})
    assert body["count"] == 1


def test_dot_tasks_is_a_real_index(api: Checked) -> None:
    send(api, "POST", "/_sim/indices", {"index": "docs-src", "docs": 10, "shards": 1})
    _, started = send(api, "POST", "/_reindex?wait_for_completion=false",
                      {"source": {"index": "docs-src"}, "dest": {"index": "docs-dst"}})  # fmt: skip
    task_id = started["task"]
    status, done = send(api, "GET", f"/_tasks/{task_id}?wait_for_completion=true")
    assert status == 200 and done["completed"] is True
    status, doc = send(api, "GET", f"/.tasks/_doc/{task_id}")
    assert status == 200 and doc["found"] is True
    assert doc["_source"]["completed"] is True
    assert doc["_source"]["task"]["action"] == "indices:data/write/reindex"
    assert doc["_source"]["response"]["created"] == 10
    send(api, "POST", "/.tasks/_refresh")
    _, found = send(api, "POST", "/.tasks/_search",
                    {"query": {"term": {"task.action": "indices:data/write/reindex"}}})  # fmt: skip
    assert task_id in [h["_id"] for h in found["hits"]["hits"]]
    # Not hidden (TaskResultsService.taskResultIndexSettings): a search of everything reaches it.
    _, everything = send(api, "GET", "/_search?size=100")
    assert task_id in [h["_id"] for h in everything["hits"]["hits"] if h["_index"] == ".tasks"]
    status, index = send(api, "GET", "/.tasks")
    settings = index[".tasks"]["settings"]["index"]
    assert "hidden" not in settings and settings["number_of_shards"] == "1"
    assert (settings["auto_expand_replicas"], settings["priority"]) == ("0-1", "2147483647")
    assert index[".tasks"]["mappings"]["dynamic"] == "strict"
    assert send(api, "DELETE", "/.tasks") == (200, {"acknowledged": True})
    status, body = send(api, "GET", f"/_tasks/{task_id}")
    assert status == 404
    assert body["error"]["type"] == "resource_not_found_exception"
    assert (
        body["error"]["reason"] == f"task [{task_id}] isn't running and hasn't stored its results"
    )
    assert body["error"]["caused_by"]["type"] == "index_not_found_exception"
    assert body["error"]["caused_by"]["reason"] == "no such index [.tasks]"


@pytest.fixture(scope="module")
def client(cluster: RunningCluster) -> Iterator[Any]:
    from opensearchpy import OpenSearch

    c = OpenSearch(hosts=[{"host": "127.0.0.1", "port": cluster.port}], timeout=60)
    try:
        yield c
    finally:
        c.close()


def test_opensearch_py(client: Any) -> None:
    from opensearchpy import ConflictError, NotFoundError, helpers

    made = client.index(index="py-docs", id="1", body={"title": "Moneyball", "year": 2011})
    validate("PUT", "/py-docs/_doc/1", 201, made)
    assert (made["result"], made["_version"]) == ("created", 1)
    with pytest.raises(ConflictError):
        client.create(index="py-docs", id="1", body={"title": "again"})
    got = client.get(index="py-docs", id="1")
    assert got["_source"] == {"title": "Moneyball", "year": 2011}
    assert client.exists(index="py-docs", id="1") is True
    assert client.exists(index="py-docs", id="2") is False
    assert client.indices.exists(index="py-docs") is True
    assert client.indices.exists(index="py-nothing") is False
    updated = client.update(index="py-docs", id="1", body={"doc": {"year": 2012}})
    assert (updated["result"], updated["_version"]) == ("updated", 2)
    ok, errors = helpers.bulk(
        client,
        ({"_index": "py-docs", "_id": str(n), "title": f"movie {n}", "year": 2000 + n}
         for n in range(2, 12)),
    )  # fmt: skip
    assert (ok, errors) == (10, [])
    client.indices.refresh(index="py-docs")
    hits = client.search(index="py-docs", body={"query": {"range": {"year": {"gte": 2010}}}})
    validate("POST", "/py-docs/_search", 200, hits)
    assert sorted(h["_id"] for h in hits["hits"]["hits"]) == ["1", "10", "11"]
    assert client.count(index="py-docs")["count"] == 11
    assert (
        client.count(index="py-docs", body={"query": {"match": {"title": "movie"}}})["count"] == 10
    )
    deleted = client.delete(index="py-docs", id="1")
    assert deleted["result"] == "deleted"
    with pytest.raises(NotFoundError):
        client.delete(index="py-docs", id="1")
    with pytest.raises(NotFoundError):
        client.get(index="py-docs", id="1")


def test_a_search_over_many_documents(api: Checked) -> None:
    """Past 20 000 documents a search or count scans its snapshot in a worker thread: the same
    answers."""
    lines: list[dict[str, Any]] = []
    for n in range(20_001):
        lines += [{"index": {}}, {"n": n, "even": n % 2 == 0}]
    status, body = bulk(api, "/docs-many/_bulk?refresh=true", lines)
    assert status == 200 and body["errors"] is False and len(body["items"]) == 20_001
    _, body = send(api, "GET", "/docs-many/_count")
    assert body["count"] == 20_001
    _, body = send(api, "POST", "/docs-many/_count", {"query": {"term": {"even": True}}})
    assert body["count"] == 10_001
    _, body = send(api, "POST", "/docs-many/_search",
                   {"query": {"range": {"n": {"gte": 19_998}}}, "sort": [{"n": "desc"}]})  # fmt: skip
    assert [h["_source"]["n"] for h in body["hits"]["hits"]] == [20_000, 19_999, 19_998]
    _, body = send(api, "GET", "/docs-many/_search?size=0")
    assert body["hits"]["total"] == {"value": 10_000, "relation": "gte"}
    send(api, "DELETE", "/docs-many")


def test_dynamic_index_settings(api: Checked) -> None:
    send(api, "PUT", "/docs-h/_doc/1", {"a": 1})
    assert send(api, "PUT", "/docs-h/_settings", {"index": {"refresh_interval": "-1"}}) == (
        200, {"acknowledged": True},
    )  # fmt: skip
    _, body = send(api, "GET", "/docs-h/_settings")
    assert body["docs-h"]["settings"]["index"]["refresh_interval"] == "-1"
    send(api, "PUT", "/docs-h/_doc/2", {"a": 2})
    send(api, "POST", "/docs-h/_refresh")
    send(api, "PUT", "/docs-h/_doc/3", {"a": 3})
    _, body = send(api, "GET", "/docs-h/_count")
    assert body["count"] == 2  # no scheduled refresh any more
    status, body = send(api, "PUT", "/docs-h/_settings", {"index.number_of_replicas": 0})
    assert status == 200
    _, body = send(api, "PUT", "/docs-h/_doc/4", {"a": 4})
    assert body["_shards"] == {"total": 1, "successful": 1, "failed": 0}
    _, body = send(api, "POST", "/docs-h/_refresh")
    assert body["_shards"] == {"total": 1, "successful": 1, "failed": 0}
    status, body = send(api, "PUT", "/docs-h/_settings", {"settings": {"number_of_shards": 3}})
    assert status == 400 and body["error"]["reason"].startswith(
        "Can't update non dynamic settings [[index.number_of_shards]] for open indices [[docs-h/"
    )
    status, body = send(api, "PUT", "/docs-h/_settings", {"index": {"colour": "red"}})
    assert status == 400 and body["error"]["reason"].startswith("unknown setting [index.colour]")
    send(api, "PUT", "/docs-h/_settings", {"index": {"refresh_interval": None}})
    _, body = send(api, "GET", "/docs-h/_settings")
    assert "refresh_interval" not in body["docs-h"]["settings"]["index"]  # back to the default
    # At creation, a flat `index.`-prefixed key counts as the nested form does.
    for name, settings in (
        ("docs-h-flat", {"index.refresh_interval": "-1"}),
        ("docs-h-nested", {"index": {"refresh_interval": "-1"}}),
        ("docs-h-bare", {"refresh_interval": "-1"}),
    ):
        assert send(api, "PUT", f"/{name}", {"settings": settings})[0] == 200
        _, body = send(api, "GET", f"/{name}/_settings")
        assert body[name]["settings"]["index"]["refresh_interval"] == "-1", (name, body)
        send(api, "DELETE", f"/{name}")
