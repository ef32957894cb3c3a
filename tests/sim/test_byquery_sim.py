"""By-query operations on real documents on the sim engine: one process, virtual time — the same
counts as on real processes, throttling that takes virtual seconds, and one seed, one answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.engine.sim import SimEngine, run_sim

THREE = ClusterConfig.with_nodes(3, fault_detection=FaultDetection(enabled=False))


def run(seed: int) -> list[Any]:
    async def main(engine: SimEngine) -> list[Any]:
        async with engine.cluster(THREE) as (_cluster, client):
            await client.request(
                "PUT", "/src", {"settings": {"number_of_shards": 2, "refresh_interval": -1}}
            )
            for i in range(30):
                await client.request("PUT", f"/src/_doc/{i}", {"n": i, "odd": i % 2 == 1})
            await client.request("POST", "/src/_refresh")
            out: list[Any] = []
            started = await client.request(
                "POST",
                "/src/_update_by_query?slices=2&scroll_size=4&requests_per_second=4"
                "&wait_for_completion=false&refresh=true",
                {"query": {"term": {"odd": True}}, "script": "ctx._source.n *= 10"},
            )
            done = await client.request(
                "GET", f"/_tasks/{started.body['task']}?wait_for_completion=true&timeout=5m"
            )
            out.append(done.body["response"])
            reindexed = await client.request(
                "POST",
                "/_reindex?refresh=true",
                {
                    "source": {"index": "src", "query": {"range": {"n": {"gte": 100}}}},
                    "dest": {"index": "big"},
                    "script": {"source": "ctx._id = 'n' + ctx._source.n"},
                },
            )
            out.append(reindexed.body)
            count = await client.request("GET", "/big/_count")
            out.append(count.body["count"])
            return out

    result: list[Any] = run_sim(main, seed=seed)
    return result


@pytest.mark.timeout(60)
def test_a_sliced_throttled_update_and_a_scripted_reindex_on_the_sim_engine() -> None:
    ubq, reindex, count = run(11)
    assert (ubq["total"], ubq["updated"], ubq["version_conflicts"]) == (15, 15, 0)
    assert sum(s["updated"] for s in ubq["slices"]) == 15
    # 2 slices at 2 requests/s each, pages of 4: virtual seconds of throttling, not real ones
    assert ubq["throttled_millis"] >= 2000
    # 10*odd n >= 100 for the odd n from 11 to 29: 10 documents, ids n110 ... n290
    assert (reindex["total"], reindex["created"]) == (10, 10)
    assert count == 10


@pytest.mark.timeout(60)
def test_one_seed_one_answer() -> None:
    assert json.dumps(run(5), sort_keys=True) == json.dumps(run(5), sort_keys=True)
