"""ML tasks under faults, against real node processes: a worker killed during a deploy
(COMPLETED_WITH_ERROR), the only worker cut off (UNREACHABLE, then heal → RUNNING → COMPLETED), and
a cut-off worker that dies (UNREACHABLE → FAILED).

"Cut off" is a SIGSTOPped worker: it holds its sockets and answers nothing, which the sync-up sees as
failed probes — exactly what a network partition produces (the probes time out). The default
follower checks (1 s, 10 s timeout, 3 retries) keep it in the cluster for the ~30 s these tests
need. The tests share one cluster in any order (the first kills node-2, the second uses node-3);
the one that kills node-3 runs its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest

from tests.harness import RunningCluster, running_cluster
from tests.ml_util import deploy, registered_model, settings, wait_for, wait_state

ML = "/_plugins/_ml"
DEPLOY_N = "cluster:admin/opensearch/ml/deploy_model_on_nodes[n]"


@contextmanager
def ml_cluster(seed: int) -> Iterator[RunningCluster]:
    with running_cluster(nodes=3, seed=seed) as c:
        settings(
            c,
            plugins__ml_commons__sync_up_job_interval_in_seconds=1,
            plugins__ml_commons__allow_custom_deployment_plan=True,
            tasksim__ml__register_seconds=0.2,
            tasksim__ml__sync_up_timeout_seconds=0.5,
            tasksim__ml__unreachable_after_seconds=1.5,
        )
        yield c


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with ml_cluster(seed=71) as c:
        yield c


def local_tasks(cluster: RunningCluster) -> list[dict[str, Any]]:
    """The coordinating node's own tasks (a fan-out would wait on a stopped node)."""
    status, body = cluster.get("/_tasks?nodes=_local&group_by=none")
    assert status == 200, body
    return list(body["tasks"])


def all_tasks(cluster: RunningCluster) -> list[dict[str, Any]]:
    status, body = cluster.get("/_tasks?group_by=none")
    assert status == 200, body
    return list(body["tasks"])


def test_a_worker_killed_during_a_deploy_to_three(cluster: RunningCluster) -> None:
    model_id = registered_model(cluster)
    settings(cluster, tasksim__ml__deploy_seconds=10)
    task_id = deploy(cluster, model_id)
    wait_state(cluster, task_id, "RUNNING")
    wait_for(
        lambda: len([t for t in all_tasks(cluster) if t["action"] == DEPLOY_N]) == 3,
        10,
        "a deploy part on each of the three workers",
    )
    victim = cluster.node("node-2")
    cluster.node_process("node-2").kill()
    done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED", timeout=40)
    assert done["state"] == "COMPLETED_WITH_ERROR"
    assert done["worker_node"] == [cluster.node(f"node-{i}").id for i in (1, 2, 3)]
    errors = json.loads(done["error"])
    assert list(errors) == [victim.id]
    assert re.fullmatch(
        rf"\[node-2\]\[{re.escape(victim.address)}\]"
        r"(\[cluster:admin/opensearch/ml/deploy_model_on_nodes\[n\]\] disconnected"
        r"| Node not connected)",
        errors[victim.id],
    ), errors[victim.id]
    _, model = cluster.get(f"{ML}/models/{model_id}")
    assert model["model_state"] == "PARTIALLY_DEPLOYED"
    assert model["current_worker_node_count"] == 2
    # The killed node left the cluster: `_tasks` no longer reaches it, and nothing of the deploy
    # is left anywhere.
    nodes = {t["node"] for t in all_tasks(cluster)}
    assert victim.id not in nodes
    assert not [t for t in all_tasks(cluster) if "deploy_model" in t["action"]]


def _suspended_deploy(cluster: RunningCluster, deploy_seconds: float) -> tuple[str, str, Any]:
    node3 = cluster.node("node-3")
    model_id = registered_model(cluster)
    settings(cluster, tasksim__ml__deploy_seconds=deploy_seconds)
    task_id = deploy(cluster, model_id, {"node_ids": [node3.id]})
    wait_state(cluster, task_id, "RUNNING")
    wait_for(
        lambda: [t for t in all_tasks(cluster) if t["action"] == DEPLOY_N],
        10,
        "the deploy part on node-3",
    )
    return model_id, task_id, cluster.node_process("node-3")


def test_the_only_worker_cut_off_is_unreachable_then_heals(cluster: RunningCluster) -> None:
    node3 = cluster.node("node-3")
    model_id, task_id, process = _suspended_deploy(cluster, deploy_seconds=20)
    process.suspend()
    try:
        task = wait_state(cluster, task_id, "UNREACHABLE", "COMPLETED", "FAILED", timeout=20)
        assert task["state"] == "UNREACHABLE"
        assert task["worker_node"] == [node3.id]
        errors = json.loads(task["error"])
        assert list(errors) == [node3.id]
        assert re.fullmatch(
            rf"\[node-3\]\[{re.escape(node3.address)}\]\[cluster:admin/opensearch/ml/syncup\[n\]\] "
            r"request_id \[\d+\] timed out after \[\d+ms\]",
            errors[node3.id],
        ), errors[node3.id]
        # The coordinating node still runs the deploy, waiting for its worker.
        actions = [t["action"] for t in local_tasks(cluster)]
        assert "cluster:admin/opensearch/ml/deploy_model_on_nodes" in actions
        assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "DEPLOYING"
    finally:
        process.resume()
    healed = wait_state(cluster, task_id, "RUNNING", "COMPLETED", timeout=20)
    assert healed["state"] == "RUNNING" and "error" not in healed
    done = wait_state(cluster, task_id, "COMPLETED", "COMPLETED_WITH_ERROR", "FAILED", timeout=30)
    assert done["state"] == "COMPLETED" and "error" not in done
    assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "DEPLOYED"


def test_a_cut_off_worker_that_dies_fails_the_task() -> None:
    # A cluster of its own: node-3 dies here, and the other tests need it, in any order.
    with ml_cluster(seed=73) as cluster:
        a_cut_off_worker_dies(cluster)


def a_cut_off_worker_dies(cluster: RunningCluster) -> None:
    node3 = cluster.node("node-3")
    model_id, task_id, process = _suspended_deploy(cluster, deploy_seconds=30)
    process.suspend()
    try:
        wait_state(cluster, task_id, "UNREACHABLE", timeout=20)
        process.kill()  # a stopped process dies of SIGKILL too (a zombie until its parent reaps it)
    finally:
        try:
            process.resume()
        except psutil.NoSuchProcess:
            pass
    done = wait_state(cluster, task_id, "FAILED", "COMPLETED", timeout=40)
    assert done["state"] == "FAILED"
    assert list(json.loads(done["error"])) == [node3.id]
    assert cluster.get(f"{ML}/models/{model_id}")[1]["model_state"] == "DEPLOY_FAILED"
