"""Operations that build task trees, against real node processes: `_reindex`, `_update_by_query`,
`_delete_by_query` (status over time, slices, rethrottle, stored results, cancel), `_search`,
`_bulk`, and the index model behind them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.sim import descendants, ids, start, tasks, wait_until
from tests.harness import RunningCluster, running_cluster

REINDEX = "indices:data/write/reindex"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=3) as c:
        yield c


def post(cluster: RunningCluster, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    return cluster.post(path, body=data, headers=JSON if data else {})


def sim_index(cluster: RunningCluster, name: str, docs: int, shards: int = 2) -> dict[str, Any]:
    status, body = post(cluster, "/_sim/indices", {"index": name, "docs": docs, "shards": shards})
    assert status == 200, body
    return dict(body)


def index_docs(cluster: RunningCluster, name: str) -> int:
    """The documents an index claims (synthetic) plus those it holds (real)."""
    _, body = cluster.get("/_sim/indices")
    index = next(i for i in body["indices"] if i["index"] == name)
    return int(index["docs"]) + int(index["stored_docs"])


def get_task(cluster: RunningCluster, task_id: str, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = cluster.get(f"/_tasks/{task_id}" + (f"?{query}" if query else ""))
    assert status == 200, body
    return dict(body)


def test_reindex_in_the_background_stores_its_result(cluster: RunningCluster) -> None:
    sim_index(cluster, "src-a", 5000)
    status, body = post(
        cluster,
        "/_reindex?wait_for_completion=false",
        {"source": {"index": "src-a"}, "dest": {"index": "dest-a"}},
    )
    assert status == 200 and list(body) == ["task"]
    task_id = body["task"]
    assert task_id.split(":")[0] == cluster.node("coordinator").id

    done = get_task(cluster, task_id, wait_for_completion="true", timeout="30s")
    assert done["completed"] is True
    info = done["task"]
    assert info["action"] == REINDEX and info["cancellable"] is True
    assert info["description"] == "reindex from [src-a] to [dest-a]"
    assert "resource_stats" not in info
    assert info["status"]["created"] == 5000 and info["status"]["batches"] == 5
    response = done["response"]
    assert list(response) == [
        "took",
        "timed_out",
        "total",
        "updated",
        "created",
        "deleted",
        "batches",
        "version_conflicts",
        "noops",
        "retries",
        "throttled_millis",
        "requests_per_second",
        "throttled_until_millis",
        "failures",
    ]
    assert response["total"] == 5000 and response["created"] == 5000
    assert response["requests_per_second"] == -1.0 and response["failures"] == []
    assert get_task(cluster, task_id) == done  # from the `.tasks` index, again
    assert index_docs(cluster, "dest-a") == 5000


def test_bulk_by_scroll_status_advances_with_throttling(cluster: RunningCluster) -> None:
    sim_index(cluster, "src-b", 2000)
    _, body = post(
        cluster,
        "/_reindex?wait_for_completion=false&requests_per_second=1000",
        {"source": {"index": "src-b", "size": 200}, "dest": {"index": "dest-b"}},
    )
    task_id = body["task"]
    samples = []
    while True:
        got = get_task(cluster, task_id)
        if got["completed"]:
            break
        samples.append(got["task"]["status"])
        time.sleep(0.15)
    created = [s["created"] for s in samples]
    assert created == sorted(created) and len(set(created)) >= 3
    assert all(s["requests_per_second"] == 1000.0 for s in samples)
    assert any(s["throttled_until_millis"] > 0 for s in samples)
    final = got["response"]
    assert final["created"] == 2000 and final["batches"] == 10
    # 9 waits of 200 docs / 1000 per second.
    assert final["throttled_millis"] >= 1500


def test_reindex_tree_and_cancel(cluster: RunningCluster) -> None:
    source = sim_index(cluster, "src-c", 100_000, shards=3)
    _, body = post(
        cluster,
        "/_reindex?wait_for_completion=false",
        {"source": {"index": "src-c", "size": 10_000}, "dest": {"index": "dest-c"}},
    )
    task_id = body["task"]
    names = {n.id: n.name for n in cluster.nodes}
    shard_nodes = {s["primary"] for s in source["shards"]}

    def batch_tree() -> list[dict[str, Any]]:
        tree = descendants(cluster, task_id)
        actions = {t["action"] for t in tree}
        wanted = {
            "indices:data/read/search[phase/query]",
            "indices:data/read/search[phase/query/scroll]",
        }
        return tree if actions & wanted else []

    tree = wait_until(batch_tree)
    coordinator = cluster.node("coordinator").id
    searches = [t for t in tree if t.get("parent_task_id") == task_id]
    assert searches and all(t["node"] == coordinator and t["type"] == "transport" for t in searches)
    shards = [t for t in tree if "[phase/query" in t["action"]]
    assert {names[t["node"]] for t in shards} <= shard_nodes and all(
        t["cancellable"] for t in shards
    )

    status, answer = cluster.post(f"/_tasks/{task_id}/_cancel?wait_for_completion=true")
    assert status == 200, answer
    assert descendants(cluster, task_id) == []
    done = get_task(cluster, task_id, wait_for_completion="true", timeout="30s")
    assert done["task"]["cancelled"] is True
    assert done["response"]["canceled"] == "by user request"
    assert done["response"]["created"] < 100_000
    assert done["task"]["status"]["canceled"] == "by user request"


def test_slices_and_rethrottle(cluster: RunningCluster) -> None:
    sim_index(cluster, "src-d", 2000, shards=2)
    _, body = post(
        cluster,
        "/src-d/_update_by_query?wait_for_completion=false&slices=auto&scroll_size=100"
        "&requests_per_second=200",
    )
    leader = body["task"]
    listed = wait_until(lambda: len(d := descendants(cluster, leader)) >= 3 and d)
    slices = [
        t
        for t in listed
        if t.get("parent_task_id") == leader and t["action"] == "indices:data/write/update/byquery"
    ]
    assert len(slices) == 2
    assert all(t["description"] == "update-by-query [src-d]" for t in slices)
    assert sorted(t["status"]["slice_id"] for t in slices) == [0, 1]
    assert all(t["status"]["requests_per_second"] == 100.0 for t in slices)
    top = next(t for t in listed if f"{t['node']}:{t['id']}" == leader)
    assert top["status"]["slices"] == [None, None]

    status, answer = cluster.post(f"/_update_by_query/{leader}/_rethrottle?requests_per_second=-1")
    assert status == 200, answer
    (entry,) = [t for n in answer["nodes"].values() for t in n["tasks"].values()]
    assert f"{entry['node']}:{entry['id']}" == leader
    assert entry["status"]["requests_per_second"] == -1.0  # the sum over the running slices
    for t in slices:
        status, got = cluster.get(f"/_tasks/{t['node']}:{t['id']}")
        if status == 200:  # still running (a finished slice stores nothing: 404)
            assert got["task"]["status"]["requests_per_second"] == -1.0
    done = get_task(cluster, leader, wait_for_completion="true", timeout="30s")
    response = done["response"]
    assert response["updated"] == 2000
    assert [s["slice_id"] for s in response["slices"]] == [0, 1]
    assert all(s["updated"] == 1000 for s in response["slices"])


def test_rethrottle_failures(cluster: RunningCluster) -> None:
    status, body = cluster.post("/_reindex/x:1/_rethrottle")
    assert status == 400
    assert body["error"]["reason"] == "requests_per_second is a required parameter"
    status, body = cluster.post("/_reindex/x:1/_rethrottle?requests_per_second=0")
    assert status == 400
    assert body["error"]["reason"] == (
        "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling."
    )
    node1 = cluster.node("node-1").id
    status, body = cluster.post(f"/_reindex/{node1}:99999/_rethrottle?requests_per_second=5")
    assert status == 200
    assert body["node_failures"][0]["caused_by"] == {
        "type": "resource_not_found_exception",
        "reason": f"task [{node1}:99999] is missing",
    }
    other = start(cluster, {"node": "node-1", "action": "indices:data/read/search"})
    status, body = cluster.post(f"/_reindex/{other}/_rethrottle?requests_per_second=5")
    assert body["node_failures"][0]["caused_by"]["reason"] == (
        f"task [{other}] doesn't support this operation"
    )
    cluster.post(f"/_tasks/{other}/_cancel")


def test_bulk_by_scroll_validation(cluster: RunningCluster) -> None:
    sim_index(cluster, "src-e", 10)
    cases = [
        ("/src-e/_delete_by_query", None, "Validation Failed: 1: query is missing;"),
        (
            "/src-e/_update_by_query?slices=0",
            None,
            '[slices] must be a positive integer or the string "auto", but was [0]',
        ),
        (
            "/src-e/_update_by_query?requests_per_second=abc",
            None,
            "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling.",
        ),
        (
            "/src-e/_update_by_query?max_docs=-5",
            None,
            "[max_docs] parameter cannot be negative, found [-5]",
        ),
        (
            "/_reindex",
            {"dest": {"index": "x"}},
            "Validation Failed: 1: use _all if you really want to copy from all existing indexes;",
        ),
    ]
    for path, body, reason in cases:
        status, answer = post(cluster, path, body)
        assert status == 400, (path, answer)
        assert answer["error"]["reason"] == reason
    status, answer = post(
        cluster, "/_reindex", {"source": {"index": "nope"}, "dest": {"index": "x"}}
    )
    assert status == 404 and answer["error"]["type"] == "index_not_found_exception"
    status, answer = post(
        cluster,
        "/_reindex?wait_for_completion=false",
        {"source": {"index": "nope"}, "dest": {"index": "x"}},
    )
    done = get_task(cluster, answer["task"], wait_for_completion="true")
    assert done["error"]["type"] == "index_not_found_exception"
    assert done["error"]["reason"] == "no such index [nope]"


def test_delete_by_query_response_and_docs(cluster: RunningCluster) -> None:
    sim_index(cluster, "src-f", 3000)
    status, body = post(cluster, "/src-f/_delete_by_query", {"query": {"match_all": {}}})
    assert status == 200, body
    assert "created" not in body and "updated" not in body
    assert body["deleted"] == 3000 and body["batches"] == 3
    assert index_docs(cluster, "src-f") == 0


def test_search_tree_and_cancel(cluster: RunningCluster) -> None:
    index = sim_index(cluster, "huge", 2_000_000_000, shards=2)
    answer: dict[str, Any] = {}

    def search() -> None:
        answer["reply"] = post(cluster, "/huge/_search", {"query": {"match_all": {}}})

    thread = threading.Thread(target=search)
    thread.start()
    try:
        listed = wait_until(
            lambda: (
                [t for t in tasks(cluster, actions="indices:data/read/search*") if t]
                and len(tasks(cluster, actions="indices:data/read/search*")) >= 3
                and tasks(cluster, actions="indices:data/read/search*")
            )
        )
        root = next(t for t in listed if t["action"] == "indices:data/read/search")
        root_id = f"{root['node']}:{root['id']}"
        assert root["node"] == cluster.node("coordinator").id and root["cancellable"]
        assert root["description"] == (
            'indices[huge], search_type[QUERY_THEN_FETCH], source[{"query":{"match_all":{}}}]'
        )
        shards = [t for t in listed if t.get("parent_task_id") == root_id]
        names = {n.id: n.name for n in cluster.nodes}
        assert sorted(names[t["node"]] for t in shards) == sorted(
            s["primary"] for s in index["shards"]
        )
        assert all(t["action"] == "indices:data/read/search[phase/query]" for t in shards)
        status, _ = cluster.post(f"/_tasks/{root_id}/_cancel")
        assert status == 200
    finally:
        thread.join(timeout=30)
    status, body = answer["reply"]
    assert status == 500
    assert body["error"]["type"] == "search_phase_execution_exception"
    assert body["error"]["reason"] == "all shards failed"
    assert body["error"]["caused_by"]["type"] == "task_cancelled_exception"
    assert not ids(tasks(cluster, actions="indices:data/read/search*"))


def test_search_response(cluster: RunningCluster) -> None:
    sim_index(cluster, "small", 3, shards=2)
    status, body = cluster.get("/small/_search")
    assert status == 200
    assert body["_shards"] == {"total": 2, "successful": 2, "skipped": 0, "failed": 0}
    assert body["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert body["hits"]["hits"] == []  # synthetic documents are counted, never hits
    status, body = cluster.get("/missing/_search")
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"


def test_bulk_and_index_lifecycle(cluster: RunningCluster) -> None:
    status, body = cluster.request(
        "PUT",
        "/books",
        body=b'{"settings":{"number_of_shards":2,"number_of_replicas":1}}',
        headers=JSON,
    )[:2]
    assert (status, body) == (
        200,
        {"acknowledged": True, "shards_acknowledged": True, "index": "books"},
    )
    status, body = cluster.request("PUT", "/books")[:2]
    assert status == 400 and body["error"]["type"] == "resource_already_exists_exception"
    status, body = cluster.request("PUT", "/Books")[:2]
    assert (
        status == 400 and body["error"]["reason"] == "Invalid index name [Books], must be lowercase"
    )
    ndjson = (
        b'{"index":{"_index":"books","_id":"1"}}\n{"t":"a"}\n'
        b'{"create":{"_index":"books"}}\n{"t":"b"}\n'
        b'{"delete":{"_index":"books","_id":"1"}}\n'
    )
    status, body = cluster.post(
        "/_bulk", body=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 200, body
    assert body["errors"] is False
    assert [next(iter(i)) for i in body["items"]] == ["index", "create", "delete"]
    assert [next(iter(i.values()))["result"] for i in body["items"]] == [
        "created",
        "created",
        "deleted",
    ]
    assert index_docs(cluster, "books") == 1
    status, body = cluster.post(
        "/_bulk", body=b"", headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 400 and body["error"]["reason"] == "Validation Failed: 1: no requests added;"
    status, body = cluster.request("DELETE", "/books")[:2]
    assert (status, body) == (200, {"acknowledged": True})
    status, body = cluster.request("DELETE", "/books")[:2]
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"


def test_opensearch_py_operations(cluster: RunningCluster) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[cluster.url])
    client.indices.create(index="py-src", body={"settings": {"number_of_shards": 2}})
    client.bulk(body=[{"index": {"_index": "py-src"}}, {"a": 1}] * 50, refresh=True)
    assert index_docs(cluster, "py-src") == 50
    hits = client.search(index="py-src", body={"query": {"match_all": {}}})
    assert hits["hits"]["total"]["value"] == 50
    started = client.reindex(
        body={"source": {"index": "py-src", "size": 10}, "dest": {"index": "py-dest"}},
        wait_for_completion=False,
        requests_per_second=20,
        refresh=True,  # the copies are real documents: searchable (by the delete) once refreshed
    )
    task_id = started["task"]
    rethrottled = client.reindex_rethrottle(task_id=task_id, requests_per_second=-1)
    (entry,) = [t for n in rethrottled["nodes"].values() for t in n["tasks"].values()]
    assert entry["status"]["requests_per_second"] == -1.0
    done = client.tasks.get(task_id=task_id, wait_for_completion=True)
    assert done["completed"] is True and done["response"]["created"] == 50
    deleted = client.delete_by_query(index="py-dest", body={"query": {"match_all": {}}})
    assert deleted["deleted"] == 50
    client.indices.delete(index="py-src")
