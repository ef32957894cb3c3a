"""The history format and the checkers, with plain values: each checker passes a good history,
names the events that witness a bad one, and says `vacuous` when there is nothing to check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.history.checkers import (
    ban_hygiene,
    check_all,
    list_completeness,
    ml_task_states,
    no_child_after_ban,
    no_orphans,
    task_lifecycle,
)
from simnode.history import (
    History,
    HistoryError,
    JsonlWriter,
    Recorder,
    header,
    parse,
    read,
)

N1, N2, C = "id-node-1", "id-node-2", "id-coord"
HEAD = header(
    engine="real",
    seed=1,
    nodes=[
        {"name": "coordinator", "id": C},
        {"name": "node-1", "id": N1},
        {"name": "node-2", "id": N2},
    ],
)


def history(*events: tuple[float, str, dict[str, Any]]) -> History:
    lines = [json.dumps(HEAD)] + [json.dumps({"t": t, "type": k, **f}) for t, k, f in events]
    return parse(lines)


def reg(t: float, node: str, task: str, parent: str | None = None, *, cancellable: bool = True):
    return (
        t,
        "task_registered",
        {"node": node, "task": task, "action": "a", "parent": parent, "cancellable": cancellable},
    )


def unreg(t: float, node: str, task: str) -> tuple[float, str, dict[str, Any]]:
    return (t, "task_unregistered", {"node": node, "task": task})


def op(t0: float, t1: float, n: int, method: str, path: str, **done: Any):
    base = {"op": n, "method": method, "path": path}
    return [
        (t0, "invoke", base),
        (t1, "ok", {**base, "status": 200, "digest": "0" * 16, **done}),
    ]


# -- the format -------------------------------------------------------------------------------------


def test_recorder_stamps_events_with_its_clock_and_writer_orders_them(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "h.jsonl"
    writer = JsonlWriter(path, HEAD).open()
    rec = Recorder(lambda: now[0], sink=writer, keep=False)
    now[0] = 0.5
    rec.record("kill", node="node-1")
    rec.add({"t": 0.25, "type": "pause", "node": "node-2"})  # a node's event, shipped late
    listen = rec.listener("node-1")
    now[0] = 1.0
    listen("task_unregistered", {"task": f"{N1}:1"})
    writer.close()
    h = read(path)
    assert h.head["format"] == "tasksim-history" and h.head["version"] == 1
    assert [(e["t"], e["type"], e["node"]) for e in h.events] == [
        (0.25, "pause", "node-2"),
        (0.5, "kill", "node-1"),
        (1.0, "task_unregistered", "node-1"),
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (['{"type":"kill"}'], "first line must be the tasksim-history header"),
        ([json.dumps({**HEAD, "version": 9})], "format version 9"),
        ([json.dumps(HEAD), "nope", '{"t":1,"type":"heal"}'], "<history>:2: not JSON"),
        ([json.dumps(HEAD), '{"t":1,"type":"kill"}'], "<history>:2: a 'kill' event needs node"),
    ],
)
def test_a_bad_history_is_refused_with_its_line(lines: list[str], message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        parse(lines)


# -- every checker: vacuous on nothing --------------------------------------------------------------


def test_a_last_line_cut_short_is_left_out() -> None:
    h = parse([json.dumps(HEAD), '{"t":1,"type":"heal"}', '{"t":2,"type":"ki'])
    assert [e["type"] for e in h.events] == ["heal"]


def test_every_checker_is_vacuous_on_an_empty_history() -> None:
    results = check_all(history())
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(results, "vacuous")


# -- task lifecycle ---------------------------------------------------------------------------------


def test_task_lifecycle() -> None:
    good = history(
        reg(0.1, "node-1", f"{N1}:1"),
        (0.2, "task_cancelled", {"node": "node-1", "task": f"{N1}:1", "reason": "r"}),
        unreg(0.3, "node-1", f"{N1}:1"),
    )
    assert task_lifecycle(good).status == "passed"
    twice = history(reg(0.1, "node-1", f"{N1}:1"), reg(0.2, "node-1", f"{N1}:1"))
    result = task_lifecycle(twice)
    assert result.status == "failed"
    [v] = result.violations
    assert v.events == (0, 1) and "registered while registered" in v.message
    backwards = history(
        reg(0.1, "node-1", f"{N1}:1"),
        unreg(0.2, "node-1", f"{N1}:1"),
        (0.3, "task_cancelled", {"node": "node-1", "task": f"{N1}:1", "reason": "r"}),
    )
    assert "cancelled while gone" in task_lifecycle(backwards).violations[0].message
    # a restarted process counts its ids from 1 again: not a second registration
    restarted = history(
        (0.0, "record_start", {"node": "node-1", "pid": 1}),
        reg(0.1, "node-1", f"{N1}:1"),
        (0.2, "record_end", {"node": "node-1", "reason": "process_ended", "last_seq": 1}),
        (0.3, "record_start", {"node": "node-1", "pid": 2}),
        reg(0.4, "node-1", f"{N1}:1"),
    )
    assert task_lifecycle(restarted).status == "passed"


# -- bans -------------------------------------------------------------------------------------------


def test_no_child_after_ban() -> None:
    parent = f"{N1}:1"
    ban = (0.2, "ban_set", {"node": "node-2", "parent": parent, "reason": "r"})
    lifted = (0.4, "ban_removed", {"node": "node-2", "parent": parent, "why": "unban"})
    ok = history(ban, reg(0.3, "node-2", f"{N2}:1", parent, cancellable=False), lifted)
    assert no_child_after_ban(ok).status == "passed"
    after = history(ban, lifted, reg(0.5, "node-2", f"{N2}:1", parent))
    assert no_child_after_ban(after).status == "passed"
    bad = history(ban, reg(0.3, "node-2", f"{N2}:1", parent), lifted)
    [v] = no_child_after_ban(bad).violations
    assert v.events == (0, 1) and "under the ban of its parent" in v.message


def test_ban_hygiene() -> None:
    parent = f"{N1}:1"
    events = [
        reg(0.0, "node-1", parent),
        (0.2, "ban_set", {"node": "node-2", "parent": parent, "reason": "r"}),
        unreg(1.0, "node-1", parent),
    ]
    lifted = (1.5, "ban_removed", {"node": "node-2", "parent": parent, "why": "unban"})
    assert ban_hygiene(history(*events, lifted)).status == "passed"
    late = (9.0, "ban_removed", {"node": "node-2", "parent": parent, "why": "unban"})
    result = ban_hygiene(history(*events, late))
    [v] = result.violations
    assert v.events == (1, 2, 3) and "more than 5s after its parent ended" in v.message
    # a fault on the ban's node moves the deadline to the end of the fault
    fault = [
        (0.5, "fault_start", {"fault": "f", "kind": "partition", "nodes": ["node-2"]}),
        (8.0, "fault_end", {"fault": "f"}),
    ]
    assert ban_hygiene(history(*events, *fault, late)).status == "passed"
    # never lifted, and the history goes on long enough to tell
    never = history(*events, (20.0, "heal", {}))
    assert "stayed to the end" in ban_hygiene(never).violations[0].message
    # the history ends before the deadline: a note, not a violation
    short = ban_hygiene(history(*events, (2.0, "heal", {})))
    assert short.status == "passed" and short.notes


# -- orphans ----------------------------------------------------------------------------------------


def _tree() -> list[tuple[float, str, dict[str, Any]]]:
    return [reg(0.0, "node-1", f"{N1}:1"), reg(0.1, "node-2", f"{N2}:1", f"{N1}:1")]


def test_no_orphans_after_a_cancel_that_waited() -> None:
    cancel = op(1.0, 2.0, 1, "POST", f"/_tasks/{N1}:1/_cancel?wait_for_completion=true", summary={})
    good = history(
        *_tree(), unreg(1.5, "node-2", f"{N2}:1"), unreg(1.6, "node-1", f"{N1}:1"), *cancel
    )
    assert no_orphans(good).status == "passed"
    bad = history(*_tree(), *cancel, unreg(3.0, "node-2", f"{N2}:1"))
    [v] = no_orphans(bad).violations
    assert "was still registered when the cancel with wait_for_completion answered" in v.message
    assert v.events == (1, 2, 3)  # the child's registration, the invoke, the answer
    # node-2 was cut off during the cancel: its turn comes after the heal
    cut = [(0.5, "fault_start", {"fault": "p", "kind": "partition", "nodes": ["node-2"]})]
    assert no_orphans(history(*_tree(), *cut, *cancel)).status == "passed"
    # ...but after the heal it must go
    healed = [
        (3.0, "fault_end", {"fault": "p"}),
        (3.0, "heal", {}),
        (20.0, "kill", {"node": "node-1"}),
    ]
    stuck = no_orphans(history(*_tree(), *cut, *cancel, *healed))
    assert "5s after the last heal" in stuck.violations[0].message
    gone = history(*_tree(), *cut, *cancel, *healed[:2], unreg(4.0, "node-2", f"{N2}:1"), healed[2])
    assert no_orphans(gone).status == "passed"


# -- lists ------------------------------------------------------------------------------------------


def test_list_completeness() -> None:
    every = {"nodes": [C, N1, N2], "node_failures": []}
    assert list_completeness(history(*op(0, 0.2, 1, "GET", "/_tasks", summary=every))).status == (
        "passed"
    )
    missing = {"nodes": [C, N1], "node_failures": []}
    [v] = list_completeness(history(*op(0, 0.2, 1, "GET", "/_tasks", summary=missing))).violations
    assert "node-2 was in the cluster for the whole request" in v.message and v.events == (0, 1)
    twice = {"nodes": [C, N1, N2], "node_failures": [N2]}
    [v] = list_completeness(history(*op(0, 0.2, 1, "GET", "/_tasks", summary=twice))).violations
    assert "node-2 is accounted for twice" in v.message
    slow = history(*op(0, 5.0, 1, "GET", "/_tasks?timeout=1s", summary=every))
    [v] = list_completeness(slow).violations
    assert "more than its timeout 1s" in v.message
    # a node that left the cluster before the request is not owed an answer
    left = (0.0, "node_left", {"node": "node-2"})
    after_left = history(left, *op(0.1, 0.2, 1, "GET", "/_tasks", summary=missing))
    assert list_completeness(after_left).status == "passed"
    # filtered lists only show nodes with matching tasks: not checked
    assert (
        list_completeness(
            history(*op(0, 0.2, 1, "GET", "/_tasks?actions=x", summary=missing))
        ).status
        == "vacuous"
    )


# -- ML task states ---------------------------------------------------------------------------------


def ml(t: float, state: str, previous: str | None) -> tuple[float, str, dict[str, Any]]:
    return (
        t,
        "ml_task_state",
        {"ml_task": "m1", "state": state, "previous": previous, "task_type": "DEPLOY_MODEL"},
    )


def test_ml_task_states() -> None:
    good = history(
        ml(0, "CREATED", None), ml(1, "RUNNING", "CREATED"), ml(2, "COMPLETED", "RUNNING")
    )
    assert ml_task_states(good).status == "passed"
    bad = history(
        ml(0, "CREATED", None), ml(1, "COMPLETED", "CREATED"), ml(2, "RUNNING", "COMPLETED")
    )
    [v] = ml_task_states(bad).violations
    assert "COMPLETED → RUNNING" in v.message and v.events == (1, 2)
