"""The sim engine's core: virtual time, seeded scheduling, the in-memory links and what each fault
and process fault does there — seen through the REST API, as a user of the engine sees it.

Every test runs a whole simulated cluster in this process (`run_sim`); none reads wall time.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
import trio

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.engine.sim import AsgiClient, SimEngine, SimStuck, SimWorld, run_sim
from simnode.sim.clock import VirtualClock, deterministic_scheduling, epoch_millis_for
from simnode.sim.network import SimNetwork

THREE = ClusterConfig.with_nodes(3, fault_detection=FaultDetection(enabled=False))
TREE = {
    "node": "node-1",
    "action": "indices:data/write/reindex",
    "children": [
        {"node": "node-2", "action": "indices:data/write/bulk[s]"},
        {"node": "node-3", "action": "indices:data/write/bulk[s]"},
    ],
}


def sim(fn: Any, *, seed: int = 7, config: ClusterConfig = THREE) -> Any:
    async def main(engine: SimEngine) -> Any:
        async with engine.cluster(config) as (cluster, client):
            return await fn(cluster, client)

    return run_sim(main, seed=seed)


def failures(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["node_id"], f["caused_by"]["type"]) for f in body.get("node_failures", [])]


def ids(cluster: Any) -> dict[str, str]:
    return {n.name: n.id for n in cluster.state.nodes}


# -- the clock and the scheduler ----------------------------------------------------------------


def test_virtual_time_jumps_to_the_next_deadline_without_waiting() -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, float]:
        start = trio.current_time()
        await trio.sleep(3600)  # an hour, at once
        return start, trio.current_time()

    start, end = trio.run(main, clock=clock)
    assert (start, end) == (0.0, 3600.0)
    assert clock.jumps >= 1


def test_the_scheduler_switches_trio_uses_still_exist() -> None:
    """deterministic_scheduling relies on two trio internals; a trio upgrade must not drop them."""
    from trio._core import _run

    assert hasattr(_run, "_r") and hasattr(_run, "_ALLOW_DETERMINISTIC_SCHEDULING")
    before = _run._r.getstate()
    allowed = _run._ALLOW_DETERMINISTIC_SCHEDULING
    with deterministic_scheduling(5):
        assert _run._ALLOW_DETERMINISTIC_SCHEDULING is True
    assert _run._ALLOW_DETERMINISTIC_SCHEDULING is allowed  # restored
    assert _run._r.getstate() == before


def test_the_simulated_wall_clock_starts_at_an_epoch_of_the_seed() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> int:
        r = await client.request("POST", "/_sim/tasks", TREE)
        got = await client.request("GET", f"/_tasks/{r.body['task']}")
        return int(got.body["task"]["start_time_in_millis"])

    started = sim(fn, seed=11)
    # Started within the first simulated seconds after the seed's epoch.
    assert 0 <= started - epoch_millis_for(11) < 5_000
    assert epoch_millis_for(11) != epoch_millis_for(12)


def test_one_seed_replays_the_same_run_and_another_explores_another() -> None:
    def trace(seed: int) -> str:
        events: list[str] = []

        async def main(engine: SimEngine) -> None:
            engine.network.on_message = lambda kind, call: events.append(
                f"{trio.current_time():.9f} {kind} {call.env.src}>{call.node.name} "
                f"{call.method}#{call.env.seq}"
            )
            async with engine.cluster(THREE) as (_cluster, client):
                await client.request("POST", "/_sim/tasks", TREE)
                for path in (
                    "/_tasks?detailed",
                    "/_cat/tasks?v",
                    "/_tasks?group_by=parents",
                    "/_cat/nodes?v",  # no machine numbers: a simulated node has no process
                ):
                    answer = await client.request("GET", path)
                    events.append(json.dumps(answer.body, sort_keys=True))
                await client.request("POST", "/_tasks/_cancel?actions=*reindex")

        run_sim(main, seed=seed)
        return "\n".join(events)

    first = trace(3)
    assert first == trace(3)
    assert first != trace(4)


def test_no_thread_and_no_socket_in_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sim engine opened a socket")

    threads = threading.active_count()

    async def fn(cluster: Any, client: AsgiClient) -> None:
        monkeypatch.setattr(socket, "socket", no_socket)
        await client.request("POST", "/_sim/tasks", TREE)
        await client.request("GET", "/_tasks?timeout=1s")
        # pretty and filter_path answers are rendered off the loop on the real engine (a worker
        # thread): inline here
        pretty = await client.request("GET", "/_tasks?pretty&filter_path=nodes.*.name")
        assert pretty.status == 200 and set(pretty.body) == {"nodes"}
        await client.request("POST", "/_sim/nodes/node-2/kill")
        await client.request("POST", "/_sim/faults/_heal")
        assert threading.active_count() == threads

    sim(fn)


# -- what faults do on the in-memory links --------------------------------------------------------


def test_a_paused_node_times_out_at_exactly_the_timeout_and_answers_after_resume() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        node3 = ids(cluster)["node-3"]
        await client.request("POST", "/_sim/nodes/node-3/pause")
        listed = await client.request("GET", "/_tasks?timeout=1500ms")
        assert listed.status == 200
        assert failures(listed.body) == [(node3, "receive_timeout_transport_exception")]
        assert 1.5 <= listed.elapsed < 1.51  # virtual: the timeout plus message latencies
        await client.request("POST", "/_sim/nodes/node-3/resume")
        again = await client.request("GET", "/_tasks?timeout=1500ms")
        assert failures(again.body) == []
        assert again.elapsed < 0.01

    sim(fn)


def test_a_killed_node_is_not_connected_and_a_restarted_one_has_an_empty_registry() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        node2 = ids(cluster)["node-2"]
        started = await client.request("POST", "/_sim/tasks", TREE)
        assert started.status == 200
        killed = await client.request("POST", "/_sim/nodes/node-2/kill")
        assert killed.body["alive"] is False and killed.body["pid"] is None
        listed = await client.request("GET", "/_tasks?timeout=1s")
        assert failures(listed.body) == [(node2, "node_not_connected_exception")]
        assert listed.elapsed < 0.01  # fails at once
        restarted = await client.request("POST", "/_sim/nodes/node-2/restart")
        assert restarted.body["alive"] is True and restarted.body["restarts"] == 1
        on_node2 = await client.request("GET", "/_tasks?nodes=node-2&actions=indices:*")
        assert on_node2.body["nodes"] == {}

    sim(fn)


def test_a_node_killed_under_a_request_fails_it_with_node_disconnected() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        node2 = ids(cluster)["node-2"]
        # node-2 is slow: the list is being served there when node-2 dies.
        await client.request("POST", "/_sim/faults", {"slow": {"node": "node-2", "latency": "5s"}})
        async with trio.open_nursery() as nursery:

            async def kill_soon() -> None:
                await trio.sleep(1)
                await client.request("POST", "/_sim/nodes/node-2/kill")

            nursery.start_soon(kill_soon)
            listed = await client.request("GET", "/_tasks?timeout=10s")
        assert failures(listed.body) == [(node2, "node_disconnected_exception")]
        assert 0.99 < listed.elapsed < 1.01  # at the kill, not at the slow handler's end

    sim(fn)


def test_a_disconnected_link_fails_fast_and_a_blackhole_holds_until_the_deadline() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        node2, node3 = ids(cluster)["node-2"], ids(cluster)["node-3"]
        body = {
            "link": {"from": "coordinator", "to": "node-2", "action": "disconnect"},
        }
        assert (await client.request("POST", "/_sim/faults", body)).status == 200
        body = {"link": {"from": "coordinator", "to": "node-3", "action": "blackhole"}}
        assert (await client.request("POST", "/_sim/faults", body)).status == 200
        listed = await client.request("GET", "/_tasks?timeout=2s")
        assert sorted(failures(listed.body)) == sorted(
            [
                (node2, "connect_transport_exception"),
                (node3, "receive_timeout_transport_exception"),
            ]
        )
        assert 2.0 <= listed.elapsed < 2.01

    sim(fn)


def test_a_child_start_held_by_a_blackhole_is_delivered_late_after_heal() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        body = {"link": {"from": "node-1", "to": "node-2", "action": "blackhole"}}
        await client.request("POST", "/_sim/faults", body)
        started = await client.request("POST", "/_sim/tasks", TREE)
        root = started.body["task"]
        await trio.sleep(30)  # held: node-2 never hears of its child
        on2 = await client.request("GET", f"/_tasks?nodes=node-2&parent_task_id={root}")
        assert on2.body["nodes"] == {}
        await client.request("POST", "/_sim/faults/_heal")
        await trio.sleep(0.1)
        on2 = await client.request("GET", f"/_tasks?nodes=node-2&parent_task_id={root}")
        assert len(on2.body["nodes"]) == 1  # delivered late, as TCP retransmission would

    sim(fn)


def test_drop_response_loses_the_answer_and_the_caller_times_out() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        node1 = ids(cluster)["node-1"]
        body = {
            "link": {
                "from": "coordinator",
                "to": "node-1",
                "action": "drop_response",
                "methods": ["ListTasks"],
            }
        }
        await client.request("POST", "/_sim/faults", body)
        listed = await client.request("GET", "/_tasks?timeout=750ms")
        assert failures(listed.body) == [(node1, "receive_timeout_transport_exception")]
        assert 0.75 <= listed.elapsed < 0.76
        faults = await client.request("GET", "/_sim/nodes")
        assert faults.body["nodes"]["coordinator"]["hits"] == {"link-1": 1}

    sim(fn)


def test_a_thousand_node_fan_out_runs_in_one_process() -> None:
    config = ClusterConfig.with_nodes(1000, fault_detection=FaultDetection(enabled=False))

    async def fn(cluster: Any, client: AsgiClient) -> tuple[int, int]:
        listed = await client.request("GET", "/_tasks?actions=cluster:monitor/tasks/lists*")
        return listed.status, len(listed.body["nodes"])

    assert sim(fn, config=config) == (200, 1001)


def test_the_network_refuses_calls_before_it_runs() -> None:
    network = SimNetwork(1)
    with pytest.raises(AssertionError, match="not running"):
        network.spawn(trio.sleep, 0)


def test_a_bug_in_a_task_on_a_simulated_node_fails_that_task_alone() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> None:
        body = {"node": "node-2", "action": "indices:data/write/reindex", "bug": "work"}
        failed = await client.request("POST", "/_sim/tasks?wait_for_completion=true", body)
        assert failed.status == 500, failed.body
        assert failed.body["error"]["type"] == "exception"
        assert failed.body["error"]["reason"].startswith("SimulatedBug")
        listed = await client.request("GET", "/_tasks?timeout=1s")
        assert listed.status == 200 and failures(listed.body) == []

    sim(fn)


def test_cat_nodes_shows_the_numbers_of_an_idle_simulated_node_not_the_machine_s() -> None:
    async def fn(cluster: Any, client: AsgiClient) -> list[dict[str, str]]:
        columns = "name,heap.max,ram.max,file_desc.max,cpu,load_1m"
        answer = await client.request("GET", f"/_cat/nodes?format=json&h={columns}")
        assert answer.status == 200
        return answer.body  # type: ignore[no-any-return]

    numbers = {"heap.max": "512mb", "ram.max": "4gb", "file_desc.max": "65536", "cpu": "0"}
    rows = sim(fn)
    assert [r["name"] for r in rows] == ["coordinator", "node-1", "node-2", "node-3"]
    assert all(r == {"name": r["name"], **numbers, "load_1m": "0.00"} for r in rows), rows


# -- a stuck simulated system fails, it does not hang --------------------------------------------


def test_a_deadlocked_run_fails_with_its_seed_instead_of_hanging() -> None:
    """Nothing runnable and no timer: without the limit the clock would sleep for real, forever."""

    async def main(engine: SimEngine) -> None:
        await trio.Event().wait()  # never set: the simulated system is deadlocked

    with pytest.raises(SimStuck, match=r"within 60 s of virtual time \(seed 5\)") as stuck:
        run_sim(main, seed=5, limit=60)
    assert stuck.value.seed == 5


def test_a_livelocked_run_fails_once_its_virtual_time_is_spent() -> None:
    """A cluster's follower checks keep virtual time moving; the awaited thing never happens."""
    moved: list[float] = []

    async def main(engine: SimEngine) -> None:
        async with engine.cluster(THREE):
            moved.append(trio.current_time())
            await trio.Event().wait()

    with pytest.raises(SimStuck, match="livelocked"):
        run_sim(main, seed=6, limit=120)
    assert moved  # the cluster was up; the limit, not a crash, ended the run


def test_a_stuck_call_into_a_world_fails_and_the_world_goes_on() -> None:
    with SimWorld(THREE, seed=8, limit=30) as world:
        before = world.now()
        with pytest.raises(SimStuck, match="a call into the simulated world"):
            world.call(lambda: trio.Event().wait())
        assert world.now() - before == pytest.approx(30, abs=1)
        assert world.request("GET", "/_cluster/health").status == 200  # still serving
