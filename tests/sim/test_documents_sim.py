"""Documents on the sim engine: the same store, with the scheduled refresh on virtual time — a
write becomes visible to searches one `refresh_interval` (1 s, virtual) after the last refresh,
`refresh=wait_for` answers when that refresh happens, and one seed gives the same auto ids."""

from __future__ import annotations

from typing import Any

import trio

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.engine.sim import AsgiClient, SimEngine, run_sim
from simnode.history import Recorder

TWO = ClusterConfig.with_nodes(2, fault_detection=FaultDetection(enabled=False))


def sim(fn: Any, *, seed: int = 11) -> Any:
    async def main(engine: SimEngine) -> Any:
        async with engine.cluster(TWO) as (cluster, client):
            return await fn(cluster, client)

    return run_sim(main, seed=seed)


def test_near_real_time_on_virtual_time() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> dict[str, Any]:
        made = await client.request("PUT", "/nrt/_doc/1", {"a": 1})
        assert made.status == 201, made.body
        created_at = cluster.indices.docs("nrt").last_refresh
        before = await client.request("GET", "/nrt/_count")
        assert before.body["count"] == 0  # not refreshed yet
        got = await client.request("GET", "/nrt/_doc/1")
        assert got.body["found"] is True  # get is realtime
        await trio.sleep_until(created_at + 1.0)  # the scheduled refresh is due
        after = await client.request("GET", "/nrt/_search")
        assert [h["_id"] for h in after.body["hits"]["hits"]] == ["1"]
        waited = await client.request("PUT", "/nrt/_doc/2?refresh=wait_for", {"a": 2})
        assert waited.status == 201 and "forced_refresh" not in waited.body
        assert 0.9 < waited.elapsed <= 1.01  # until the next refresh, a virtual second later
        counted = await client.request("POST", "/nrt/_count", {"query": {"term": {"a": 2}}})
        assert counted.body["count"] == 1
        auto = await client.request("POST", "/nrt/_doc", {"a": 3})
        return {"id": auto.body["_id"]}

    first = sim(fn)
    assert len(first["id"]) == 20
    assert sim(fn) == first  # the same seed, the same auto id


def test_tasks_index_on_the_sim_engine() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        await client.request("POST", "/_sim/indices", {"index": "src", "docs": 5, "shards": 1})
        started = await client.request(
            "POST",
            "/_reindex?wait_for_completion=false",
            {"source": {"index": "src"}, "dest": {"index": "dst"}},
        )
        task_id = started.body["task"]
        done = await client.request("GET", f"/_tasks/{task_id}?wait_for_completion=true")
        assert done.body["completed"] is True
        doc = await client.request("GET", f"/.tasks/_doc/{task_id}")
        assert doc.status == 200 and doc.body["_source"]["response"]["created"] == 5
        gone = await client.request("DELETE", "/.tasks")
        assert gone.status == 200
        missing = await client.request("GET", f"/_tasks/{task_id}")
        assert missing.status == 404
        assert missing.body["error"]["caused_by"]["type"] == "index_not_found_exception"

    sim(fn)


def test_document_operations_keep_their_task_trees() -> None:
    """A single write is `indices:data/write/index` → `bulk[s]` → `bulk[s][p]` on the primary's
    node → `bulk[s][r]` on the replica's; a search has its query and fetch phases (read from the
    history of registered tasks)."""

    async def main(engine: SimEngine) -> list[tuple[str, str]]:
        t0 = trio.current_time()
        recorder = Recorder(lambda: trio.current_time() - t0)
        async with engine.cluster(TWO, recorder=recorder) as (cluster, client):
            await client.request("PUT", "/trees/_doc/1?refresh=true", {"a": 1})
            found = await client.request("GET", "/trees/_search")
            assert [h["_id"] for h in found.body["hits"]["hits"]] == ["1"]
            names = {n.id: n.name for n in cluster.state.nodes}
            index = cluster.indices.get("trees")
            primary, replica = names[index.shards[0].primary], names[index.shards[0].replicas[0]]
        actions = [
            (names.get(e["node"], e["node"]), e["action"])
            for e in recorder.events
            if e["type"] == "task_registered" and e["action"].startswith("indices:data/")
        ]
        write = "indices:data/write/bulk"
        assert actions[:4] == [
            ("coordinator", "indices:data/write/index"),
            ("coordinator", f"{write}[s]"),
            (primary, f"{write}[s][p]"),
            (replica, f"{write}[s][r]"),
        ]
        assert ("coordinator", "indices:data/read/search") in actions
        assert (primary, "indices:data/read/search[phase/query]") in actions
        assert (primary, "indices:data/read/search[phase/fetch/id]") in actions
        return actions

    run_sim(main, seed=5)
