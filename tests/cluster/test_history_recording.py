"""`tasksim up --record FILE` with real processes: the history holds the client operations, the
faults, the calls between processes and every node's task lifecycle (shipped over the control
channel); a killed node keeps
what it had sent, and the history says where its record ends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from coordinator.history.checkers import check_all
from simnode.history import FORMAT, VERSION, read
from tests.harness import running_cluster
from tests.support import spec, start, wait_for_tasks


def _events(path: Path) -> list[dict[str, Any]]:
    """What the file holds now (written as recorded; the last line may be partial)."""
    out = []
    for line in path.read_text().splitlines()[1:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _wait_for(path: Path, pred: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = _events(path) if path.exists() else []
        if any(pred(e) for e in events) or time.monotonic() > deadline:
            seen = "\n".join(
                f"{e['t']} {e['type']} {e.get('node')} {e.get('reason', '')}"
                for e in events
                if not e["type"].startswith("rpc_")
            )
            assert any(pred(e) for e in events), seen
            return events
        time.sleep(0.05)


def test_record_a_killed_node_keeps_what_it_sent(tmp_path: Path) -> None:
    record = tmp_path / "history.jsonl"
    with running_cluster("--record", str(record), nodes=2, seed=13) as cluster:
        node2 = cluster.node("node-2").id
        tree = spec(
            "indices:data/write/reindex",
            children=[(node2, spec("indices:data/read/search"))],
        )
        [root] = start(cluster, "node-1", tree)
        wait_for_tasks(cluster, "indices:data/*", 2)

        def child_on_node2(e: dict[str, Any]) -> bool:
            return e["type"] == "task_registered" and e["node"] == "node-2" and e["parent"] == root

        _wait_for(record, child_on_node2)  # the node shipped it: nothing may lose it now
        cluster.sim.kill("node-2")
        status, _ = cluster.get("/_tasks?timeout=2s")
        assert status == 200
        _wait_for(
            record,
            lambda e: (
                e["type"] == "record_end"
                and e["node"] == "node-2"
                and e["reason"] == "process_ended"
            ),
        )
    history = read(record)
    head = history.head
    assert head["format"] == FORMAT and head["version"] == VERSION and head["engine"] == "real"
    assert head["seed"] == 13
    assert [n["name"] for n in head["nodes"]] == ["coordinator", "node-1", "node-2"]
    events = history.events
    assert [float(e["t"]) for e in events] == sorted(float(e["t"]) for e in events)
    kinds = [e["type"] for e in events]
    # the child registered on node-2 before the kill, and node-2's record ends after it
    child = next(i for i, e in enumerate(events) if child_on_node2(e))
    kill = kinds.index("kill")
    end = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "record_end" and e["node"] == "node-2" and e["reason"] == "process_ended"
    )
    assert child < kill < end
    assert events[end]["last_seq"] >= events[child]["seq"]
    assert not any(
        e.get("node") == "node-2" and e["type"].startswith("task_") for e in events[end:]
    )
    # the root's lifecycle on node-1, the list's fan-out on every live node
    assert any(
        e["type"] == "task_registered" and e["node"] == "node-1" and e["task"] == root
        for e in events
    )
    # client operations: every invoke has exactly one completion
    ops = [e for e in events if e["type"] in ("invoke", "ok", "fail", "info")]
    invokes = {e["op"] for e in ops if e["type"] == "invoke"}
    done = [e["op"] for e in ops if e["type"] != "invoke"]
    assert sorted(done) == sorted(invokes)
    lists = [e for e in ops if e["type"] == "ok" and e["path"] == "/_tasks?timeout=2s"]
    assert lists and lists[0]["status"] == 200 and len(lists[0]["digest"]) == 16
    # transport: the list's ListTasks to node-1 was sent and delivered, the one to the dead
    # node-2 failed without an answer (a drop, with why)
    sent = [e for e in events if e["type"] == "rpc_send" and e["method"] == "ListTasks"]
    to_node1 = [e for e in sent if e["node"] == "coordinator" and e["to"] == "node-1"]
    assert to_node1 and to_node1[0]["verdict"] == "pass"
    assert any(
        e["type"] == "rpc_deliver" and e["call"] == to_node1[-1]["call"] and e["to"] == "node-1"
        for e in events
    )
    assert any(
        e["type"] == "rpc_drop" and e["to"] == "node-2" and e["verdict"] for e in events[kill:]
    )
    results = check_all(history)
    assert results["task_lifecycle"].status == "passed", results["task_lifecycle"].violations
    assert results["list_completeness"].status == "passed"
    assert results["ban_hygiene"].status == "vacuous"  # nothing was cancelled: nothing to check
