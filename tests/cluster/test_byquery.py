"""`_reindex`, `_update_by_query`, `_delete_by_query` on real documents, against real node processes:
the counts, versions and conflicts OpenSearch reports (read from `AbstractAsyncBulkByScrollAction`,
`Reindexer`, `VersionType`), with the task trees, slices, throttling and stored results around them,
through the REST API and through opensearch-py. Every JSON answer is validated against the saved
OpenAPI schemas."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import ConflictError, OpenSearch, helpers

from tests.cluster.rest import Rest
from tests.cluster.sim import wait_until
from tests.harness import RunningCluster

NAMES = ("bq-src", "bq-dest", "bq-big", "bq-py", "bq-py-dest", "bq-missing")


@pytest.fixture
def rest(cluster: RunningCluster) -> Iterator[Rest]:
    client = Rest(cluster)
    client.drop(*NAMES)
    try:
        yield client
    finally:
        client.drop(*NAMES)


def fill(rest: Rest, index: str, docs: dict[str, dict[str, Any]], **settings: Any) -> None:
    if settings:
        rest.ok("PUT", f"/{index}", {"settings": settings})
    lines = []
    for doc_id, source in docs.items():
        lines.append({"index": {"_index": index, "_id": doc_id}})
        lines.append(source)
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    status, answer, _ = rest.checked.cluster.request(
        "POST",
        "/_bulk?refresh=true",
        body=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert status == 200 and answer["errors"] is False, answer


def test_reindex_overwrites_an_existing_id_and_keeps_the_others(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {"v": "a"}, "2": {"v": "b"}, "3": {"v": "c"}})
    rest.index("bq-dest", "1", {"v": "old"}, refresh=True)
    status, body = rest.reindex({"source": {"index": "bq-src"}, "dest": {"index": "bq-dest"}})
    assert status == 200
    assert (body["total"], body["created"], body["updated"], body["batches"]) == (3, 2, 1, 1)
    status, doc = rest.get("bq-dest", "1")
    assert status == 200 and doc["_source"] == {"v": "a"} and doc["_version"] == 2
    rest.refresh("bq-dest")
    assert rest.count("bq-dest") == 3  # overwritten, not appended


def test_reindex_op_type_create_aborts_on_the_first_conflict_or_proceeds(rest: Rest) -> None:
    fill(rest, "bq-src", {str(i): {"n": i} for i in range(4)})
    rest.index("bq-dest", "2", {"n": "mine"}, refresh=True)
    body = {"source": {"index": "bq-src"}, "dest": {"index": "bq-dest", "op_type": "create"}}
    status, answer = rest.reindex(body)
    assert status == 409
    assert (answer["created"], answer["version_conflicts"], answer["batches"]) == (3, 1, 1)
    (failure,) = answer["failures"]
    assert (failure["index"], failure["id"], failure["status"]) == ("bq-dest", "2", 409)
    assert failure["cause"]["type"] == "version_conflict_engine_exception"
    assert failure["cause"]["reason"] == (
        "[2]: version conflict, document already exists (current version [1])"
    )
    assert list(failure["cause"]) == ["type", "reason", "index_uuid", "shard", "index"]

    status, answer = rest.reindex({**body, "conflicts": "proceed"})
    assert status == 200
    assert (answer["created"], answer["version_conflicts"], answer["failures"]) == (0, 4, [])
    status, doc = rest.get("bq-dest", "2")
    assert doc["_source"] == {"n": "mine"}  # never overwritten


def test_reindex_external_versions_keep_the_newer_document(rest: Rest) -> None:
    rest.index("bq-src", "1", {"v": "src"}, version=5, version_type="external")
    rest.index("bq-src", "2", {"v": "src"}, version=2, version_type="external", refresh=True)
    rest.index("bq-dest", "2", {"v": "dest"}, version=9, version_type="external")
    status, answer = rest.reindex(
        {
            "source": {"index": "bq-src"},
            "dest": {"index": "bq-dest", "version_type": "external"},
            "conflicts": "proceed",
        }
    )
    assert status == 200
    assert (answer["created"], answer["updated"], answer["version_conflicts"]) == (1, 0, 1)
    _, one = rest.get("bq-dest", "1")
    assert one["_version"] == 5  # the source's version
    _, two = rest.get("bq-dest", "2")
    assert (two["_version"], two["_source"]) == (9, {"v": "dest"})


def test_reindex_source_query_source_filter_and_max_docs(rest: Rest) -> None:
    docs = {str(i): {"kind": "a" if i % 2 else "b", "n": i, "secret": "x"} for i in range(10)}
    fill(rest, "bq-src", docs)
    status, answer = rest.reindex(
        {
            "max_docs": 3,
            "source": {
                "index": "bq-src",
                "query": {"term": {"kind": "a"}},
                "_source": ["kind", "n"],
            },
            "dest": {"index": "bq-dest"},
        },
        refresh=True,
    )
    assert status == 200 and (answer["total"], answer["created"]) == (3, 3)
    assert rest.count("bq-dest") == 3
    found = rest.ok("POST", "/bq-dest/_search", {"query": {"match_all": {}}})
    for hit in found["hits"]["hits"]:
        assert set(hit["_source"]) == {"kind", "n"} and hit["_source"]["kind"] == "a"


def test_update_by_query_script_with_params_bumps_versions(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {"n": 1, "tag": "x"}, "2": {"n": 5, "tag": "y"}})
    status, answer = rest.update_by_query(
        "bq-src",
        {
            "query": {"range": {"n": {"gte": 2}}},
            "script": {"source": "ctx._source.n += params.step", "params": {"step": 10}},
        },
        refresh=True,
    )
    assert status == 200 and (answer["total"], answer["updated"]) == (1, 1)
    _, two = rest.get("bq-src", "2")
    assert (two["_source"]["n"], two["_version"]) == (15, 2)
    _, one = rest.get("bq-src", "1")
    assert (one["_source"]["n"], one["_version"]) == (1, 1)


def test_an_unsupported_script_is_a_clear_400(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {"n": 1}})
    status, answer = rest.update_by_query(
        "bq-src", {"script": "for (int i = 0; i < 3; i++) { ctx._source.n++ }"}
    )
    assert status == 400
    error = answer["error"]
    assert (error["type"], error["reason"], error["lang"]) == (
        "script_exception",
        "compile error",
        "painless",
    )
    assert error["position"] == {"offset": 0, "start": 0, "end": 14}
    assert error["script_stack"] == ["for (int i = 0", "^---- HERE"]
    assert "tasksim does not support [for]" in error["caused_by"]["reason"]


def test_delete_by_query_of_nothing_is_total_zero(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {"user": "kimchy"}})
    status, answer = rest.delete_by_query("bq-src", {"query": {"term": {"user": "nobody"}}})
    assert status == 200
    assert (answer["total"], answer["deleted"], answer["batches"]) == (0, 0, 0)


def test_sliced_update_by_query_shares_the_real_documents(rest: Rest) -> None:
    fill(rest, "bq-big", {str(i): {"n": i} for i in range(40)}, number_of_shards=2)
    status, started = rest.update_by_query(
        "bq-big", slices=2, scroll_size=5, requests_per_second=40, wait_for_completion=False
    )
    assert status == 200
    task_id = started["task"]

    def children() -> list[dict[str, Any]]:
        listed = rest.ok("GET", "/_tasks", parent_task_id=task_id, detailed=True)
        return [t for n in listed["nodes"].values() for t in n["tasks"].values()]

    slices = wait_until(lambda: len(children()) >= 2 and children())
    assert {t["status"]["slice_id"] for t in slices if "slice_id" in t["status"]} == {0, 1}
    done = rest.task(task_id)
    response = done["response"]
    assert (response["total"], response["updated"], response["version_conflicts"]) == (40, 40, 0)
    parts = response["slices"]
    assert [p["slice_id"] for p in parts] == [0, 1]
    assert sum(p["updated"] for p in parts) == 40 and all(p["updated"] > 0 for p in parts)
    assert response["batches"] == sum(p["batches"] for p in parts)
    assert response["throttled_millis"] > 0
    for doc_id in ("0", "17", "39"):
        _, doc = rest.get("bq-big", doc_id)
        assert doc["_version"] == 2


def test_a_cancelled_delete_by_query_keeps_what_its_batches_deleted(rest: Rest) -> None:
    fill(rest, "bq-big", {str(i): {"n": i} for i in range(30)})
    status, started = rest.delete_by_query(
        "bq-big",
        {"query": {"match_all": {}}},
        scroll_size=10,
        requests_per_second=2,  # 5 s between batches
        wait_for_completion=False,
    )
    assert status == 200
    task_id = started["task"]
    wait_until(lambda: rest.ok("GET", f"/_tasks/{task_id}")["task"]["status"]["deleted"] >= 10)
    rest.ok("POST", f"/_tasks/{task_id}/_cancel")
    response = rest.task(task_id)["response"]
    assert response["canceled"] == "by user request"
    deleted = response["deleted"]
    assert 10 <= deleted < 30 and deleted % 10 == 0
    rest.refresh("bq-big")
    assert rest.count("bq-big") == 30 - deleted


def test_a_failed_by_query_stores_a_zeroed_status(rest: Rest) -> None:
    status, started = rest.delete_by_query(
        "bq-missing", {"query": {"match_all": {}}}, wait_for_completion=False
    )
    assert status == 200
    done = rest.task(started["task"])
    assert done["completed"] is True and "response" not in done
    assert done["error"]["type"] == "index_not_found_exception"
    assert done["task"]["status"] == {
        "total": 0,
        "updated": 0,
        "created": 0,
        "deleted": 0,
        "batches": 0,
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
    }


def test_opensearch_py_by_query_operations(rest: Rest, cluster: RunningCluster) -> None:
    client = OpenSearch(hosts=[cluster.url], timeout=60)
    try:
        for i in range(100):
            kind = "answers" if i % 2 == 0 else "questions"
            client.index(index="bq-py", id=str(i), body={"answer": i, "type": kind})
        client.indices.refresh(index="bq-py")

        updated = client.update_by_query(
            index="bq-py",
            body={
                "query": {"term": {"type": "answers"}},
                "script": {"source": "ctx._source.checked = true"},
            },
            refresh=True,
        )
        assert (updated["total"], updated["updated"], updated["noops"]) == (50, 50, 0)
        assert client.count(index="bq-py", q="checked:true")["count"] == 50

        moved = client.reindex(
            body={"source": {"index": "bq-py", "query": {"term": {"answer": 42}}},
                  "dest": {"index": "bq-py-dest"}},
            refresh=True,
        )  # fmt: skip
        assert (moved["created"], moved["total"]) == (1, 1)
        assert client.get(index="bq-py-dest", id="42")["_source"] == {
            "answer": 42,
            "type": "answers",
            "checked": True,
        }
        with pytest.raises(ConflictError) as info:
            client.reindex(
                body={"source": {"index": "bq-py"},
                      "dest": {"index": "bq-py-dest", "op_type": "create"}},
            )  # fmt: skip
        assert info.value.info["version_conflicts"] == 1
        assert info.value.info["failures"][0]["id"] == "42"

        deleted = client.delete_by_query(
            index="bq-py", body={"query": {"term": {"type": "questions"}}}, refresh=True
        )
        assert (deleted["deleted"], deleted["batches"]) == (50, 1)
        assert client.count(index="bq-py")["count"] == 50
    finally:
        client.close()


@pytest.fixture
def answers(rest: Rest, cluster: RunningCluster) -> Iterator[OpenSearch]:
    """opensearch-py's `TestReindex.setup_method` (test_server/test_helpers/test_actions.py):
    100 documents, half `answers` and half `questions`, the 42nd `correct`."""
    client = OpenSearch(hosts=[cluster.url], timeout=60)
    lines: list[dict[str, Any]] = []
    for x in range(100):
        lines.append({"index": {"_index": "bq-py", "_id": x}})
        lines.append(
            {"answer": x, "correct": x == 42, "type": "answers" if x % 2 == 0 else "questions"}
        )
    client.bulk(body=lines, refresh=True)
    try:
        yield client
    finally:
        client.close()


def test_helpers_reindex_passes_kwargs_to_scan_and_bulk(answers: OpenSearch) -> None:
    # opensearch-py TestReindex.test_reindex_passes_kwargs_to_scan_and_bulk
    helpers.reindex(
        answers,
        "bq-py",
        "bq-py-dest",
        scan_kwargs={"q": "type:answers"},
        bulk_kwargs={"refresh": True},
    )
    assert answers.count(index="bq-py-dest", q="type:answers")["count"] == 50
    assert answers.count(index="bq-py-dest")["count"] == 50
    assert answers.get(index="bq-py-dest", id=42)["_source"] == {
        "answer": 42,
        "correct": True,
        "type": "answers",
    }


def test_helpers_reindex_accepts_a_query_and_moves_everything(answers: OpenSearch) -> None:
    # opensearch-py TestReindex.test_reindex_accepts_a_query, then test_all_documents_get_moved
    helpers.reindex(
        answers,
        "bq-py",
        "bq-py-dest",
        query={"query": {"bool": {"filter": {"term": {"type": "answers"}}}}},
    )
    answers.indices.refresh()
    assert answers.count(index="bq-py-dest", q="type:answers")["count"] == 50
    assert answers.count(index="bq-py-dest", q="type:questions")["count"] == 0
    helpers.reindex(answers, "bq-py", "bq-py-dest", chunk_size=30, scan_kwargs={"size": 7})
    answers.indices.refresh()
    assert answers.count(index="bq-py-dest", q="type:questions")["count"] == 50
    assert answers.count(index="bq-py-dest", q="type:answers")["count"] == 50
    assert answers.get(index="bq-py-dest", id=42)["_source"]["correct"] is True
    # every scroll the helper opened was cleared when it was done
    assert answers.clear_scroll(scroll_id="_all")["num_freed"] == 0


def test_reindex_from_a_list_and_a_wildcard(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {"from": "src"}, "2": {"from": "src"}})
    fill(rest, "bq-big", {"1": {"from": "big"}, "3": {"from": "big"}})
    status, started = rest.reindex(
        {"source": {"index": ["bq-src", "bq-b*"]}, "dest": {"index": "bq-dest"}},
        wait_for_completion=False,
        refresh=True,
    )
    assert status == 200
    done = rest.task(started["task"])
    assert done["task"]["description"] == "reindex from [bq-src, bq-b*] to [bq-dest]"
    response = done["response"]
    # id 1 is in both sources: the second copy overwrites the first
    assert (response["total"], response["created"], response["updated"]) == (4, 3, 1)
    assert rest.count("bq-dest") == 3


def test_a_negative_batch_size_is_refused(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {}})
    status, answer = rest.update_by_query("bq-src", scroll_size=-5)
    assert status == 400
    assert answer["error"]["reason"] == "[size] parameter cannot be negative, found [-5]"
    status, answer = rest.reindex(
        {"source": {"index": "bq-src", "size": -1}, "dest": {"index": "bq-dest"}}
    )
    assert status == 400 and answer["error"]["type"] == "illegal_argument_exception"


def test_reindex_into_an_index_auto_create_refuses(rest: Rest) -> None:
    fill(rest, "bq-src", {"1": {}, "2": {}})
    rest.ok("PUT", "/_cluster/settings", {"persistent": {"action.auto_create_index": False}})
    try:
        status, answer = rest.reindex({"source": {"index": "bq-src"}, "dest": {"index": "bq-dest"}})
    finally:
        rest.ok("PUT", "/_cluster/settings", {"persistent": {"action.auto_create_index": None}})
    assert status == 404
    assert answer["created"] == 0 and answer["batches"] == 1
    failure = answer["failures"][0]
    assert (failure["index"], failure["status"]) == ("bq-dest", 404)
    assert failure["cause"]["type"] == "index_not_found_exception"
    assert failure["cause"]["reason"] == (
        "no such index [bq-dest] and [action.auto_create_index] is [false]"
    )
    status, _ = rest.call("GET", "/bq-dest")
    assert status == 404


def test_a_large_update_by_query_does_not_hold_the_loop(
    rest: Rest, cluster: RunningCluster
) -> None:
    """30 000 documents in one batch, with a script of 60 statements: the snapshot is scanned in
    a worker thread and the batch is prepared (the script runs) and written 100 documents per
    turn of the loop, so `_cluster/health`, asked all along, never waits more than a fraction of
    the operation's own time (measured: 0.12 s of 4.8 s). On the loop, the whole batch was one
    stall (2.1 s of 4.6 s)."""
    rest.ok("PUT", "/bq-big", {"settings": {"refresh_interval": -1}})
    lines = b'{"index":{"_index":"bq-big"}}\n{"a":1}\n' * 30_000
    status, _, _ = cluster.request(
        "POST", "/_bulk?refresh=true", body=lines, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 200
    done: dict[str, Any] = {}

    def send() -> None:
        started = time.monotonic()
        done["answer"] = cluster.request(
            "POST",
            "/bq-big/_update_by_query?scroll_size=30000",
            body=json.dumps({"script": "ctx._source.a++;" * 60}).encode(),
            headers={"Content-Type": "application/json"},
            timeout=300,
        )
        done["took"] = time.monotonic() - started

    operation = threading.Thread(target=send)
    operation.start()
    worst = 0.0
    while operation.is_alive():
        asked = time.monotonic()
        assert cluster.get("/_cluster/health", timeout=300)[0] == 200
        worst = max(worst, time.monotonic() - asked)
        time.sleep(0.02)
    operation.join()
    status, body, _ = done["answer"]
    assert status == 200 and (body["updated"], body["batches"]) == (30_000, 1), body
    assert worst < max(1.0, done["took"] / 5), (worst, done["took"])


def test_a_batch_the_script_made_all_noops_does_not_end_the_scroll(rest: Rest) -> None:
    fill(rest, "bq-src", {str(n): {"n": n} for n in range(1, 7)}, number_of_shards=1)
    status, body = rest.update_by_query(
        "bq-src", {"script": "if (ctx._source.n < 3) {ctx.op = 'noop'}"}, scroll_size=2
    )
    assert status == 200
    assert (body["total"], body["batches"], body["noops"], body["updated"]) == (6, 3, 2, 4)


def test_manual_slices_of_a_reindex(rest: Rest) -> None:
    fill(rest, "bq-src", {str(i): {"n": i} for i in range(20)})
    created = 0
    for slice_id in (0, 1):
        status, body = rest.reindex(
            {
                "source": {"index": "bq-src", "slice": {"id": slice_id, "max": 2}},
                "dest": {"index": "bq-dest"},
            }
        )
        assert status == 200 and body["updated"] == 0  # the two slices do not overlap
        created += body["created"]
    assert created == 20
    status, body = rest.reindex(
        {"source": {"index": "bq-src", "slice": {"id": 0, "max": 2}}, "dest": {"index": "bq-dest"}},
        slices=2,
    )
    assert status == 400
    assert (
        "can't specify both manual and automatic slicing at the same time"
        in (body["error"]["reason"])
    )
    status, body = rest.update_by_query("bq-src", {"slice": {"id": 2, "max": 2}})
    assert status == 400 and body["error"]["reason"] == "max must be greater than id"
