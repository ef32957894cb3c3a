"""OpenSearch's JSON, rendered by hand: tasks, list/cancel responses, nodes, the error envelope.

Field order and presence follow `TaskInfo.toXContent`, `ListTasksResponse` (grouped by nodes,
parents or none), `BaseTasksResponse.toXContentCommon` and `BytesRestResponse` (reference §1, §4).
Everything here is a pure function of plain values: no I/O, no trio, no grpc. Protobuf's
`MessageToDict` is never used (it renders int64 as strings).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import REST_STATUS_NAMES, OpenSearchError
from simnode.registry import ResourceStats, TaskInfo, UsageStats
from simnode.taskid import TaskId

GROUP_BY = ("nodes", "parents", "none")


@dataclass(frozen=True, slots=True)
class TaskFailureInfo:
    """`TaskOperationFailure`: one task's operation failed on a node."""

    node_id: str
    task_id: int
    reason: OpenSearchError


@dataclass(slots=True)
class TasksResult:
    """What a list or cancel fan-out gathered: tasks in node order, then the failures."""

    tasks: list[TaskInfo] = field(default_factory=list)
    task_failures: list[TaskFailureInfo] = field(default_factory=list)
    node_failures: list[OpenSearchError] = field(default_factory=list)


# -- values -----------------------------------------------------------------------------------------


