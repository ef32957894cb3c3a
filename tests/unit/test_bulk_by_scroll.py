"""The pure core of bulk-by-scroll tasks, of operation planning and of `/_sim/tasks` bodies."""

from __future__ import annotations

import json
import math

import pytest

from coordinator.indices import Indices, Timing
from coordinator.ops import (
    BulkByScrollRequest,
    check_reindex_body,
    parse_bulk,
    plan_bulk,
    plan_bulk_by_scroll,
)
from coordinator.simspec import parse_sim_request
from simnode import bulk_by_scroll as bbs
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    IndexNotFoundError,
    InvalidIndexNameError,
    ParseError,
    ResourceAlreadyExistsError,
    TaskCancelledError,
)

SEC = 10**9


def test_status_fields_in_opensearch_order() -> None:
    status = bbs.Status(total=10, created=3, batches=1, reason_cancelled="by user request")
    assert list(status.xcontent()) == [
        "total", "updated", "created", "deleted", "batches", "version_conflicts", "noops",
        "retries", "throttled_millis", "requests_per_second", "canceled", "throttled_until_millis",
    ]  # fmt: skip
    assert status.xcontent()["requests_per_second"] == -1.0
    shown = status.xcontent(include_created=False, include_updated=False)
    assert "created" not in shown and "updated" not in shown


