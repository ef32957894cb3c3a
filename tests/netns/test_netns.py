"""A real 3-node cluster whose nodes run in network namespaces (`tasksim up --hosts netns`), and
`level: net` faults cut by nftables: what a user sees of the addresses, a black hole with and
without a request timeout, a disconnect, a partition and its heal, packet loss.

Follower checks are shortened (0.5 s, 2 s timeout, 2 retries) so that a black-holed node leaves
the cluster in seconds. Every test heals the cluster on the way out, also when it fails."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.engine.netns import STATE_DIR
from tests.harness import RunningCluster, running_cluster

pytestmark = pytest.mark.cluster

FAULT_DETECTION = "fault_detection: {interval: 500ms, timeout: 2s, retries: 2}\n"
JSON = {"Content-Type": "application/json"}
WITHIN = 30.0  # a generous bound that a loaded machine meets


def wait_until(what: str, check: Callable[[], bool], within: float = WITHIN) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with tempfile.TemporaryDirectory(prefix="tasksim-netns-") as tmp:
        config = Path(tmp) / "cluster.yaml"
        config.write_text("nodes: 3\n" + FAULT_DETECTION)
        with running_cluster("--hosts", "netns", "--config", str(config), nodes=3) as c:
            yield c


def members(cluster: RunningCluster) -> set[str]:
    status, body, _ = cluster.request("GET", "/_cat/nodes?h=name&format=json&timeout=5s")
    assert status == 200, body
    return {row["name"] for row in body}


@pytest.fixture
def healed(cluster: RunningCluster) -> Iterator[RunningCluster]:
    """Heal after the test, whatever happened, and wait until every node is a member again."""
    try:
        yield cluster
    finally:
        status, body, _ = cluster.request("POST", "/_sim/faults/_heal")
        assert status == 200 and body["acknowledged"], body
        everyone = {"coordinator", "node-1", "node-2", "node-3"}
        wait_until("every node back in the cluster", lambda: members(cluster) == everyone)


def install(cluster: RunningCluster, kind: str, spec: dict[str, Any]) -> str:
    return cluster.sim.install(kind, spec).id


def list_tasks(cluster: RunningCluster, query: str = "") -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    status, body, _ = cluster.request("GET", f"/_tasks{query}")
    assert status == 200, body
    return time.monotonic() - started, body


def failed(body: dict[str, Any]) -> dict[str, str]:
    """node id → the type of its failure's cause."""
    return {f["node_id"]: f["caused_by"]["type"] for f in body.get("node_failures", [])}


def namespace_rules(cluster: RunningCluster, node: str) -> str:
    states = [json.loads(p.read_text()) for p in STATE_DIR.glob("*.json")]
    # This cluster's (another tasksim may run on the machine).
    state = next(s for s in states if s["owner_pid"] == cluster.process.pid)
    ns = state["nodes"][node]["namespace"]
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "ruleset"], capture_output=True, text=True
    )
    return done.stdout


def test_nodes_show_their_own_addresses(cluster: RunningCluster) -> None:
    status, body, _ = cluster.request("GET", "/_nodes")
    assert status == 200
    addresses = {n["name"]: n for n in body["nodes"].values()}
    subnet = ipaddress.ip_network(addresses["coordinator"]["host"] + "/24", strict=False)
    hosts = [addresses[f"node-{i}"]["host"] for i in (1, 2, 3)]
    assert len(set(hosts)) == 3 and "127.0.0.1" not in hosts
    for i, host in enumerate(hosts, start=1):
        node = addresses[f"node-{i}"]
        assert ipaddress.ip_address(host) in subnet
        assert node["ip"] == host
        assert node["transport_address"] == f"{host}:9300"
        assert cluster.node(f"node-{i}").id in body["nodes"]
    _, tasks = list_tasks(cluster)
    assert {n["host"] for n in tasks["nodes"].values()} >= set(hosts)
    status, rows, _ = cluster.request("GET", "/_cat/nodes?h=name,ip,port&format=json")
    assert {r["name"]: (r["ip"], r["port"]) for r in rows}["node-2"] == (hosts[1], "9300")
    assert cluster.url.startswith("http://127.0.0.1:")  # the REST API stays on loopback


def test_blackholed_node_under_a_timeout_times_out(healed: RunningCluster) -> None:
    cluster = healed
    install(cluster, "link", {"id": "bh", "action": "blackhole", "to": "node-2", "level": "net"})
    status, faults, _ = cluster.request("GET", "/_sim/faults")
    assert [(f["id"], f["level"]) for f in faults["faults"]] == [("bh", "net")]
    assert 'comment "tasksim:bh"' in namespace_rules(cluster, "node-2")
    took, body = list_tasks(cluster, "?timeout=1s")
    assert failed(body) == {cluster.node("node-2").id: "receive_timeout_transport_exception"}
    assert 0.9 <= took < 10
    # Another fault's install rebuilds the tables; what bh cut so far is kept.
    cut = cluster.sim.faults()["faults"][0]["packets_cut"]
    assert cut > 0
    install(
        cluster, "link", {"id": "other", "action": "drop_request", "to": "node-3", "level": "net"}
    )
    assert cluster.sim.faults()["faults"][0]["packets_cut"] >= cut
    # The control channel is not cut: the node still takes rule pushes and inspection.
    status, nodes, _ = cluster.request("GET", "/_sim/nodes")
    assert status == 200
    assert nodes["nodes"]["node-2"]["reachable"] is True


