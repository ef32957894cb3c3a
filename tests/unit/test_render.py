"""OpenSearch's JSON shapes, rendered from plain values: TaskInfo field order, human-readable
times, the three groupings, failures first, the error envelope with `error_trace`."""

from __future__ import annotations

import pytest

from coordinator.render import (
    TaskFailureInfo,
    TasksResult,
    date_time,
    error_envelope,
    stack_trace,
    task_groups,
    task_info,
    tasks_response,
    time_value,
)
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import (
    FailedNodeError,
    IllegalArgumentError,
    IndexNotFoundError,
    NumberFormatError,
    ReceiveTimeoutTransportError,
    ResourceNotFoundError,
)
from simnode.registry import ResourceStats, TaskInfo
from simnode.taskid import TaskId

A = DiscoveryNode("A", "node-a", ip="10.0.0.1", port=9300)
B = DiscoveryNode("B", "node-b", ip="10.0.0.2", port=9301, roles=(), attributes=())
STATE = ClusterState(nodes=(A, B))


def info(node: str, id: int, parent: TaskId | None = None, **kw: object) -> TaskInfo:
    defaults: dict[str, object] = {
        "type": "transport",
        "action": "act",
        "start_time_in_millis": 1_700_000_000_000 + id,
        "running_time_in_nanos": 1_500_000,
        "cancellable": False,
        "cancelled": False,
    }
    defaults.update(kw)
    return TaskInfo(
        node=node,
        id=id,
        parent_task_id=parent or TaskId("", -1),
        **defaults,  # type: ignore[arg-type]
    )


def test_task_info_plain_fields_in_order() -> None:
    out = task_info(info("A", 1))
    assert list(out) == [
        "node",
        "id",
        "type",
        "action",
        "start_time_in_millis",
        "running_time_in_nanos",
        "cancellable",
        "cancelled",
        "headers",
    ]


def test_task_info_every_field_in_order() -> None:
    t = info(
        "A",
        2,
        parent=TaskId("B", 9),
        cancellable=True,
        cancelled=True,
        status={"phase": "x"},
        description="d",
        headers=(("X-Opaque-Id", "q1"),),
        resource_stats=ResourceStats(),
        cancellation_time_millis=5,
    )
    out = task_info(t, human=True)
    assert list(out) == [
        "node",
        "id",
        "type",
        "action",
        "status",
        "description",
        "start_time",
        "start_time_in_millis",
        "running_time",
        "running_time_in_nanos",
        "cancellable",
        "cancelled",
        "parent_task_id",
        "headers",
        "resource_stats",
        "cancellation_time_millis",
    ]
    assert out["parent_task_id"] == "B:9"
    assert out["headers"] == {"X-Opaque-Id": "q1"}
    assert out["start_time"] == "2023-11-14T22:13:20.002Z"
    assert out["running_time"] == "1.5ms"
    assert list(out["resource_stats"]) == ["average", "total", "min", "max", "thread_info"]
    assert out["resource_stats"]["thread_info"] == {"thread_executions": 0, "active_threads": 0}


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (994, "994nanos"),
        (994_000, "994micros"),
        (1_500_000, "1.5ms"),
        (1_599_999, "1.5ms"),  # truncated, not rounded
        (2_000_000_000, "2s"),
        (11_242_608_694, "11.2s"),
        (90 * 10**9, "1.5m"),
        (3 * 3600 * 10**9, "3h"),
        (36 * 3600 * 10**9, "1.5d"),
    ],
)
def test_time_value(nanos: int, text: str) -> None:
    assert time_value(nanos) == text


def test_date_time_is_strict_date_optional_time_in_utc() -> None:
    assert date_time(0) == "1970-01-01T00:00:00.000Z"
    assert date_time(1_784_762_788_739) == "2026-07-22T23:26:28.739Z"


TASKS = [
    info("A", 1),
    info("A", 2, TaskId("A", 1), type="direct"),
    info("B", 3, TaskId("A", 1)),
    info("B", 4, TaskId("B", 3)),
    info("B", 5, TaskId("Z", 77)),  # a parent that is not in the answer
]


def test_group_by_nodes_leaves_out_nodes_without_tasks_and_unknown_node_headers() -> None:
    out = tasks_response(TasksResult(tasks=[TASKS[0], info("C", 1)]), STATE)
    assert list(out) == ["nodes"]
    assert list(out["nodes"]) == ["A", "C"]
    assert list(out["nodes"]["A"]) == [
        "name",
        "transport_address",
        "host",
        "ip",
        "roles",
        "attributes",
        "tasks",
    ]
    assert out["nodes"]["A"]["ip"] == "10.0.0.1:9300"
    assert list(out["nodes"]["C"]) == ["tasks"]  # no longer in the cluster state
    assert tasks_response(TasksResult(), STATE) == {"nodes": {}}


