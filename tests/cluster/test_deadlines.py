"""Every request the coordinator sends ends (issue 14, defect 7).

A lost request or answer (`drop_request`, `drop_response`) of a call without a deadline — a cancel:
OpenSearch gives `cancel[n]` and bans none — used to wait forever, even after heal. Now a heal
releases it: the caller fails with `node_disconnected_exception`, as an in-flight request fails when
its connection is reset. And `POST /_sim/tasks` is bounded: `timeout` (the start: 30 s by default)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from coordinator.client import Response, SimClient
from tests.harness import RunningCluster, running_cluster

BOUND = 30.0  # seconds: generous for a loaded machine; waits end as soon as their condition holds


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=2) as c:
        yield c


@pytest.fixture
def sim(cluster: RunningCluster) -> Iterator[SimClient]:
    client = SimClient(cluster.url)
    try:
        yield client
    finally:
        client.heal()


def wait_until(condition: Callable[[], Any], timeout: float = BOUND) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    return condition()


def in_background(fn: Callable[[], Response]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = fn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def live(sim: SimClient, action: str) -> list[str]:
    resp = sim.request("GET", f"/_tasks?actions={action}&group_by=none")
    assert resp.status == 200, resp.body
    return [f"{t['node']}:{t['id']}" for t in resp.body["tasks"]]


def failures(resp: Response) -> dict[str, str]:
    return {f["node_id"]: f["caused_by"]["type"] for f in resp.body.get("node_failures", ())}


def hits(sim: SimClient, rule_id: str) -> int:
    return int(sim.nodes()["coordinator"].get("hits", {}).get(rule_id, 0))


def test_heal_releases_a_cancel_whose_request_was_lost(
    cluster: RunningCluster, sim: SimClient
) -> None:
    action = "test:deadline/drop_request"
    [root] = sim.start_task({"node": "node-2", "action": action})
    assert wait_until(lambda: live(sim, action))
    lost = sim.link("coordinator", "node-2", "drop_request", methods=["CancelTasks"])
    # `_cancel` takes no `timeout` (OpenSearch's): this request has no deadline at all.
    thread, out = in_background(
        lambda: sim.request("POST", f"/_tasks/_cancel?actions={action}", timeout=120)
    )
    # The coordinator's cancel[n] to node-2 was lost the moment it started (the rule's hit).
    assert wait_until(lambda: hits(sim, lost.id) >= 1), "the cancel[n] request was never sent"
    assert "result" not in out
    lost.remove()  # the link heals: the caller still waiting learns its request is gone
    thread.join(BOUND)
    assert not thread.is_alive(), "the cancel was never answered after the link healed"
    resp: Response = out["result"]
    assert resp.status == 200, resp.body
    assert failures(resp) == {cluster.node("node-2").id: "node_disconnected_exception"}
    assert live(sim, action) == [root]  # node-2 never heard of the cancel
    assert sim.request("POST", f"/_tasks/{root}/_cancel").status == 200
    assert wait_until(lambda: not live(sim, action))


def test_heal_ends_a_cancel_whose_answer_was_dropped(
    cluster: RunningCluster, sim: SimClient
) -> None:
    action = "test:deadline/drop_response"
    sim.start_task({"node": "node-2", "action": action})
    assert wait_until(lambda: live(sim, action))
    lost = sim.link("coordinator", "node-2", "drop_response", methods=["CancelTasks"])
    thread, out = in_background(
        lambda: sim.request("POST", f"/_tasks/_cancel?actions={action}", timeout=120)
    )
    # node-2 acts on the request; only its answer is dropped.
    assert wait_until(lambda: not live(sim, action)), "node-2 never cancelled its task"
    assert "result" not in out
    lost.remove()
    thread.join(BOUND)
    assert not thread.is_alive(), "the cancel was never answered after the link healed"
    resp: Response = out["result"]
    assert resp.status == 200, resp.body
    # The answer was dropped (then the heal fails the caller: its connection was reset) — or, if
    # the heal overtook the answer on its way, it is delivered. Never an endless wait.
    assert failures(resp) in ({}, {cluster.node("node-2").id: "node_disconnected_exception"})


def test_sim_tasks_start_is_bounded_by_its_timeout(cluster: RunningCluster, sim: SimClient) -> None:
    action = "test:deadline/start"
    with sim.link("coordinator", "node-2", "drop_response", methods=["StartTask"]):
        resp = sim.request(
            "POST", "/_sim/tasks?timeout=300ms", {"node": "node-2", "action": action}, timeout=60
        )
        assert resp.status == 500, resp.body
        assert resp.body["error"]["type"] == "receive_timeout_transport_exception"
        assert "[internal:tasksim/task/start]" in resp.body["error"]["reason"]
    # node-2 did start the task (only the answer was lost): cancel it
    started = wait_until(lambda: live(sim, action))
    assert started and sim.request("POST", f"/_tasks/_cancel?actions={action}").status == 200
    assert wait_until(lambda: not live(sim, action))


@pytest.mark.parametrize("node", ["node-2", "coordinator"])
def test_sim_tasks_wait_is_bounded_by_its_timeout_and_cancels_the_task(
    cluster: RunningCluster, sim: SimClient, node: str
) -> None:
    action = f"test:deadline/wait-{node}"
    resp = sim.request(
        "POST",
        "/_sim/tasks?wait_for_completion=true&timeout=300ms",
        {"node": node, "action": action},
        timeout=60,
    )
    assert resp.status == 500, resp.body
    assert resp.body["error"]["type"] == "receive_timeout_transport_exception"
    assert resp.elapsed < BOUND
    # The task outlived the wait only until its cancellation (channel was closed) ended it.
    assert wait_until(lambda: not live(sim, action))


def test_a_bad_timeout_is_a_400(sim: SimClient) -> None:
    resp = sim.request("POST", "/_sim/tasks?timeout=soon", {"node": "node-1"})
    assert resp.status == 400
    assert resp.body["error"]["type"] == "illegal_argument_exception"