def test_blackholed_node_without_a_timeout_leaves_by_follower_checks(
    healed: RunningCluster,
) -> None:
    cluster = healed
    install(cluster, "link", {"action": "blackhole", "to": "node-2", "level": "net"})
    took, body = list_tasks(cluster)
    # The request waits for node-2 until the follower checks (0.5 s, 2 s timeout, 2 retries)
    # remove it from the cluster; then it answers with node-2 failed.
    assert failed(body) == {cluster.node("node-2").id: "node_disconnected_exception"}
    assert 2.0 <= took < WITHIN
    assert "node-2" not in members(cluster)


def test_disconnected_node_fails_fast(healed: RunningCluster) -> None:
    cluster = healed
    install(cluster, "link", {"action": "disconnect", "to": "node-2", "level": "net"})
    took, body = list_tasks(cluster)
    # The reset closes the connection under the request (node_disconnected_exception), or a
    # follower check met it first and the channel is already known closed when the list is sent
    # (node_not_connected_exception, as OpenSearch's ConnectionManager answers then).
    assert set(failed(body)) == {cluster.node("node-2").id}
    assert failed(body)[cluster.node("node-2").id] in (
        "node_disconnected_exception",
        "node_not_connected_exception",
    )
    # A TCP reset, not a deadline: a black hole waits for the follower checks (4 s and more).
    # (The callee's reset passes the link's other rule, which would otherwise eat it.)
    assert took < 3.0
    assert "reject with tcp reset" in namespace_rules(cluster, "node-2")
    wait_until(
        "node-2 out (a refused connection fails a follower check at once)",
        lambda: "node-2" not in members(cluster),
    )


def test_partition_and_its_heal(healed: RunningCluster) -> None:
    cluster = healed
    fault = install(cluster, "partition", {"groups": [["node-1"]], "level": "net"})
    _, body = list_tasks(cluster, "?timeout=1s")
    assert set(failed(body)) == {cluster.node("node-1").id}
    # node-1 is cut from node-2 too: a child task there cannot be started from node-1.
    assert "drop" in namespace_rules(cluster, "node-2")
    status, _, _ = cluster.request("DELETE", f"/_sim/faults/{fault}")
    assert status == 200
    assert "tasksim" not in namespace_rules(cluster, "node-2")
    wait_until("node-1 answers again", lambda: not failed(list_tasks(cluster, "?timeout=1s")[1]))


def test_packet_loss_is_retransmitted(healed: RunningCluster) -> None:
    cluster = healed
    install(cluster, "link", {"action": "loss", "to": "node-3", "p": 0.3, "level": "net"})
    rules = namespace_rules(cluster, "node-3")
    assert "numgen random mod 1000 < 300" in rules
    # TCP retransmits what is lost: the requests are slower, but they all get their answer.
    dropped = 0
    for _ in range(40):
        _, body = list_tasks(cluster, "?timeout=20s")
        assert failed(body) == {}
        dropped = sum(dropped_packets(namespace_rules(cluster, "node-3")))
        if dropped:
            break
    assert dropped > 0  # packets were lost (each rule counts what it drops), none of the calls
    cut = cluster.sim.faults()["faults"][0]
    assert cut["level"] == "net" and cut["packets_cut"] >= dropped


def dropped_packets(ruleset: str) -> list[int]:
    """The `counter packets N` of each rule."""
    words = ruleset.split()
    return [int(words[i + 1]) for i, w in enumerate(words) if w == "packets"]


def test_net_level_refusals(cluster: RunningCluster) -> None:
    for spec, says in (
        ({"link": {"action": "drop_response", "to": "node-2", "level": "net"}}, "drop_response"),
        ({"link": {"action": "delay", "latency": "1s", "level": "net"}}, "netem"),
        ({"link": {"action": "blackhole", "methods": ["ListTasks"], "level": "net"}}, "methods"),
        ({"slow": {"node": "node-2", "latency": "1s", "level": "net"}}, "netem"),
    ):
        status, body, _ = cluster.request(
            "POST", "/_sim/faults", body=json.dumps(spec).encode(), headers=JSON
        )
        assert status == 400, body
        assert body["error"]["type"] == "illegal_argument_exception"
        assert says in body["error"]["reason"] and "transport-level" in body["error"]["reason"]


def test_restart_keeps_the_address_and_answers_at_once(healed: RunningCluster) -> None:
    cluster = healed

    def address() -> str:
        _, body, _ = cluster.request("GET", "/_nodes")
        return str(next(n for n in body["nodes"].values() if n["name"] == "node-2")["host"])

    before = address()
    pid = cluster.sim.nodes()["node-2"]["pid"]
    status, state, _ = cluster.request("POST", "/_sim/nodes/node-2/restart")
    assert status == 200 and state["pid"] != pid and state["transport_address"] == f"{before}:9300"
    assert address() == before
    # The kernel reset the old process's connections; the peers reach the new one at once.
    took, body = list_tasks(cluster, "?timeout=5s")
    assert failed(body) == {} and took < 3.0