def test_worker_throttle_and_rethrottle() -> None:
    worker = bbs.WorkerState(kind="reindex", total=3000, requests_per_second=500.0)
    worker.count_batch(1000)
    assert worker.start_sleep(1000, now_nanos=0) == 2 * SEC
    assert worker.status(SEC // 2, None).throttled_until_nanos == 3 * SEC // 2
    worker.rethrottle(250.0, SEC // 2)  # slower: the current wait stays
    assert worker.sleep_until == 2 * SEC
    worker.rethrottle(
        1000.0, SEC
    )  # faster: 1 s left at 250/s... rescaled from the 500/s it was set at
    assert worker.sleep_until == SEC + SEC // 2
    worker.end_sleep()
    assert worker.throttled_nanos == SEC // 2
    assert worker.created == 1000 and worker.remaining == 2000
    worker.rethrottle(math.inf, SEC)
    assert worker.status(SEC, None).requests_per_second == math.inf


def test_leader_merges_finished_slices() -> None:
    leader = bbs.LeaderState(3)
    leader.results[1] = bbs.Status(
        total=5, updated=5, batches=2, requests_per_second=10.0, slice_id=1
    )
    leader.results[2] = TaskCancelledError("cancelled task with reason: by user request")
    merged = leader.status("by user request").xcontent()
    assert merged["total"] == 5 and merged["requests_per_second"] == 10.0
    assert merged["canceled"] == "by user request"
    assert merged["slices"][0] is None and merged["slices"][1]["slice_id"] == 1
    assert merged["slices"][2]["type"] == "task_cancelled_exception"
    assert bbs.auto_slices([5, 3]) == 3 and bbs.auto_slices([50]) == 20


def test_index_model() -> None:
    indices = Indices()
    index = indices.create("logs", ["a", "b", "c"], shards=3, replicas=1, docs=10)
    assert sorted(s.primary for s in index.shards) == ["a", "b", "c"]
    assert all(s.primary not in s.replicas for s in index.shards)
    assert [index.shard_docs(i) for i in range(3)] == [4, 3, 3]
    with pytest.raises(ResourceAlreadyExistsError):
        indices.create("logs", ["a"])
    with pytest.raises(InvalidIndexNameError, match="must be lowercase"):
        indices.create("Logs", ["a"])
    with pytest.raises(IndexNotFoundError, match=r"no such index \[nope\]"):
        indices.resolve("logs,nope")
    assert [i.name for i in indices.resolve("lo*")] == ["logs"]


def test_bulk_by_scroll_plan() -> None:
    indices = Indices()
    src = indices.create("src", ["a", "b"], shards=4, docs=1000)
    req = BulkByScrollRequest(kind="reindex", sources=["src"], dest="dst", slices=0, max_docs=100)
    spec = plan_bulk_by_scroll(req, [src], indices.create("dst", ["a"]), Timing())
    assert spec.description == "reindex from [src] to [dst]"
    assert spec.bulk_by_scroll.total == 100 and spec.bulk_by_scroll.slices == 4
    assert list(spec.bulk_by_scroll.bulk_nodes) == ["a"] and spec.store_result is False
    with pytest.raises(ActionRequestValidationError, match="use _all if you really want"):
        BulkByScrollRequest(kind="reindex", sources=[], dest="x").validate()


def test_bulk_parsing_and_plan() -> None:
    with pytest.raises(ActionRequestValidationError, match="no requests added"):
        parse_bulk(b"\n", None)
    with pytest.raises(IllegalArgumentError, match="but found \\[upsert\\]"):
        parse_bulk(b'{"upsert":{}}\n', "i")
    items = parse_bulk(
        b'{"index":{"_id":"1","if_seq_no":3}}\n{"a":1}\n{"delete":{"_id":"1"}}\n', "i"
    )
    assert [(i.op, i.id, i.meta, i.source) for i in items] == [
        ("index", "1", {"if_seq_no": 3}, {"a": 1}),
        ("delete", "1", {}, None),
    ]
    indices = Indices()
    indices.create("i", ["a", "b"], shards=1, replicas=1)
    spec = plan_bulk(items, indices, Timing())
    assert spec.description == "requests[2], indices[i]"
    (shard,) = spec.children
    assert shard.task.description == "requests[2], index[i][0]"
    assert shard.task.action == "indices:data/write/bulk[s]" and shard.local_client
    (primary,) = shard.task.children
    assert primary.task.action == "indices:data/write/bulk[s][p]"
    assert [c.task.action for c in primary.task.children] == ["indices:data/write/bulk[s][r]"]


def test_sim_request_parsing() -> None:
    state = ClusterState(nodes=(DiscoveryNode("c", "coordinator", roles=()), DiscoveryNode("n1", "node-1"), DiscoveryNode("n2", "node-2")))  # fmt: skip
    sim = parse_sim_request(
        {"node": "node-1", "duration": "2s", "children": [{"nodes": "data:true", "count": 2}]},
        state,
        "c",
        (("X-Opaque-Id", "x"),),
    )
    assert sim.node_id == "n1" and sim.spec.duration_millis == 2000
    assert [c.node_id for c in sim.spec.children] == ["n1", "n1", "n2", "n2"]
    assert sim.spec.children[0].task.duration_millis == -1  # until cancelled
    with pytest.raises(IllegalArgumentError, match="unknown field \\[colour\\]"):
        parse_sim_request({"colour": 1}, state, "c", ())
    with pytest.raises(IllegalArgumentError, match="must name exactly one node"):
        parse_sim_request({"node": "node-*"}, state, "c", ())
    with pytest.raises(IllegalArgumentError, match="on_cancel"):
        parse_sim_request({"on_cancel": "later"}, state, "c", ())


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        ("borked", ParseError, "failed to parse [borked]"),  # the `d` of days, not a number
        ("1.5s", ParseError, "failed to parse [1.5s], fractional time values are not supported"),
        (
            "-5s",
            IllegalArgumentError,
            "failed to parse setting [socket_timeout] with value [-5s] as a time value: "
            "negative durations are not supported",
        ),
    ],
)
def test_a_remote_timeout_is_read_with_timevalues_grammar(
    value: str, error: type[Exception], reason: str
) -> None:
    """`source.remote.socket_timeout` is `TimeValue.parseTimeValue`'s (one grammar with the REST
    parameters'); a number it cannot read is the body parser's `parse_exception`."""
    body = {"source": {"index": "a", "remote": {"host": "http://h:9200", "socket_timeout": value}}}
    with pytest.raises(error) as e:
        check_reindex_body(body, json.dumps(body).encode(), BulkByScrollRequest("reindex", ["a"]))
    assert type(e.value) is error and e.value.reason == reason  # type: ignore[attr-defined]
