"""`GET _tasks/<id>`, the cluster endpoints, OpenSearch's routing errors, and opensearch-py."""

from __future__ import annotations

import grpc
import pytest
from opensearchpy import NotFoundError, OpenSearch, RequestError

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import RunningCluster


def start_tree(cluster: RunningCluster, node: str, action: str, *, cancellable: bool = True) -> str:
    """Start a long-running task on a node through its gRPC StartTask; returns "<node>:<id>"."""
    with grpc.insecure_channel(cluster.node(node).address) as channel:
        answer = pb_grpc.NodeStub(channel).StartTask(
            pb.RunTaskRequest(
                spec=pb.TaskSpec(
                    action=action,
                    cancellable=cancellable,
                    duration_millis=120_000,
                    description="a long one",
                    status_json='{"phase": "running"}',
                )
            ),
            timeout=10,
        )
    return str(answer.task_id)


@pytest.fixture(scope="module")
def client(cluster: RunningCluster) -> OpenSearch:
    return OpenSearch(hosts=[{"host": "127.0.0.1", "port": cluster.port}], timeout=30)


def test_get_running_task_is_detailed(cluster: RunningCluster) -> None:
    task_id = start_tree(cluster, "node-2", "indices:data/write/reindex")
    status, body = cluster.get(f"/_tasks/{task_id}")
    assert status == 200
    assert list(body) == ["completed", "task"]
    assert body["completed"] is False
    task = body["task"]
    assert list(task) == [
        "node",
        "id",
        "type",
        "action",
        "status",
        "description",
        "start_time_in_millis",
        "running_time_in_nanos",
        "cancellable",
        "cancelled",
        "headers",
        "resource_stats",
    ]
    assert f"{task['node']}:{task['id']}" == task_id
    assert task["node"] == cluster.node("node-2").id
    assert task["status"] == {"phase": "running"}
    assert task["description"] == "a long one"
    assert list(task["resource_stats"]) == ["average", "total", "min", "max", "thread_info"]
    assert task["resource_stats"]["thread_info"] == {"thread_executions": 0, "active_threads": 0}


def test_get_errors(cluster: RunningCluster) -> None:
    node1 = cluster.node("node-1").id
    status, body = cluster.get("/_tasks/foo")
    assert status == 400
    assert body == {
        "error": {
            "root_cause": [
                {"type": "illegal_argument_exception", "reason": "malformed task id foo"}
            ],
            "type": "illegal_argument_exception",
            "reason": "malformed task id foo",
        },
        "status": 400,
    }
    status, body = cluster.get(f"/_tasks/{node1}:999999")
    assert status == 404
    reason = f"task [{node1}:999999] isn't running and hasn't stored its results"
    assert body["error"]["type"] == "resource_not_found_exception"
    assert body["error"]["reason"] == reason
    assert body["error"]["caused_by"]["type"] == "index_not_found_exception"
    assert body["error"]["root_cause"][0]["type"] == "index_not_found_exception"
    status, body = cluster.get("/_tasks/nodeX:9")
    assert status == 404
    assert body["error"]["reason"] == (
        "task [nodeX:9] belongs to the node [nodeX] which isn't part of the cluster and there is "
        "no record of the task"
    )
    assert body["error"]["caused_by"]["reason"] == (
        "task [nodeX:9] isn't running and hasn't stored its results"
    )


def test_content_type_is_json(cluster: RunningCluster) -> None:
    status, _, headers = cluster.request("GET", "/_tasks/foo")
    assert status == 400
    assert headers["content-type"] == "application/json; charset=UTF-8"


def test_unknown_path_and_wrong_method(cluster: RunningCluster) -> None:
    # One-segment paths are index names to `GET|PUT|DELETE|HEAD /{index}`, as in OpenSearch, whose
    # RestController falls through to them (`PUT /_tasks` is an invalid index name there).
    status, body = cluster.get("/_nope/_x/y?pretty")
    assert (status, body) == (
        400,
        {"error": "no handler found for uri [/_nope/_x/y] and method [GET]"},
    )
    status, body, headers = cluster.request("POST", "/_tasks?pretty")
    assert status == 405
    assert body == {
        "error": (
            "Incorrect HTTP method for uri [/_tasks?pretty] and method [POST], "
            "allowed: [GET, PUT, DELETE, HEAD]"
        ),
        "status": 405,
    }
    assert headers["allow"] == "GET,PUT,DELETE,HEAD"
    status, body, headers = cluster.request("DELETE", "/_tasks/x:1")
    assert status == 405 and headers["allow"] == "GET"
    # GET on the cancel path is the get-task handler with task id "_cancel", as in OpenSearch.
    status, body = cluster.get("/_tasks/_cancel")
    assert status == 400 and body["error"]["reason"] == "malformed task id _cancel"


def test_root_nodes_health_state(cluster: RunningCluster) -> None:
    status, root = cluster.get("/")
    assert status == 200
    assert root["name"] == "coordinator"
    assert root["version"]["distribution"] == "opensearch"
    status, nodes = cluster.get("/_nodes")
    assert nodes["_nodes"] == {"total": 4, "successful": 4, "failed": 0}
    assert {n["name"] for n in nodes["nodes"].values()} == {
        "coordinator",
        "node-1",
        "node-2",
        "node-3",
    }
    status, health = cluster.get("/_cluster/health?wait_for_status=green")
    assert (health["status"], health["number_of_nodes"], health["number_of_data_nodes"]) == (
        "green",
        4,
        3,
    )
    status, state = cluster.get("/_cluster/state")
    assert state["master_node"] == cluster.node("node-1").id == state["cluster_manager_node"]
    assert set(state["nodes"]) == {n.id for n in cluster.nodes}


def test_pretty_is_jackson_style(cluster: RunningCluster) -> None:
    import urllib.request

    with urllib.request.urlopen(cluster.url + "/_cluster/state/blocks?pretty") as resp:
        raw = resp.read().decode()
    assert raw.startswith('{\n  "cluster_name" : "tasksim",\n')
    assert '"blocks" : { }\n}\n' in raw


def test_opensearch_py_list_and_get(cluster: RunningCluster, client: OpenSearch) -> None:
    assert client.info()["version"]["distribution"] == "opensearch"
    task_id = start_tree(cluster, "node-3", "indices:data/read/search")
    listed = client.tasks.list(actions="indices:data/read/search", detailed=True)
    node3 = cluster.node("node-3").id
    assert task_id in listed["nodes"][node3]["tasks"]
    assert listed["nodes"][node3]["tasks"][task_id]["description"] == "a long one"
    got = client.tasks.get(task_id=task_id)
    assert got["completed"] is False and got["task"]["action"] == "indices:data/read/search"
    with pytest.raises(NotFoundError) as nf:
        client.tasks.get(task_id=f"{node3}:999999")
    assert nf.value.error == "resource_not_found_exception"
    with pytest.raises(RequestError) as bad:
        client.tasks.get(task_id="foo")
    assert bad.value.error == "illegal_argument_exception"
