"""The pure core of ML Commons tasks: the state table, documents, rules, search and settings."""

from __future__ import annotations

import json
import random
from itertools import product

import pytest

from coordinator import ml_state as m
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import IllegalArgumentError, OpenSearchError
from tests.spec_schema import validate


def task(**kw: object) -> m.MLTask:
    base: dict[str, object] = {
        "task_id": "t1",
        "task_type": "DEPLOY_MODEL",
        "state": m.CREATED,
        "create_time": 1000,
        "last_update_time": 1000,
        "is_async": True,
    }
    base.update(kw)
    return m.MLTask(**base)  # type: ignore[arg-type]


# -- the state machine ------------------------------------------------------------------------------


@pytest.mark.parametrize(("edge", "target"), sorted(m.TRANSITIONS.items()))
def test_every_transition_of_the_table(edge: tuple[str, str], target: str) -> None:
    state, event = edge
    moved = task(state=state).moved(event, 2000)
    assert moved.state == target
    assert moved.last_update_time == 2000
    assert moved.create_time == 1000
    validate(moved.source(), "Task")


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s, e in product(m.TASK_STATES, m.EVENTS) if (s, e) not in m.TRANSITIONS],
)
def test_every_other_pair_is_refused(state: str, event: str) -> None:
    with pytest.raises(m.IllegalTransition):
        m.next_state(state, event)


def test_done_states_have_no_way_out() -> None:
    for (state, _event), _target in m.TRANSITIONS.items():
        assert not m.is_done(state)
    assert {s for s in m.TASK_STATES if m.is_done(s)} == {
        "COMPLETED",
        "COMPLETED_WITH_ERROR",
        "FAILED",
        "CANCELLED",
        "EXPIRED",
    }


def test_every_state_is_reachable_from_created() -> None:
    seen, frontier = {m.CREATED}, [m.CREATED]
    while frontier:
        state = frontier.pop()
        for (src, _e), dst in m.TRANSITIONS.items():
            if src == state and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(m.TASK_STATES)


# -- documents --------------------------------------------------------------------------------------


def test_task_source_order_and_presence() -> None:
    t = task(
        model_id="mdl",
        function_name="TEXT_EMBEDDING",
        worker_node=("n1", "n2"),
        error='{"n1":"boom"}',
        state=m.COMPLETED_WITH_ERROR,
    )
    assert list(t.source()) == [
        "model_id",
        "task_type",
        "function_name",
        "state",
        "worker_node",
        "create_time",
        "last_update_time",
        "error",
        "is_async",
    ]
    assert t.source()["worker_node"] == ["n1", "n2"]
    assert "task_id" not in t.source()
    minimal = task(is_async=False).source()
    assert minimal == {
        "task_type": "DEPLOY_MODEL",
        "state": "CREATED",
        "create_time": 1000,
        "last_update_time": 1000,
        "is_async": False,
    }


def test_a_none_field_is_dropped_by_an_update() -> None:
    t = task(state=m.RUNNING).moved(m.WORKERS_UNREACHABLE, 5, error="x")
    assert t.source()["error"] == "x"
    back = t.moved(m.WORKERS_REACHABLE, 6, error=None)
    assert back.state == m.RUNNING and "error" not in back.source()


def test_model_source_order() -> None:
    model = m.MLModel(
        model_id="id",
        name="n",
        algorithm="TEXT_EMBEDDING",
        model_version="1",
        created_time=1,
        last_updated_time=2,
        model_group_id="g",
        model_format="TORCH_SCRIPT",
        model_state="DEPLOYED",
        total_chunks=3,
        planning_worker_node_count=2,
        current_worker_node_count=2,
        planning_worker_nodes=("a", "b"),
        deploy_to_all_nodes=True,
    )
    assert list(model.source()) == [
        "name",
        "model_group_id",
        "algorithm",
        "model_version",
        "model_format",
        "model_state",
        "created_time",
        "last_updated_time",
        "total_chunks",
        "planning_worker_node_count",
        "current_worker_node_count",
        "planning_worker_nodes",
        "deploy_to_all_nodes",
        "is_hidden",
    ]
    validate(model.source(), "Model")


def test_doc_ids_are_20_url_safe_characters() -> None:
    rng = random.Random(1)
    ids = {m.doc_id(rng) for _ in range(200)}
    assert len(ids) == 200
    for i in ids:
        assert len(i) == 20
        assert set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_function_name() -> None:
    assert m.function_name("kmeans") == "KMEANS"
    with pytest.raises(IllegalArgumentError, match=r"^Wrong function name$"):
        m.function_name("nope")


