"""Depth is never a crash: task trees, answers and request bodies of any depth (issue 14, defect 3).

A chain of ~490 tasks made `GET _cat/tasks` and `GET _tasks?group_by=parents` answer 500
(RecursionError), from ~250 with `pretty`. Answers are now built and written without recursion
(coordinator/render.py, coordinator/cat.py, coordinator/http.py, simnode/jsontext.py); request
bodies deeper than Jackson's 1000 levels, and `/_sim/tasks` trees deeper than a protobuf message
holds, are 400s in OpenSearch's envelope.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

import coordinator.http as http
from coordinator.cat import CatOptions, render_text, tasks_rows, tasks_table
from coordinator.http import RestRequest, dump_json, filter_path
from coordinator.params import Params
from coordinator.render import TasksResult, error_envelope, task_groups, tasks_response
from coordinator.simspec import MAX_TREE_DEPTH, parse_sim_request
from simnode import jsontext
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import IllegalArgumentError, ParseError
from simnode.registry import TaskInfo
from simnode.taskid import TaskId

DEEP = 3000  # far past Python's recursion limit (1000) and past any depth the issue saw
NODE = DiscoveryNode("AAAAAAA", "node-a", ip="10.0.0.1", port=9300)
STATE = ClusterState(cluster_manager_node_id="AAAAAAA", nodes=(NODE,))


def chain(n: int) -> list[TaskInfo]:
    """Task 1 is the root, task i's parent is task i - 1."""
    return [
        TaskInfo(
            node="AAAAAAA",
            id=i,
            type="transport",
            action="internal:tasksim/sim",
            start_time_in_millis=1_700_000_000_000 + i,
            running_time_in_nanos=1_000,
            cancellable=True,
            cancelled=False,
            parent_task_id=TaskId("AAAAAAA", i - 1) if i > 1 else TaskId("", -1),
        )
        for i in range(1, n + 1)
    ]


def nested(n: int) -> Any:
    value: Any = {}
    for _ in range(n - 1):
        value = {"children": [value]}
    return value


def test_task_groups_of_a_deep_chain() -> None:
    (top,) = task_groups(chain(DEEP))
    depth, group = 1, top
    while group.children:
        (group,) = group.children
        depth += 1
    assert depth == DEEP and group.task.id == DEEP


@pytest.mark.parametrize(
    ("pretty", "tasks"),
    # pretty text grows with the square of the depth (each line indented to its level, as
    # Jackson's DefaultIndenter does): 600 tasks are 2.4 times the depth that used to fail.
    [(False, DEEP), (True, 600)],
    ids=["compact", "pretty"],
)
def test_group_by_parents_of_a_deep_chain_is_written(pretty: bool, tasks: int) -> None:
    body = tasks_response(TasksResult(tasks=chain(tasks)), STATE, group_by="parents")
    text = dump_json(body, pretty=pretty)
    assert text.count('"children"') == tasks - 1
    assert text.count('"id"') == tasks
    # the same text Python's encoder writes once it is given the room
    assert text == _with_room(lambda: _reference(body, pretty))


def test_filter_path_on_a_deep_chain() -> None:
    body = tasks_response(TasksResult(tasks=chain(DEEP)), STATE, group_by="parents")
    ids = filter_path(body, "**.id")
    assert dump_json(ids, pretty=False).count('"id"') == DEEP
    assert filter_path(body, "-**.children") == {
        "tasks": {
            "AAAAAAA:1": {k: v for k, v in body["tasks"]["AAAAAAA:1"].items() if k != "children"}
        }
    }


