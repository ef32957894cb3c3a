"""The sim engine records the same history as the real one (same event types and fields, through
the same recorder, on virtual time), byte for byte the same for the same seed, and the checkers
read it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.engine.sim import SimEngine, run_sim
from coordinator.history.checkers import check_all
from coordinator.history.recording import run_header
from simnode.history import Recorder, read, write

CONFIG = ClusterConfig.with_nodes(3, fault_detection=FaultDetection(enabled=False))
TREE = {
    "node": "node-1",
    "action": "indices:data/write/reindex",
    "children": [
        {"node": "node-2", "action": "indices:data/read/search"},
        {"node": "node-3", "action": "indices:data/read/search"},
    ],
}


def record(seed: int, path: Path) -> None:
    async def main(engine: SimEngine) -> None:
        t0 = trio.current_time()
        recorder = Recorder(lambda: trio.current_time() - t0)
        async with engine.cluster(CONFIG, recorder=recorder) as (_cluster, client):
            started = await client.request("POST", "/_sim/tasks", TREE)
            root = started.body["task"]
            await trio.sleep(0.5)
            await client.request("POST", "/_sim/faults", {"partition": {"groups": [["node-3"]]}})
            answers: list[Any] = []

            async def cancel() -> None:
                path = f"/_tasks/{root}/_cancel?wait_for_completion=true"
                answers.append(await client.request("POST", path, timeout=60))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel)
                await trio.sleep(1)  # the ban to node-3 is held by the partition
                listed = await client.request("GET", "/_tasks?timeout=1s")
                assert listed.status == 200
                await client.request("POST", "/_sim/faults/_heal")
            assert answers[0].status == 200, answers[0].body
            await trio.sleep(10)  # virtual seconds: everything settles
        write(path, run_header(replace(CONFIG, seed=seed), engine="sim"), recorder.events)

    run_sim(main, seed=seed)


def test_the_sim_engine_records_the_history_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    record(11, first)
    record(11, second)
    assert first.read_bytes() == second.read_bytes()
    history = read(first)
    assert history.head["engine"] == "sim" and history.head["seed"] == 11
    kinds = {e["type"] for e in history.events}
    assert {
        "record_start",
        "invoke",
        "ok",
        "task_registered",
        "task_cancelled",
        "task_unregistered",
        "ban_set",
        "ban_removed",
        "rpc_send",
        "rpc_deliver",
        "fault_start",
        "fault_end",
        "heal",
        "record_end",
    } <= kinds
    # every node's lifecycle is there, named as on the real engine
    registered: dict[str, Any] = {}
    for e in history.of_type("task_registered"):
        registered.setdefault(e["node"], e)
    assert set(registered) >= {"coordinator", "node-1", "node-2", "node-3"}
    results = check_all(history)
    statuses = {n: r.status for n, r in results.items()}
    assert statuses == {
        "task_lifecycle": "passed",
        "no_child_after_ban": "passed",
        "ban_hygiene": "passed",
        "no_orphans": "passed",
        "list_completeness": "passed",
        "ml_task_states": "vacuous",
    }, {n: r.violations for n, r in results.items()}
