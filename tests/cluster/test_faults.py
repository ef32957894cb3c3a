"""Fault injection against real node processes, over `/_sim/faults` and `/_sim/nodes` (SimClient)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import psutil
import pytest

from coordinator.client import Response, SimClient, SimClientError
from simnode._wire import control_pb2 as cpb
from simnode._wire import control_pb2_grpc as control_grpc
from tests.harness import ROOT, RunningCluster

LIST_N = "cluster:monitor/tasks/lists[n]"
REINDEX = {
    "node": "node-1",
    "action": "indices:data/write/reindex",
    "children": [{"node": "node-2", "action": "indices:data/read/search"}],
}


@pytest.fixture
def sim(cluster: RunningCluster) -> Iterator[SimClient]:
    client = SimClient(cluster.url)
    try:
        yield client
    finally:
        client.heal()
        client.request("POST", "/_tasks/_cancel?actions=indices:*")
        wait_until(lambda: not live_tasks(client, "indices:"), "the work to end")


def wait_until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def live_tasks(sim: SimClient, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
    nodes = sim.nodes(tasks=True)
    return {
        name: [t for t in n.get("tasks", []) if t["action"].startswith(prefix)]
        for name, n in nodes.items()
        if any(t["action"].startswith(prefix) for t in n.get("tasks", []))
    }


def failures(resp: Response) -> dict[str, str]:
    return {f["node_id"]: f["caused_by"]["type"] for f in resp.body.get("node_failures", [])}


def list_n_id(cluster: RunningCluster, sim: SimClient, node: str) -> int:
    resp = sim.request("GET", "/_tasks?group_by=none")
    node_id = cluster.node(node).id
    return next(
        t["id"] for t in resp.body["tasks"] if t["node"] == node_id and t["action"] == LIST_N
    )


def in_background(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = fn()
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# -- the rule table ---------------------------------------------------------------------------------


def test_every_change_is_versioned_and_applied_by_every_process(sim: SimClient) -> None:
    before = sim.faults()["version"]
    fault = sim.link("coordinator", "node-2", "blackhole", methods=["ListTasks"], id="cut")
    assert fault.answer["version"] == before + 1
    assert fault.answer["ids"] == ["cut"]
    assert fault.answer["nodes"] == dict.fromkeys(
        ["coordinator", "node-1", "node-2", "node-3"], True
    )
    state = sim.faults()
    assert state["faults"] == [
        {
            "id": "cut",
            "level": "transport",
            "rules": [
                {
                    "id": "cut",
                    "action": "blackhole",
                    "from": ["coordinator"],
                    "to": ["node-2"],
                    "methods": ["ListTasks"],
                }
            ],
        }
    ]
    assert {n["applied_version"] for n in state["nodes"].values()} == {before + 1}
    assert {n["rules_version"] for n in sim.nodes().values()} == {before + 1}
    fault.remove()
    after = sim.faults()
    assert after["faults"] == [] and after["version"] == before + 2


def test_invalid_faults_are_400s_with_a_reason(sim: SimClient) -> None:
    cases = [
        ({"link": {"action": "blackhole", "to": "node-9"}}, "unknown node 'node-9' in 'to'"),
        ({"link": {"action": "explode"}}, "[action] Input should be"),
        ({"link": {"action": "delay", "latency": 5}}, "a duration is a string with a unit"),
        ({"link": {"action": "delay", "latency": "5 parsecs"}}, "invalid duration '5 parsecs'"),
        (
            {"link": {"action": "blackhole", "colour": "red"}},
            "[colour] Extra inputs are not permitted",
        ),
        ({"link": {"action": "blackhole", "methods": ["Teleport"]}}, "unknown method 'Teleport'"),
        ({"partition": {"groups": [["node-1"], ["node-1"]]}}, "more than one partition group"),
        ({"storm": {}}, "exactly one key: link, slow, partition"),
        # Packet faults need nodes in network namespaces; this cluster's share loopback.
        (
            {"link": {"action": "blackhole", "to": "node-2", "level": "net"}},
            "level [net] cuts packets between network namespaces",
        ),
        ({"partition": {"groups": [["node-1"]], "level": "net"}}, "tasksim up --hosts netns"),
        ({"link": {"action": "delay", "latency": "1s", "level": "net"}}, "no netem qdisc"),
    ]
    for body, reason in cases:
        resp = sim.request("POST", "/_sim/faults", body)
        assert resp.status == 400, body
        assert resp.body["error"]["type"] == "illegal_argument_exception"
        assert reason in resp.body["error"]["reason"], (reason, resp.body)
    assert sim.faults()["faults"] == []
    resp = sim.request("DELETE", "/_sim/faults/nope")
    assert resp.status == 404
    assert resp.body["error"]["reason"] == "fault [nope] is not installed"
    with pytest.raises(SimClientError, match="coordinating node"):
        sim.kill("coordinator")


# -- link faults ------------------------------------------------------------------------------------


def test_disconnect_fails_fast(cluster: RunningCluster, sim: SimClient) -> None:
    with sim.link("coordinator", "node-2", "disconnect", methods=["ListTasks"]):
        resp = sim.request("GET", "/_tasks")
    assert resp.status == 200
    assert failures(resp) == {cluster.node("node-2").id: "connect_transport_exception"}
    reason = resp.body["node_failures"][0]["caused_by"]["reason"]
    assert reason == f"[node-2][{cluster.node('node-2').address}] DISCONNECT: simulated"
    assert resp.elapsed < 2.0
    assert cluster.node("node-2").id not in resp.body["nodes"]


def test_blackhole_hangs_until_the_deadline_and_the_receiver_never_hears(
    cluster: RunningCluster, sim: SimClient
) -> None:
    first = list_n_id(cluster, sim, "node-2")
    with sim.link("coordinator", "node-2", "blackhole", methods=["ListTasks"]):
        resp = sim.request("GET", "/_tasks?timeout=500ms")
    assert failures(resp) == {cluster.node("node-2").id: "receive_timeout_transport_exception"}
    assert 0.45 < resp.elapsed < 5.0
    # node-2 never registered a task for the black-holed request: its next id follows at once.
    assert list_n_id(cluster, sim, "node-2") == first + 1


def test_drop_response_lets_the_receiver_act(cluster: RunningCluster, sim: SimClient) -> None:
    first = list_n_id(cluster, sim, "node-2")
    with sim.link("coordinator", "node-2", "drop_response", methods=["ListTasks"]):
        resp = sim.request("GET", "/_tasks?timeout=500ms")
    assert failures(resp) == {cluster.node("node-2").id: "receive_timeout_transport_exception"}
    # node-2 ran the lost request: it used one task id for it.
    assert list_n_id(cluster, sim, "node-2") == first + 2


def hits(sim: SimClient, node: str) -> int:
    """How many calls the fault rules caught on `node` (the caller's side decides a link rule)."""
    return sum(sim.nodes()[node]["hits"].values())


def test_a_held_request_is_delivered_late_after_heal(sim: SimClient) -> None:
    with sim.partition(["node-2"], methods=["RunTask"]):
        before = hits(sim, "node-1")
        sim.start_task(REINDEX)
        # node-1 sent the child request and the partition caught it: it is held, not lost.
        wait_until(lambda: hits(sim, "node-1") > before, "the child request to be held")
        assert set(live_tasks(sim, "indices:")) == {"node-1"}  # the child request is held
    wait_until(lambda: "node-2" in live_tasks(sim, "indices:"), "the late child on node-2")


def test_partition_during_a_cancel_the_ban_arrives_after_heal(sim: SimClient) -> None:
    [root] = sim.start_task(REINDEX)
    wait_until(lambda: "node-2" in live_tasks(sim, "indices:"), "the child on node-2")
    with sim.partition(["node-2"], methods=["RunTask", "BanParent"]):
        # (installing the partition already counted the child's RunTask, in flight, as a hit)
        before = hits(sim, "node-1")
        thread, out = in_background(lambda: sim.request("POST", f"/_tasks/{root}/_cancel"))
        wait_until(lambda: hits(sim, "node-1") > before, "the ban to be held")
        assert "result" not in out  # the cancel waits for the ban, which the partition holds
        [child] = live_tasks(sim, "indices:")["node-2"]
        assert child["cancelled"] is False
        healed_at = time.monotonic()
    thread.join(60)
    assert out["result"].status == 200
    assert out["at"] >= healed_at  # answered only once the partition healed
    wait_until(lambda: not live_tasks(sim, "indices:"), "the tree to end")
    wait_until(lambda: not any(n.get("bans") for n in sim.nodes().values()), "no bans")


def test_slow_node_and_latency(cluster: RunningCluster, sim: SimClient) -> None:
    with sim.slow("node-2", "800ms", methods=["ListTasks"]):
        resp = sim.request("GET", "/_tasks")
        assert resp.status == 200 and not failures(resp)
        assert resp.elapsed >= 0.75
        resp = sim.request("GET", "/_tasks?timeout=300ms")
        assert failures(resp) == {cluster.node("node-2").id: "receive_timeout_transport_exception"}
    with sim.link("coordinator", "node-3", "delay", latency="2s", jitter="100ms"):
        resp = sim.request("GET", "/_tasks")
        assert not failures(resp) and resp.elapsed >= 1.89
    # The rule is gone from every process, and a list no longer waits for it (a bound a loaded
    # machine meets: the delayed list took at least 1.9 s).
    state = sim.faults()
    assert state["faults"] == []
    assert {n["applied_version"] for n in state["nodes"].values()} == {state["version"]}
    assert sim.request("GET", "/_tasks").elapsed < 1.89


def test_one_way_partition(cluster: RunningCluster, sim: SimClient) -> None:
    # Nothing crosses from the first group to node-3: the coordinator's calls to node-3 are
    # black-holed; node-3's calls the other way arrive, but their answers are lost.
    majority = ["coordinator", "node-1", "node-2"]
    with sim.partition(majority, ["node-3"], direction="one-way", methods=["ListTasks"]):
        resp = sim.request("GET", "/_tasks?timeout=300ms")
        assert failures(resp) == {cluster.node("node-3").id: "receive_timeout_transport_exception"}
        rules = sim.faults()["faults"][0]["rules"]
        assert [(r["action"], r["from"], r["to"]) for r in rules] == [
            ("blackhole", sorted(majority), ["node-3"]),
            ("drop_response", ["node-3"], sorted(majority)),
        ]


# -- process faults and heal ------------------------------------------------------------------------


def test_pause_resume_kill_restart(cluster: RunningCluster, sim: SimClient) -> None:
    node2 = cluster.node_process("node-2")
    sim.pause("node-2")
    assert node2.status() == psutil.STATUS_STOPPED
    assert sim.nodes()["node-2"]["paused"] is True
    resp = sim.request("GET", "/_tasks?timeout=300ms")
    assert failures(resp) == {cluster.node("node-2").id: "receive_timeout_transport_exception"}
    sim.resume("node-2")
    assert node2.status() != psutil.STATUS_STOPPED

    pid = sim.nodes()["node-3"]["pid"]
    sim.kill("node-3")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    wait_until(lambda: not sim.nodes()["node-3"]["in_cluster"], "node-3 to leave")
    resp = sim.request("GET", "/_tasks")
    assert cluster.node("node-3").id not in resp.body["nodes"] and not failures(resp)
    state = sim.restart("node-3")
    assert state["id"] == cluster.node("node-3").id and state["pid"] != pid
    assert state["in_cluster"] and state["restarts"] == 1
    assert state["rules_version"] == sim.faults()["version"]
    assert cluster.node("node-3").id in sim.request("GET", "/_tasks").body["nodes"]


def test_heal_restores_everything(cluster: RunningCluster, sim: SimClient) -> None:
    sim.partition(["node-1"], ["node-2"])
    sim.slow("node-3", "1s")
    sim.pause("node-1")
    sim.kill("node-2")
    report = sim.heal()
    assert report["acknowledged"] is True, str(report)
    assert report["resumed"] == ["node-1"] and report["restarted"] == ["node-2"]
    state = sim.faults()
    assert state["faults"] == []
    assert {n["applied_version"] for n in state["nodes"].values()} == {state["version"]}
    nodes = sim.nodes()
    assert all(n["alive"] and not n["paused"] for n in nodes.values())
    assert cluster.node_process("node-1").status() != psutil.STATUS_STOPPED
    wait_until(lambda: all(n["in_cluster"] for n in sim.nodes().values()), "everyone back")
    resp = sim.request("GET", "/_tasks")
    assert not failures(resp) and len(resp.body["nodes"]) == 4
    assert sim.heal()["acknowledged"] is True  # idempotent


def test_a_fault_block_heals_even_when_it_raises(sim: SimClient) -> None:
    with pytest.raises(RuntimeError), sim.partition(["node-3"]):
        assert len(sim.faults()["faults"]) == 1
        raise RuntimeError("boom")
    assert sim.faults()["faults"] == []


# -- rule sets out of order ---------------------------------------------------------------------------


def test_a_late_older_rule_set_does_not_undo_a_newer_one() -> None:
    """A push that timed out on a starved process can land after the next one (a heal): the
    process keeps the newer set, and says so."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simnode", "--id=AAAAAAAAAAAAAAAAAAAAAA", "--name", "node-1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            control = control_grpc.ControlStub(channel)
            cut = cpb.FaultRule(id="cut", action="blackhole", dst=["node-2"])
            healed = control.SetRules(cpb.FaultRuleSet(version=6, seed="1"), timeout=30)
            late = control.SetRules(cpb.FaultRuleSet(version=5, seed="1", rules=[cut]), timeout=30)
            assert (healed.version, late.version) == (6, 6)
            now = control.GetRules(cpb.GetRulesRequest(), timeout=30)
            assert now.version == 6 and list(now.rules) == []
    finally:
        proc.kill()
        proc.wait()