def test_filter_path_with_many_double_wildcards_does_bounded_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`**.**.…` used to keep one filter per way of spreading the `**`s over the levels
    (exponential in the depth); the filters are now deduplicated: at most one per suffix."""
    calls = [0]
    original = http._segment_matches

    def counting(segment: str, key: str) -> bool:
        calls[0] += 1
        return original(segment, key)

    monkeypatch.setattr(http, "_segment_matches", counting)
    stars = 30
    value = nested(60)
    expression = ".".join(["**"] * stars + ["nope"])
    assert filter_path(value, expression) == {}
    keys = 60  # one `children` key per level
    assert calls[0] <= keys * (stars + 2) * 2


def test_cat_tasks_of_a_deep_chain() -> None:
    table = tasks_rows(tasks_table(False), chain(DEEP), STATE, detailed=False, version="2.19.0")
    assert [row[0] for row in table.rows] == list(range(1, DEEP + 1))
    assert len(render_text(table, CatOptions()).splitlines()) == DEEP


# -- simnode/jsontext.py ---------------------------------------------------------------------------


def _reference(value: Any, pretty: bool) -> str:
    if not pretty:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = json.dumps(value, ensure_ascii=False, indent=2, separators=(",", " : "))
    return text.replace("{}", "{ }").replace("[]", "[ ]") + "\n"


def _with_room(fn: Callable[[], Any]) -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(old + 3 * DEEP)
    try:
        return fn()
    finally:
        sys.setrecursionlimit(old)


def test_loads_takes_1000_levels_and_refuses_1001() -> None:
    assert jsontext.depth(jsontext.loads("[" * 1000 + "]" * 1000)) == 1000
    for depth in (1001, 100_000):
        with pytest.raises(jsontext.NestingTooDeep) as e:
            jsontext.loads("[" * depth + "]" * depth)
        assert str(e.value) == (
            "Document nesting depth (1001) exceeds the maximum allowed (1000, from "
            "`StreamReadConstraints.getMaxNestingDepth()`)"
        )


def test_loads_makes_room_when_called_deep_in_a_stack() -> None:
    def down(n: int) -> Any:
        return down(n - 1) if n else jsontext.loads("[" * 1000 + "]" * 1000)

    assert jsontext.depth(down(300)) == 1000


def test_dumps_writes_lone_surrogates_as_jackson_does() -> None:
    text = jsontext.dumps({"id": "a\ud800b", "\udfff": 1})
    assert text == '{"id":"a\\uD800b","\\uDFFF":1}'
    assert json.loads(text) == {"id": "a\ud800b", "\udfff": 1}
    text.encode("utf-8")
    assert dump_json(["\ud800"], pretty=True) == '[\n  "\\uD800"\n]\n'


def test_a_too_deep_request_body_is_a_parse_error_with_jacksons_cause() -> None:
    request = RestRequest(
        method="POST",
        path="/_sim/tasks",
        uri="/_sim/tasks",
        params=Params([], "/_sim/tasks"),
        path_params={},
        headers={},
        body=b'{"a":' * 1001 + b"1" + b"}" * 1001,
    )
    with pytest.raises(ParseError) as e:
        request.json_body()
    assert error_envelope(e.value) == {
        "error": {
            "root_cause": [{"type": "parse_exception", "reason": "Failed to parse content to map"}],
            "type": "parse_exception",
            "reason": "Failed to parse content to map",
            "caused_by": {
                "type": "stream_constraints_exception",
                "reason": "Document nesting depth (1001) exceeds the maximum allowed (1000, from "
                "`StreamReadConstraints.getMaxNestingDepth()`)",
            },
        },
        "status": 400,
    }


# -- /_sim/tasks bodies ------------------------------------------------------------------------------

SIM_STATE = ClusterState(nodes=(DiscoveryNode("c", "coordinator", roles=()), DiscoveryNode("n1", "node-1")))  # fmt: skip


def sim_tree(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(levels - 1):
        body = {"children": [body]}
    return {"node": "node-1", **body}


def test_a_sim_tree_as_deep_as_allowed_is_parsed_and_fits_the_wire() -> None:
    from simnode._wire import node_pb2 as pb

    sim = parse_sim_request(sim_tree(MAX_TREE_DEPTH), SIM_STATE, "c", ())
    wire = pb.RunTaskRequest(spec=sim.spec).SerializeToString()
    assert pb.RunTaskRequest.FromString(wire) == pb.RunTaskRequest(spec=sim.spec)


@pytest.mark.parametrize("levels", [MAX_TREE_DEPTH + 1, 50, 900])
def test_a_sim_tree_too_deep_is_an_illegal_argument(levels: int) -> None:
    with pytest.raises(IllegalArgumentError, match=f"may be at most {MAX_TREE_DEPTH} levels deep"):
        parse_sim_request(sim_tree(levels), SIM_STATE, "c", ())


def test_a_sim_error_chain_too_deep_is_an_illegal_argument() -> None:
    error: dict[str, Any] = {"type": "x"}
    for _ in range(200):
        error = {"type": "x", "caused_by": error}
    with pytest.raises(IllegalArgumentError, match="caused_by"):
        parse_sim_request({"node": "node-1", "error": error}, SIM_STATE, "c", ())


def test_a_deep_status_is_carried() -> None:
    status = nested(495)  # 989 levels
    sim = parse_sim_request({"node": "node-1", "status": status}, SIM_STATE, "c", ())
    assert jsontext.loads(sim.spec.status_json) == status


def test_dumps_in_pieces_writes_what_dumps_writes() -> None:
    value: Any = {
        "items": [{"index": {"_id": str(i), "status": 201, "s": "\ud800"}} for i in range(20_000)],
        "empty": [{}, [], ()],
        "deep": nested(1500),
        1: True,
    }
    assert jsontext.weight(value, 100) == 101  # counted only just past the budget
    pieces = jsontext.dumps_in_pieces(value)
    assert pieces == jsontext.dumps(value)
    assert pieces == _with_room(lambda: _reference(value, False).replace("\ud800", "\\uD800"))