def _format_decimal(value: float, fraction_pieces: int) -> str:
    """`TimeValue.formatDecimal`: truncate (not round) to `fraction_pieces`, drop a zero fraction."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        return text
    integral, _, fraction = text.partition(".")
    kept = fraction[:fraction_pieces]
    if not kept or int(kept) == 0:
        return integral
    return f"{integral}.{kept}"


def time_value(nanos: int) -> str:
    """`new TimeValue(nanos, NANOSECONDS).toString()`: `994micros`, `1.5ms`, `11.2s`, `1m`."""
    if nanos < 0:
        return str(nanos)
    if nanos == 0:
        return "0s"
    for threshold, suffix in (
        (86_400 * 10**9, "d"),
        (3_600 * 10**9, "h"),
        (60 * 10**9, "m"),
        (10**9, "s"),
        (10**6, "ms"),
        (10**3, "micros"),
    ):
        if nanos >= threshold:
            return _format_decimal(nanos / threshold, 1) + suffix
    return f"{nanos}nanos"


def date_time(epoch_millis: int) -> str:
    """`strict_date_optional_time` in UTC, as `XContentBuilder.timeField` prints it."""
    moment = _dt.datetime.fromtimestamp(epoch_millis / 1000, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_millis % 1000:03d}Z"


# -- tasks ------------------------------------------------------------------------------------------


def _usage(u: UsageStats) -> dict[str, int]:
    return {"cpu_time_in_nanos": u.cpu_time_in_nanos, "memory_in_bytes": u.memory_in_bytes}


def resource_stats(rs: ResourceStats) -> dict[str, Any]:
    return {
        "average": _usage(rs.average),
        "total": _usage(rs.total),
        "min": _usage(rs.min),
        "max": _usage(rs.max),
        "thread_info": {
            "thread_executions": rs.thread_executions,
            "active_threads": rs.active_threads,
        },
    }


def task_info(info: TaskInfo, *, human: bool = False) -> dict[str, Any]:
    """`TaskInfo.toXContent` (reference §1.1)."""
    out: dict[str, Any] = {
        "node": info.node,
        "id": info.id,
        "type": info.type,
        "action": info.action,
    }
    if info.status is not None:
        out["status"] = info.status
    if info.description is not None:
        out["description"] = info.description
    if human:
        out["start_time"] = date_time(info.start_time_in_millis)
    out["start_time_in_millis"] = info.start_time_in_millis
    if human:
        out["running_time"] = time_value(info.running_time_in_nanos)
    out["running_time_in_nanos"] = info.running_time_in_nanos
    out["cancellable"] = info.cancellable
    out["cancelled"] = info.cancelled
    if info.parent_task_id.is_set():
        out["parent_task_id"] = str(info.parent_task_id)
    out["headers"] = dict(info.headers)
    if info.resource_stats is not None:
        out["resource_stats"] = resource_stats(info.resource_stats)
    if info.cancellation_time_millis is not None:
        out["cancellation_time_millis"] = info.cancellation_time_millis
    return out


# -- nodes ------------------------------------------------------------------------------------------


def node_header(node: DiscoveryNode) -> dict[str, Any]:
    """The node fields in front of `tasks` in `group_by=nodes`."""
    out: dict[str, Any] = {
        "name": node.name,
        "transport_address": node.transport_address,
        "host": node.host,
        "ip": node.transport_address,
        "roles": list(node.roles),
    }
    if node.attributes:
        out["attributes"] = dict(node.attributes)
    return out


# -- failures and list/cancel responses -------------------------------------------------------------


def task_failure(f: TaskFailureInfo) -> dict[str, Any]:
    return {
        "task_id": f.task_id,
        "node_id": f.node_id,
        "status": REST_STATUS_NAMES.get(f.reason.status, "INTERNAL_SERVER_ERROR"),
        "reason": f.reason.xcontent(),
    }


def _failures(result: TasksResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result.task_failures:
        out["task_failures"] = [task_failure(f) for f in result.task_failures]
    if result.node_failures:
        out["node_failures"] = [e.xcontent() for e in result.node_failures]
    return out


def tasks_response(
    result: TasksResult, state: ClusterState, *, group_by: str = "nodes", human: bool = False
) -> dict[str, Any]:
    """`ListTasksResponse` / `CancelTasksResponse` in one of the three groupings."""
    out = _failures(result)
    if group_by == "none":
        out["tasks"] = [task_info(t, human=human) for t in result.tasks]
    elif group_by == "parents":
        out["tasks"] = _grouped_by_parents(result.tasks, human=human)
    else:
        nodes: dict[str, Any] = {}
        for t in result.tasks:
            entry = nodes.get(t.node)
            if entry is None:
                node = state.get(t.node)
                entry = nodes[t.node] = node_header(node) if node is not None else {}
                entry["tasks"] = {}
            entry["tasks"][str(t.task_id)] = task_info(t, human=human)
        out["nodes"] = nodes
    return out


@dataclass(frozen=True)
class TaskGroup:
    """`TaskGroup`: a task and the groups of its children that are in the same answer."""

    task: TaskInfo
    children: list[TaskGroup]


def task_groups(tasks: list[TaskInfo]) -> list[TaskGroup]:
    """`ListTasksResponse.buildTaskGroups`: a task whose parent is in the answer nests under it; a
    task without a parent, or whose parent is not in the answer, is a top-level group. Order: the
    order of the tasks (node order, then each node's registration order)."""
    present = {t.task_id for t in tasks}
    children: dict[TaskId, list[TaskInfo]] = {}
    top: list[TaskInfo] = []
    for t in tasks:
        if t.parent_task_id.is_set() and t.parent_task_id in present:
            children.setdefault(t.parent_task_id, []).append(t)
        else:
            top.append(t)

    # Built bottom-up with an explicit stack: a parent chain may be as long as a registry holds.
    groups: dict[int, TaskGroup] = {}  # by id() of the TaskInfo
    for root in top:
        stack: list[tuple[TaskInfo, bool]] = [(root, False)]
        while stack:
            t, expanded = stack.pop()
            kids = children.get(t.task_id, [])
            if expanded:
                groups[id(t)] = TaskGroup(t, [groups.pop(id(k)) for k in kids])
            else:
                stack.append((t, True))
                stack.extend((k, False) for k in reversed(kids))
    return [groups[id(t)] for t in top]


def _grouped_by_parents(tasks: list[TaskInfo], *, human: bool) -> dict[str, Any]:
    """`toXContentGroupedByParents`: top-level groups by task id, `children` only when non-empty.
    Iterative, for any depth."""
    out: dict[str, Any] = {}
    for top in task_groups(tasks):
        rendered = out[str(top.task.task_id)] = task_info(top.task, human=human)
        stack: list[tuple[TaskGroup, dict[str, Any]]] = [(top, rendered)]
        while stack:
            group, body = stack.pop()
            if group.children:
                body["children"] = [task_info(k.task, human=human) for k in group.children]
                stack.extend(zip(group.children, body["children"], strict=True))
    return out


# -- errors -----------------------------------------------------------------------------------------


def error_envelope(err: OpenSearchError, *, error_trace: bool = False) -> dict[str, Any]:
    """`BytesRestResponse` for an exception: `{"error": {root_cause, type, reason, ...}, "status"}`.

    With `error_trace=true` every level — each root cause, the error and each `caused_by` — gets
    a `stack_trace` after its cause (`OpenSearchException.innerToXContent`)."""
    error: dict[str, Any] = {
        "root_cause": [_throwable(rc, error_trace, with_cause=False) for rc in err.root_causes()],
    }
    error.update(_throwable(err, error_trace))
    return {"error": error, "status": err.status}


def _throwable(
    err: OpenSearchError, error_trace: bool, *, with_cause: bool = True
) -> dict[str, Any]:
    if not error_trace:
        return err.xcontent(with_cause=with_cause)
    body = err.xcontent(with_cause=False)
    if with_cause and err.cause is not None:
        body["caused_by"] = _throwable(err.cause, error_trace)
    body["stack_trace"] = stack_trace(err)
    return body


# Java classes behind the `type` strings whose names do not follow from the type itself.
_JAVA_CLASSES = {
    "exception": "OpenSearchException",
    "timeout_exception": "OpenSearchTimeoutException",
    "parse_exception": "OpenSearchParseException",
    "status_exception": "OpenSearchStatusException",
    "security_exception": "OpenSearchSecurityException",
    "illegal_argument_exception": "java.lang.IllegalArgumentException",
    "illegal_state_exception": "java.lang.IllegalStateException",
    "number_format_exception": "java.lang.NumberFormatException",
    "null_pointer_exception": "java.lang.NullPointerException",
    "unsupported_operation_exception": "java.lang.UnsupportedOperationException",
}


def java_class(err: OpenSearchError) -> str:
    known = _JAVA_CLASSES.get(err.type)
    if known is not None:
        return known
    return "".join(part.capitalize() for part in err.type.split("_"))


def _describe(err: OpenSearchError) -> str:
    """`Throwable.toString()` as a stack trace prints it: `java.lang.X: msg` for JDK exceptions,
    `OpenSearchException.toString()` (`Name[msg]; nested: Cause[msg];`) for OpenSearch's."""
    name = java_class(err)
    if name.startswith("java."):
        return f"{name}: {err.reason}"
    if err.cause is None:
        return f"{name}[{err.reason}]"
    parts: list[str] = []
    current: OpenSearchError | None = err
    while current is not None:
        parts.append(f"{java_class(current).rsplit('.', 1)[-1]}[{current.reason}]; ")
        current = current.cause
    return "nested: ".join(parts).strip()


def stack_trace(err: OpenSearchError) -> str:
    """`ExceptionsHelper.stackTrace`: a Java-looking trace (tasksim has no JVM frames to show)."""
    lines: list[str] = []
    current: OpenSearchError | None = err
    first = True
    while current is not None:
        lines.append(("" if first else "Caused by: ") + _describe(current))
        lines.append("\tat tasksim.simulated(Unknown Source)")
        current = current.cause
        first = False
    return "\n".join(lines)


def simple_error(message: str, status: int) -> dict[str, Any]:
    """The plain form of 405 / no-handler answers: `{"error": "<text>", "status": N}`."""
    return {"error": message, "status": status}