# -- rules ------------------------------------------------------------------------------------------


def test_deploy_outcome() -> None:
    assert m.deploy_outcome(["a", "b"], {}) == (m.SUCCEEDED, None)
    event, error = m.deploy_outcome(["a", "b", "c"], {"b": "gone"})
    assert event == m.PARTLY_FAILED and json.loads(error or "") == {"b": "gone"}
    assert error == '{"b":"gone"}'
    event, error = m.deploy_outcome(["a", "b"], {"b": "x", "a": "y"})
    assert event == m.FAILED_EVENT and error == '{"a":"y","b":"x"}'
    assert m.deploy_model_state(["a"], {}) == "DEPLOYED"
    assert m.deploy_model_state(["a", "b"], {"a": "x"}) == "PARTIALLY_DEPLOYED"
    assert m.deploy_model_state(["a"], {"a": "x"}) == "DEPLOY_FAILED"


def test_timed_out() -> None:
    t = task(state=m.RUNNING, last_update_time=10_000)
    assert not m.timed_out(t, 10_000 + 600_000, 600)
    assert m.timed_out(t, 10_000 + 600_001, 600)
    assert not m.timed_out(task(state=m.COMPLETED, last_update_time=0), 10**9, 1)
    created = task(state=m.CREATED, last_update_time=0)
    assert m.timed_out(created, 5000, 1)
    assert not m.timed_out(created, 5000, 1, frozenset({"t1"}))
    assert m.timeout_error(600) == "timeout after 600 seconds"


def test_reachability_rule() -> None:
    since = {"a": 100.0, "b": 104.0}
    assert m.reachability_event(m.RUNNING, ["a", "b"], since, 105.0, 2.0) is None
    assert m.reachability_event(m.RUNNING, ["a", "b"], since, 106.0, 2.0) == m.WORKERS_UNREACHABLE
    assert m.reachability_event(m.RUNNING, ["a", "c"], since, 500.0, 2.0) is None
    assert m.reachability_event(m.UNREACHABLE, ["a", "c"], since, 500.0, 2.0) == (
        m.WORKERS_REACHABLE
    )
    assert m.reachability_event(m.UNREACHABLE, ["a"], since, 500.0, 2.0) is None
    assert m.reachability_event(m.RUNNING, [], since, 500.0, 2.0) is None
    assert m.reachability_event(m.CREATED, ["a"], since, 500.0, 2.0) is None


def test_eligible_nodes() -> None:
    def node(name: str, roles: tuple[str, ...]) -> DiscoveryNode:
        return DiscoveryNode(id=name, name=name, host="h", ip="h", port=1, roles=roles)

    state = ClusterState(
        nodes=(
            node("coord", ()),
            node("d1", ("data",)),
            node("ml1", ("ml",)),
            node("i", ("ingest",)),
        )
    )
    assert m.eligible_nodes(state, "TEXT_EMBEDDING", False) == ["d1", "ml1"]
    assert m.eligible_nodes(state, "TEXT_EMBEDDING", True) == ["ml1"]
    assert m.eligible_nodes(state, "REMOTE", True) == ["d1", "ml1"]


def test_pretrained() -> None:
    name = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
    assert m.pretrained_function(name, "1.0.1") == "TEXT_EMBEDDING"
    assert m.pretrained_function(name, "9.9.9") is None
    assert m.pretrained_function("my/model", "1.0.1") is None


# -- search -----------------------------------------------------------------------------------------


def docs() -> list[m.StoredDoc]:
    rows = [
        ("a", {"task_type": "DEPLOY_MODEL", "state": "COMPLETED", "model_id": "m1",
               "worker_node": ["n1", "n2"], "create_time": 30, "is_async": True}),
        ("b", {"task_type": "REGISTER_MODEL", "state": "FAILED", "function_name": "TEXT_EMBEDDING",
               "create_time": 10, "error": "This model is not in the pre-trained model list",
               "is_async": True}),
        ("c", {"task_type": "TRAINING", "state": "RUNNING", "function_name": "KMEANS",
               "worker_node": ["n2"], "create_time": 20, "is_async": True}),
    ]  # fmt: skip
    return [m.StoredDoc(i, s, 1, n) for n, (i, s) in enumerate(rows)]