def test_group_by_nodes_without_attributes() -> None:
    out = tasks_response(TasksResult(tasks=[TASKS[2]]), STATE)
    assert "attributes" not in out["nodes"]["B"]
    assert out["nodes"]["B"]["roles"] == []


def test_group_by_parents_nests_and_orphans_are_top_level() -> None:
    out = tasks_response(TasksResult(tasks=TASKS), STATE, group_by="parents")
    assert list(out["tasks"]) == ["A:1", "B:5"]
    root = out["tasks"]["A:1"]
    assert [c["id"] for c in root["children"]] == [2, 3]
    assert [c["id"] for c in root["children"][1]["children"]] == [4]
    assert "children" not in root["children"][0]
    assert "children" not in out["tasks"]["B:5"]
    assert list(root)[-1] == "children"


def test_task_groups_keep_answer_order() -> None:
    groups = task_groups(TASKS)
    assert [g.task.id for g in groups] == [1, 5]


def test_group_by_none_is_a_flat_list() -> None:
    out = tasks_response(TasksResult(tasks=TASKS), STATE, group_by="none")
    assert [t["id"] for t in out["tasks"]] == [1, 2, 3, 4, 5]


def test_failures_come_first_and_only_when_present() -> None:
    timeout = ReceiveTimeoutTransportError(
        "[node-b][10.0.0.2:9301][a[n]] request_id [3] timed out after [1000ms]"
    )
    result = TasksResult(
        tasks=[TASKS[0]],
        task_failures=[TaskFailureInfo("A", 7, ResourceNotFoundError("task [A:7] is not found"))],
        node_failures=[FailedNodeError.of("B", timeout)],
    )
    for group_by in ("nodes", "parents", "none"):
        out = tasks_response(result, STATE, group_by=group_by)
        assert list(out)[:2] == ["task_failures", "node_failures"]
    out = tasks_response(result, STATE)
    assert out["task_failures"] == [
        {
            "task_id": 7,
            "node_id": "A",
            "status": "NOT_FOUND",
            "reason": {"type": "resource_not_found_exception", "reason": "task [A:7] is not found"},
        }
    ]
    assert out["node_failures"] == [
        {
            "type": "failed_node_exception",
            "reason": "Failed node [B]",
            "node_id": "B",
            "caused_by": {
                "type": "receive_timeout_transport_exception",
                "reason": "[node-b][10.0.0.2:9301][a[n]] request_id [3] timed out after [1000ms]",
            },
        }
    ]
    only_nodes = tasks_response(TasksResult(node_failures=result.node_failures), STATE)
    assert list(only_nodes) == ["node_failures", "nodes"]


def test_error_envelope_root_cause_is_the_deepest_opensearch_exception() -> None:
    inner = IndexNotFoundError.of(".tasks")
    err = ResourceNotFoundError(
        "task [X:1] belongs to the node [X] which isn't part of the cluster and there is no record of the task",
        cause=ResourceNotFoundError(
            "task [X:1] isn't running and hasn't stored its results", cause=inner
        ),
    )
    out = error_envelope(err)
    assert out["status"] == 404
    assert out["error"]["root_cause"] == [inner.xcontent()]
    assert out["error"]["caused_by"]["caused_by"]["type"] == "index_not_found_exception"


def test_error_envelope_of_a_jdk_exception_roots_at_itself() -> None:
    err = IllegalArgumentError(
        "malformed task id n:x", cause=NumberFormatError('For input string: "x"')
    )
    out = error_envelope(err)
    assert out == {
        "error": {
            "root_cause": [
                {"type": "illegal_argument_exception", "reason": "malformed task id n:x"}
            ],
            "type": "illegal_argument_exception",
            "reason": "malformed task id n:x",
            "caused_by": {"type": "number_format_exception", "reason": 'For input string: "x"'},
        },
        "status": 400,
    }


def test_error_trace_puts_a_stack_trace_on_every_level() -> None:
    err = ResourceNotFoundError("outer", cause=IndexNotFoundError.of(".tasks"))
    out = error_envelope(err, error_trace=True)["error"]
    assert list(out) == ["root_cause", "type", "reason", "caused_by", "stack_trace"]
    assert "stack_trace" in out["root_cause"][0]
    assert list(out["caused_by"])[-1] == "stack_trace"
    assert out["stack_trace"].startswith(
        "ResourceNotFoundException[outer]; nested: IndexNotFoundException[no such index [.tasks]];"
    )
    assert "\nCaused by: IndexNotFoundException[no such index [.tasks]]" in out["stack_trace"]
    assert stack_trace(IllegalArgumentError("x")).startswith(
        "java.lang.IllegalArgumentException: x\n\tat "
    )
