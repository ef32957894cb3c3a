"""ML Commons over HTTP against real node processes: the ML task store, every operation that creates
tasks, the states they go through, `_tasks` visibility, and opensearch-py's ML client."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator

import pytest
from opensearchpy import NotFoundError, OpenSearch, TransportError

from tests.harness import RunningCluster, running_cluster
from tests.ml_util import (
    MINILM,
    deploy,
    get_task,
    register,
    registered_model,
    send,
    settings,
    tasks_by_action,
    wait_for,
    wait_state,
)
from tests.spec_schema import validate

ML = "/_plugins/_ml"
CIRCUIT = "Memory Circuit Breaker is open, please check your resources!"
ID = re.compile(r"^[A-Za-z0-9_-]{20}$")
BASELINE = {
    "plugins__ml_commons__sync_up_job_interval_in_seconds": 1,
    "tasksim__ml__register_seconds": 0.3,
    "tasksim__ml__deploy_seconds": 0.5,
    "tasksim__ml__train_seconds": 0.3,
    "tasksim__ml__deploy_fail_nodes": None,
    "plugins__ml_commons__ml_task_timeout_in_seconds": None,
    "plugins__ml_commons__allow_custom_deployment_plan": None,
}


@pytest.fixture(autouse=True)
def baseline(cluster: RunningCluster) -> Iterator[None]:
    settings(cluster, **BASELINE)
    yield
    settings(cluster, **BASELINE)


@pytest.fixture(scope="module")
def client(cluster: RunningCluster) -> OpenSearch:
    return OpenSearch(hosts=[{"host": "127.0.0.1", "port": cluster.port}], timeout=30)


def workers(cluster: RunningCluster) -> list[str]:
    return [cluster.node(f"node-{i}").id for i in (1, 2, 3)]


# -- before any task -------------------------------------------------------------------------------


def test_before_any_task_the_index_does_not_exist() -> None:
    # A cluster of its own: on the module's, any other test may have created ML tasks already.
    with running_cluster(nodes=1, seed=72) as cluster:
        check_no_task_index(cluster)


def check_no_task_index(cluster: RunningCluster) -> None:
    status, body = send(cluster, "POST", f"{ML}/tasks/_search", {"query": {"match_all": {}}})
    assert status == 404
    assert body["error"]["type"] == "index_not_found_exception"
    assert body["error"]["reason"] == "no such index [.plugins-ml-task]"
    assert body["error"]["index"] == ".plugins-ml-task"
    status, body = cluster.get(f"{ML}/tasks/nope")
    assert (status, body) == (
        404,
        {
            "error": {
                "root_cause": [{"type": "status_exception", "reason": "Failed to find task"}],
                "type": "status_exception",
                "reason": "Failed to find task",
            },
            "status": 404,
        },
    )
    status, body = send(cluster, "DELETE", f"{ML}/tasks/nope")
    assert status == 404
    assert body["error"]["reason"] == "Failed to find task"
    assert body["error"]["caused_by"]["type"] == "index_not_found_exception"
    # The ML requests themselves are transport tasks of the coordinating node.
    assert body["error"]["root_cause"][0]["type"] == "index_not_found_exception"


# -- settings ---------------------------------------------------------------------------------------


def test_cluster_settings_for_ml(cluster: RunningCluster) -> None:
    status, body = send(
        cluster,
        "PUT",
        "/_cluster/settings",
        {"persistent": {"plugins": {"ml_commons": {"ml_task_timeout_in_seconds": 900}}}},
    )
    assert (status, body) == (
        200,
        {
            "acknowledged": True,
            "persistent": {"plugins": {"ml_commons": {"ml_task_timeout_in_seconds": "900"}}},
            "transient": {},
        },
    )
    status, body = cluster.get("/_cluster/settings?flat_settings=true")
    assert status == 200
    assert body["persistent"] == {"plugins.ml_commons.ml_task_timeout_in_seconds": "900"}
    assert "tasksim.ml.deploy_seconds" in body["transient"]
    status, body = send(cluster, "PUT", "/_cluster/settings", {"persistent": {"nope.setting": 1}})
    assert status == 400
    assert body["error"]["reason"] == "persistent setting [nope.setting], not recognized"
    status, body = send(cluster, "PUT", "/_cluster/settings", {})
    assert status == 400
    assert body["error"]["reason"] == "Validation Failed: 1: no settings to update;"
    status, body = send(
        cluster,
        "PUT",
        "/_cluster/settings",
        {"persistent": {"plugins.ml_commons.ml_task_timeout_in_seconds": None}},
    )
    assert status == 200
    _, body = cluster.get("/_cluster/settings?include_defaults=true&flat_settings=true")
    assert body["persistent"] == {}
    assert body["defaults"]["plugins.ml_commons.ml_task_timeout_in_seconds"] == "600"


# -- register ---------------------------------------------------------------------------------------


def test_register_is_created_then_completed(cluster: RunningCluster) -> None:
    settings(cluster, tasksim__ml__register_seconds=4)
    status, body = send(cluster, "POST", f"{ML}/models/_register", MINILM)
    assert status == 200
    assert list(body) == ["task_id", "status"]
    assert body["status"] == "CREATED" and ID.match(body["task_id"])
    task_id = body["task_id"]
    task = get_task(cluster, task_id)
    assert list(task) == [
        "task_type",
        "function_name",
        "state",
        "worker_node",
        "create_time",
        "last_update_time",
        "is_async",
    ]
    assert task["task_type"] == "REGISTER_MODEL" and task["state"] == "CREATED"
    assert task["function_name"] == "TEXT_EMBEDDING" and task["is_async"] is True
    assert len(task["worker_node"]) == 1 and task["worker_node"][0] in workers(cluster)
    # The download is a transport task on the worker, child of the coordinating register task.
    forward = wait_for(
        lambda: tasks_by_action(cluster, "cluster:admin/opensearch/ml/forward"), 10, "forward"
    )
    assert [t["node"] for t in forward] == task["worker_node"]
    assert forward[0]["type"] == "transport"
    assert forward[0]["parent_task_id"].startswith(cluster.node("coordinator").id + ":")
    done = wait_state(cluster, task_id, "COMPLETED", "FAILED")
    assert done["state"] == "COMPLETED"
    assert ID.match(done["model_id"]) and next(iter(done)) == "model_id"
    assert done["create_time"] == task["create_time"]
    assert done["last_update_time"] >= task["last_update_time"]
    # The indexed document was updated in place: `_search` shows `model_id` appended at the end,
    # GET renders the task in MLTask's order.
    _, found = send(
        cluster, "POST", f"{ML}/tasks/_search", {"query": {"ids": {"values": [task_id]}}}
    )
    (hit,) = found["hits"]["hits"]
    assert list(hit["_source"]) == [*list(task), "model_id"]
    assert hit["_version"] == 2
    status, model = cluster.get(f"{ML}/models/{done['model_id']}")
    assert status == 200
    validate(model, "Model")
    assert model["name"] == MINILM["name"]
    assert model["algorithm"] == "TEXT_EMBEDDING"
    assert model["model_state"] == "REGISTERED"
    assert model["model_format"] == "TORCH_SCRIPT"
    assert model["total_chunks"] >= 1 and len(model["model_content_hash_value"]) == 64


def test_register_of_an_unknown_pretrained_model_fails(cluster: RunningCluster) -> None:
    task_id = register(cluster, {**MINILM, "name": "huggingface/no-such/model"})
    task = wait_state(cluster, task_id, "FAILED", "COMPLETED")
    assert task["state"] == "FAILED"
    assert task["error"] == (
        "This model is not in the pre-trained model list, please check your parameters."
    )
    assert "model_id" not in task


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"version": "1.0.1", "model_format": "TORCH_SCRIPT"}, "model name is null"),
        ({"name": "x", "version": "1"}, "model format is null"),
        ({**MINILM, "function_name": "nope"}, "Wrong function name"),
    ],
)
def test_register_validation(cluster: RunningCluster, body: dict[str, str], reason: str) -> None:
    status, answer = send(cluster, "POST", f"{ML}/models/_register", body)
    assert status == 400
    assert answer["error"]["type"] == "illegal_argument_exception"
    assert answer["error"]["reason"] == reason


def test_get_model_404(cluster: RunningCluster) -> None:
    status, body = cluster.get(f"{ML}/models/nope")
    assert status == 404
    assert body["error"]["type"] == "status_exception"
    assert body["error"]["reason"] == "Failed to find model"


# -- deploy -----------------------------------------------------------------------------------------


def test_deploy_runs_on_every_worker_and_completes(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    # Long enough that the checks made while it runs (tasks, model state) fit in it on a loaded
    # machine: with 4 s, a loaded run found the model DEPLOYED before it looked.
    settings(cluster, tasksim__ml__deploy_seconds=15)
    task_id = deploy(cluster, model_id)
    running = wait_state(cluster, task_id, "RUNNING")
    assert running["worker_node"] == workers(cluster)
    assert running["model_id"] == model_id and running["task_type"] == "DEPLOY_MODEL"
    # In _tasks: deploy_model_on_nodes on the coordinating node, one [n] child per worker.
    parents = wait_for(
        lambda: (
            p
            if len(
                p := tasks_by_action(cluster, "cluster:admin/opensearch/ml/deploy_model_on_nodes")
            )
            == 4
            else None
        ),
        10,
        "the deploy task and its three [n] children",
    )
    top = [t for t in parents if not t["action"].endswith("[n]")]
    kids = [t for t in parents if t["action"].endswith("[n]")]
    assert [t["node"] for t in top] == [cluster.node("coordinator").id]
    parent_id = f"{top[0]['node']}:{top[0]['id']}"
    assert sorted(t["node"] for t in kids) == sorted(workers(cluster))
    assert {t["parent_task_id"] for t in kids} == {parent_id}
    assert {t["type"] for t in kids} == {"transport"}
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "DEPLOYING"
    assert model["planning_worker_nodes"] == workers(cluster)
    done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED", timeout=60)
    assert done["state"] == "COMPLETED" and "error" not in done
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "DEPLOYED"
    assert model["current_worker_node_count"] == 3
    assert model["deploy_to_all_nodes"] is True
    assert tasks_by_action(cluster, "cluster:admin/opensearch/ml/deploy_model_on_nodes") == []


def test_deploy_with_a_failing_worker_completes_with_error(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    settings(cluster, tasksim__ml__deploy_fail_nodes="node-2")
    task_id = deploy(cluster, model_id)
    done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED")
    assert done["state"] == "COMPLETED_WITH_ERROR"
    assert json.loads(done["error"]) == {cluster.node("node-2").id: CIRCUIT}
    assert done["error"] == json.dumps({cluster.node("node-2").id: CIRCUIT}, separators=(",", ":"))
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "PARTIALLY_DEPLOYED"
    assert model["current_worker_node_count"] == 2


def test_deploy_failing_everywhere_fails(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    settings(cluster, tasksim__ml__deploy_fail_nodes="node-1,node-2,node-3")
    task_id = deploy(cluster, model_id)
    done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED")
    assert done["state"] == "FAILED"
    assert sorted(json.loads(done["error"])) == sorted(workers(cluster))
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "DEPLOY_FAILED"


def test_deploy_fails_when_a_memory_threshold_is_below_the_use(cluster: RunningCluster) -> None:
    """ML Commons' memory circuit breakers: open when the node's use is above
    `plugins.ml_commons.native_memory_threshold` / `jvm_heap_memory_threshold` (0: always)."""
    native = "Native Memory Circuit Breaker is open, please check your resources!"
    model_id = registered_model(cluster)
    settings(cluster, plugins__ml_commons__native_memory_threshold=0)
    try:
        task_id = deploy(cluster, model_id)
        done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED")
        assert done["state"] == "FAILED"
        assert json.loads(done["error"]) == {w: native for w in workers(cluster)}
        # the JVM heap breaker is looked at first; 100 never opens
        settings(
            cluster,
            plugins__ml_commons__jvm_heap_memory_threshold=40,
            tasksim__ml__jvm_heap_used_percent=41,
            plugins__ml_commons__native_memory_threshold=100,
        )
        task_id = deploy(cluster, model_id)
        done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED")
        assert json.loads(done["error"]) == {w: CIRCUIT for w in workers(cluster)}
        settings(cluster, tasksim__ml__jvm_heap_used_percent=40)
        task_id = deploy(cluster, model_id)
        assert wait_state(cluster, task_id, "COMPLETED")["state"] == "COMPLETED"
    finally:
        settings(
            cluster,
            plugins__ml_commons__native_memory_threshold=None,
            plugins__ml_commons__jvm_heap_memory_threshold=None,
            tasksim__ml__jvm_heap_used_percent=None,
        )


def test_custom_deployment_plan(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    node3 = cluster.node("node-3").id
    status, body = send(cluster, "POST", f"{ML}/models/{model_id}/_deploy", {"node_ids": [node3]})
    assert status == 400
    assert body["error"]["reason"] == "Don't allow custom deployment plan"
    settings(cluster, plugins__ml_commons__allow_custom_deployment_plan=True)
    task_id = deploy(cluster, model_id, {"node_ids": [node3]})
    done = wait_state(cluster, task_id, "COMPLETED")
    assert done["worker_node"] == [node3]
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert "deploy_to_all_nodes" not in model
    status, body = send(cluster, "POST", f"{ML}/models/{model_id}/_deploy", {"node_ids": ["x"]})
    assert status == 400 and body["error"]["reason"] == "no eligible node found"


def test_deploy_of_a_missing_model(cluster: RunningCluster) -> None:
    status, body = send(cluster, "POST", f"{ML}/models/nope/_deploy")
    assert status == 404 and body["error"]["reason"] == "Failed to find model"


def test_a_stuck_task_fails_with_the_sync_up_timeout(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    settings(
        cluster,
        tasksim__ml__deploy_seconds=120,
        plugins__ml_commons__ml_task_timeout_in_seconds=2,
    )
    task_id = deploy(cluster, model_id)
    wait_state(cluster, task_id, "RUNNING")
    done = wait_state(cluster, task_id, "FAILED", timeout=30)
    assert done["error"] == "timeout after 2 seconds"
    # The task's work is ended with it: no deploy part is left on any node.
    wait_for(
        lambda: not tasks_by_action(cluster, "cluster:admin/opensearch/ml/deploy_model_on_nodes"),
        15,
        "the deploy parts to end",
    )


# -- undeploy ---------------------------------------------------------------------------------------


def test_undeploy(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    wait_state(cluster, deploy(cluster, model_id), "COMPLETED")
    status, body = send(cluster, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert status == 200
    validate(body, "UndeployModelResponse")
    for node_id in workers(cluster):
        assert body[node_id] == {"stats": {model_id: "undeployed"}}
    assert body[cluster.node("coordinator").id] == {"stats": {model_id: "not_found"}}
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "UNDEPLOYED"
    assert model["current_worker_node_count"] == 0
    assert "last_undeployed_time" in model
    status, body = send(cluster, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert {v["stats"][model_id] for v in body.values()} == {"not_found"}
    assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "UNDEPLOYED"
    status, body = send(cluster, "POST", f"{ML}/models/nope/_undeploy")
    assert status == 404 and body["error"]["reason"] == "Failed to find model"
    # A model deployed on one node only: undeploying it from another changes nothing.
    settings(cluster, plugins__ml_commons__allow_custom_deployment_plan=True)
    node1 = cluster.node("node-1").id
    wait_state(cluster, deploy(cluster, model_id, {"node_ids": [node1]}), "COMPLETED")
    status, body = send(
        cluster,
        "POST",
        f"{ML}/models/_undeploy",
        {"model_ids": [model_id], "node_ids": [cluster.node("node-2").id]},
    )
    assert body == {cluster.node("node-2").id: {"stats": {model_id: "not_found"}}}
    assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "DEPLOYED"
    status, body = send(cluster, "POST", f"{ML}/models/_undeploy", {"model_ids": [model_id]})
    assert body[node1] == {"stats": {model_id: "undeployed"}}
    assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "UNDEPLOYED"


# -- train ------------------------------------------------------------------------------------------

KMEANS = {
    "parameters": {"centroids": 3, "iterations": 10, "distance_type": "COSINE"},
    "input_query": {"_source": ["petal_length_in_cm", "petal_width_in_cm"], "size": 10000},
    "input_index": ["iris_data"],
}


@pytest.fixture(scope="module")
def iris(cluster: RunningCluster) -> str:
    """The training input index (`_train` with `input_index` reads it)."""
    status, body = send(cluster, "PUT", "/iris_data")
    assert status == 200, body
    return "iris_data"


def test_train_on_a_missing_index(cluster: RunningCluster) -> None:
    missing = {**KMEANS, "input_index": ["no_such_index"]}
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans", missing)
    assert status == 404
    assert body["error"]["type"] == "index_not_found_exception"
    assert body["error"]["reason"] == "no such index [no_such_index]"
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans?async=true", missing)
    assert status == 200
    done = wait_state(cluster, body["task_id"], "FAILED", "COMPLETED")
    assert done["state"] == "FAILED" and done["error"] == "no such index [no_such_index]"
    # A data frame input reads no index.
    frame = {"parameters": {"centroids": 2}, "input_data": {"column_metas": [], "rows": []}}
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans?async=true", frame)
    done = wait_state(cluster, body["task_id"], "FAILED", "COMPLETED")
    assert done["state"] == "COMPLETED" and done["input_type"] == "DATA_FRAME"


@pytest.mark.usefixtures("iris")
def test_train_synchronously(cluster: RunningCluster) -> None:
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans", KMEANS)
    assert status == 200
    assert list(body) == ["model_id", "status"] and body["status"] == "COMPLETED"
    validate(body, "TrainResponse")
    _, model = cluster.get(f"{ML}/models/{body['model_id']}")
    assert model["algorithm"] == "KMEANS" and model["model_state"] == "TRAINED"


@pytest.mark.usefixtures("iris")
def test_train_asynchronously(cluster: RunningCluster) -> None:
    settings(cluster, tasksim__ml__train_seconds=4)
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans?async=true", KMEANS)
    assert status == 200
    assert list(body) == ["task_id", "status"] and body["status"] == "CREATED"
    running = wait_state(cluster, body["task_id"], "RUNNING")
    assert running["task_type"] == "TRAINING" and running["function_name"] == "KMEANS"
    assert running["input_type"] == "SEARCH_QUERY"
    train = wait_for(
        lambda: tasks_by_action(cluster, "cluster:admin/opensearch/ml/train"), 10, "train task"
    )
    assert [t["node"] for t in train] == running["worker_node"]
    done = wait_state(cluster, body["task_id"], "COMPLETED", "FAILED")
    assert done["state"] == "COMPLETED" and ID.match(done["model_id"])


@pytest.mark.usefixtures("iris")
def test_train_with_bad_parameters(cluster: RunningCluster) -> None:
    bad = {**KMEANS, "parameters": {"centroids": 0}}
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans?async=true", bad)
    assert status == 200
    done = wait_state(cluster, body["task_id"], "FAILED", "COMPLETED")
    assert done["state"] == "FAILED" and done["error"] == "K should be positive."
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans", bad)
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == "K should be positive."
    status, body = send(cluster, "POST", f"{ML}/_train/nope", KMEANS)
    assert status == 400 and body["error"]["reason"] == "Wrong function name"
    status, body = send(cluster, "POST", f"{ML}/_train/kmeans?async=maybe", KMEANS)
    assert status == 400


# -- tasks: delete, search, cancel ------------------------------------------------------------------


def test_delete_is_refused_while_running_then_deletes(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    settings(cluster, tasksim__ml__deploy_seconds=6)
    task_id = deploy(cluster, model_id)
    wait_state(cluster, task_id, "RUNNING")
    status, body = send(cluster, "DELETE", f"{ML}/tasks/{task_id}")
    assert (status, body) == (
        500,
        {
            "error": {
                "root_cause": [
                    {
                        "type": "exception",
                        "reason": "Task cannot be deleted in running state. Try after some time.",
                    }
                ],
                "type": "exception",
                "reason": "Task cannot be deleted in running state. Try after some time.",
            },
            "status": 500,
        },
    )
    wait_state(cluster, task_id, "COMPLETED")
    status, body = send(cluster, "DELETE", f"{ML}/tasks/{task_id}")
    assert status == 200
    validate(body, "WriteResponseBase", "_common.yaml")
    assert list(body) == [
        "_index",
        "_id",
        "_version",
        "result",
        "_shards",
        "_seq_no",
        "_primary_term",
    ]
    assert body["_index"] == ".plugins-ml-task" and body["_id"] == task_id
    assert body["result"] == "deleted" and body["_version"] >= 4
    assert body["_shards"] == {"total": 2, "successful": 2, "failed": 0}
    assert cluster.get(f"{ML}/tasks/{task_id}")[0] == 404
    assert send(cluster, "DELETE", f"{ML}/tasks/{task_id}")[0] == 404


def test_search_tasks(cluster: RunningCluster) -> None:
    register(cluster)
    status, body = send(
        cluster,
        "POST",
        f"{ML}/tasks/_search",
        {"query": {"term": {"task_type": "REGISTER_MODEL"}}, "sort": [{"create_time": "desc"}]},
    )
    assert status == 200
    validate(body, "SearchTasksResponse")
    hits = body["hits"]["hits"]
    assert hits and all(h["_source"]["task_type"] == "REGISTER_MODEL" for h in hits)
    times = [h["sort"][0] for h in hits]
    assert times == sorted(times, reverse=True)
    assert all(h["_index"] == ".plugins-ml-task" and "task_id" not in h["_source"] for h in hits)
    assert body["hits"]["total"]["value"] == len(hits) or len(hits) == 10
    # GET with the query in `source`, and bool/match over state and function_name.
    query = '{"query":{"bool":{"must":[{"match":{"state":"FAILED"}},{"term":{"function_name":"KMEANS"}}]}}}'
    status, body = cluster.get(f"{ML}/tasks/_search?source={urllib.parse.quote(query)}")
    assert status == 200
    assert all(h["_source"]["function_name"] == "KMEANS" for h in body["hits"]["hits"])
    assert all(h["_source"]["state"] == "FAILED" for h in body["hits"]["hits"])
    status, body = send(cluster, "POST", f"{ML}/tasks/_search", {"query": {"fuzzy": {"a": "b"}}})
    assert status == 400
    assert (body["error"]["type"], body["error"]["reason"]) == (
        "parsing_exception",
        "unknown query [fuzzy]",
    )
    assert (body["error"]["line"], body["error"]["col"]) == (1, 21)  # the `{` after the name


def test_cancel_applies_to_batch_jobs_only(cluster: RunningCluster) -> None:
    task_id = register(cluster)
    status, body = send(cluster, "POST", f"{ML}/tasks/{task_id}/_cancel")
    assert status == 400
    assert body["error"]["reason"] == (
        "The task ID you provided does not have any associated batch job"
    )
    status, body = send(cluster, "POST", f"{ML}/tasks/nope/_cancel")
    assert status == 404 and body["error"]["reason"] == "Fail to find task"


def test_ml_requests_are_transport_tasks_with_headers(cluster: RunningCluster) -> None:
    forward_action = "cluster:admin/opensearch/ml/forward"
    # Earlier tests' registrations may still be forwarding; start from a quiet cluster so every
    # forward task seen below is this request's.
    wait_for(lambda: not tasks_by_action(cluster, forward_action), 30, "no forward task")
    settings(cluster, tasksim__ml__register_seconds=4)
    status, _, _ = cluster.request(
        "POST",
        f"{ML}/models/_register",
        body=json.dumps(MINILM).encode(),
        headers={"Content-Type": "application/json", "X-Opaque-Id": "ml-1"},
    )
    assert status == 200
    forward = wait_for(lambda: tasks_by_action(cluster, forward_action), 10, "forward")
    assert [t["headers"] for t in forward] == [{"X-Opaque-Id": "ml-1"}] * len(forward)


# -- opensearch-py ----------------------------------------------------------------------------------


def test_opensearch_py_ml_client(cluster: RunningCluster, client: OpenSearch) -> None:
    task_id = register(cluster)
    task = client.plugins.ml.get_task(task_id=task_id)
    assert task["task_type"] == "REGISTER_MODEL"
    wait_state(cluster, task_id, "COMPLETED")
    found = client.plugins.ml.search_tasks(body={"query": {"ids": {"values": [task_id]}}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [task_id]
    deleted = client.plugins.ml.delete_task(task_id=task_id)
    assert deleted["result"] == "deleted"
    with pytest.raises(NotFoundError) as e:
        client.plugins.ml.get_task(task_id=task_id)
    assert e.value.error == "status_exception"
    with pytest.raises(NotFoundError):
        client.plugins.ml.delete_task(task_id=task_id)
    with pytest.raises(ValueError):
        client.plugins.ml.get_task(task_id="")
    settings(cluster, tasksim__ml__deploy_seconds=6)
    running = deploy(cluster, str(get_task(cluster, register_done(cluster))["model_id"]))
    wait_state(cluster, running, "RUNNING")
    with pytest.raises(TransportError) as err:
        client.plugins.ml.delete_task(task_id=running)
    assert err.value.status_code == 500


def register_done(cluster: RunningCluster) -> str:
    task_id = register(cluster)
    wait_state(cluster, task_id, "COMPLETED")
    return task_id
