"""The testing kit's engine-neutral pieces: `wait_for` on a cluster's clock, a simulated cluster's
harness API, background requests in a world, and one seed giving one run."""

from __future__ import annotations

import json
import time

import pytest

from coordinator.testing import Snapshot, sim_config, simulated_cluster
from coordinator.testing.model import wait_for


class CountingClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_wait_for_polls_on_the_clock_it_is_given() -> None:
    clock = CountingClock()
    values = iter(range(100))
    started = time.monotonic()
    got = wait_for(lambda: next(values), lambda v: v >= 3, timeout=10, interval=0.5, clock=clock)
    assert got == 3 and clock.sleeps == [0.5, 0.5, 0.5]
    never = wait_for(lambda: 0, lambda v: v > 0, timeout=2, interval=0.5, clock=clock)
    assert never == 0 and clock.t == pytest.approx(100.0 + 1.5 + 2.0)
    assert time.monotonic() - started < 1.0  # no wall second was slept


def test_a_simulated_cluster_offers_the_harness_api() -> None:
    with simulated_cluster(sim_config(2, fault_detection=False), seed=11) as cluster:
        assert cluster.engine == "sim"
        assert cluster.names == ["coordinator", "node-1", "node-2"]
        assert cluster.url == "http://127.0.0.1:9200"
        node = cluster.node("node-2")
        assert cluster.name_of(node.id) == "node-2" and node.address == "127.0.0.1:9302"
        status, body, headers = cluster.request("GET", "/_tasks?nodes=node-2")
        assert status == 200 and list(body["nodes"]) == [node.id]
        assert headers["Content-Type"].startswith("application/json")
        status, body = cluster.get("/_tasks/nope")
        assert status == 400 and body["error"]["type"] == "illegal_argument_exception"


def test_a_background_request_moves_only_while_the_driver_waits() -> None:
    """A list without a timeout waits for a paused node: it is still waiting after 5 s of virtual
    time, and answers once the node is resumed."""
    with simulated_cluster(sim_config(3, fault_detection=False), seed=3) as cluster:
        sim = cluster.sim
        sim.pause("node-3")
        before = cluster.clock.now()
        pending = sim.in_background("GET", "/_tasks?nodes=node-3")
        assert not pending.done() and cluster.clock.now() == before
        with pytest.raises(TimeoutError):
            pending.result(timeout=5)
        assert cluster.clock.now() == pytest.approx(before + 5)
        sim.resume("node-3")
        resp = pending.result(timeout=5)
        assert resp.status == 200 and resp.elapsed >= 5
        assert [n["name"] for n in resp.body["nodes"].values()] == ["node-3"]


def run(seed: int) -> str:
    with simulated_cluster(sim_config(3, fault_detection=False), seed=seed) as cluster:
        sim = cluster.sim
        root = sim.start_task(
            {"node": "node-1", "children": [{"node": "node-2"}, {"node": "node-3"}]}
        )[0]
        sim.partition(["node-3"])
        answers = [
            sim.request("GET", "/_tasks?timeout=300ms&detailed").body,
            sim.heal(),
            sim.request("POST", f"/_tasks/{root}/_cancel?wait_for_completion=true").body,
            Snapshot.read(sim).raw,
            cluster.clock.now(),
        ]
    return json.dumps(answers, sort_keys=True)


def test_one_seed_one_run() -> None:
    assert run(5) == run(5)
    assert run(5) != run(6)  # other ids, times and latencies