def ids(body: object, *, check: bool = True) -> list[str]:
    out = m.run_search(m.ML_TASK_INDEX, docs(), m.parse_search(body))
    if check:  # the spec types sort values as numbers; a keyword sort gives strings, as OpenSearch
        validate(out, "SearchTasksResponse")
    return [h["_id"] for h in out["hits"]["hits"]]


def test_search_queries() -> None:
    assert ids(None) == ["a", "b", "c"]
    assert ids({"query": {"term": {"state": "FAILED"}}}) == ["b"]
    assert ids({"query": {"term": {"state": {"value": "RUNNING"}}}}) == ["c"]
    assert ids({"query": {"term": {"state": "failed"}}}) == []  # keyword: exact
    assert ids({"query": {"match": {"task_type": "TRAINING"}}}) == ["c"]
    assert ids({"query": {"terms": {"state": ["COMPLETED", "RUNNING"]}}}) == ["a", "c"]
    assert ids({"query": {"term": {"worker_node": "n2"}}}) == ["a", "c"]
    assert ids({"query": {"match": {"error": "pre-trained LIST"}}}) == ["b"]
    assert ids({"query": {"range": {"create_time": {"gte": 15, "lt": 30}}}}) == ["c"]
    assert ids({"query": {"exists": {"field": "function_name"}}}) == ["b", "c"]
    assert ids({"query": {"ids": {"values": ["c", "a"]}}}) == ["a", "c"]
    assert ids({"query": {"term": {"is_async": True}}}) == ["a", "b", "c"]
    both = {"bool": {"must": [{"term": {"function_name": "KMEANS"}}], "must_not": []}}
    assert ids({"query": both}) == ["c"]
    assert ids({"query": {"bool": {"should": [{"term": {"state": "FAILED"}},
                                              {"term": {"model_id": "m1"}}]}}}) == ["a", "b"]  # fmt: skip
    assert ids({"query": {"bool": {"filter": {"term": {"state": "RUNNING"}}}}}) == ["c"]
    assert ids({"query": {"bool": {"must_not": {"term": {"state": "RUNNING"}}}}}) == ["a", "b"]


def test_search_sort_size_from_and_hit_shape() -> None:
    assert ids({"sort": [{"create_time": {"order": "desc"}}]}) == ["a", "c", "b"]
    assert ids({"sort": [{"create_time": "asc"}]}) == ["b", "c", "a"]
    assert ids({"sort": "create_time", "size": 2, "from": 1}) == ["c", "a"]
    assert ids({"sort": [{"function_name": "asc"}]}, check=False) == ["c", "b", "a"]  # missing last
    out = m.run_search(m.ML_TASK_INDEX, docs(), m.parse_search({"sort": ["create_time"]}))
    hit = out["hits"]["hits"][0]
    assert list(hit) == [
        "_index", "_id", "_version", "_seq_no", "_primary_term", "_score", "_source", "sort",
    ]  # fmt: skip
    assert hit["_score"] is None and hit["sort"] == [10]
    assert out["hits"]["max_score"] is None
    plain = m.run_search(m.ML_TASK_INDEX, docs(), m.parse_search({}))
    assert plain["hits"]["max_score"] == 1.0 and "sort" not in plain["hits"]["hits"][0]
    assert plain["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert list(plain) == ["took", "timed_out", "_shards", "hits"]
    filtered = m.run_search(
        m.ML_TASK_INDEX, docs(), m.parse_search({"query": {"bool": {"filter": {"match_all": {}}}}})
    )
    assert filtered["hits"]["hits"][0]["_score"] == 0.0
    empty = m.run_search(m.ML_TASK_INDEX, [], m.parse_search({}))
    assert empty["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        ({"query": {"wildcard": {"state": "R*"}}}, "parsing_exception", "unknown query [wildcard]"),
        ({"sort": [{"nope": "asc"}]}, "query_shard_exception",
         "No mapping found for [nope] in order to sort on"),
        ({"sort": [{"create_time": "up"}]}, "illegal_argument_exception", "Unknown SortOrder [up]"),
        ({"size": -1}, "illegal_argument_exception",
         "[size] parameter cannot be negative, found [-1]"),
        ({"aggs": {}}, "parsing_exception", "Unknown key for a START_OBJECT in [aggs]."),
    ],
)  # fmt: skip
def test_search_errors(body: object, kind: str, reason: str) -> None:
    with pytest.raises(OpenSearchError) as e:
        m.parse_search(body)
    assert (e.value.type, e.value.reason) == (kind, reason)
    assert e.value.status == 400
