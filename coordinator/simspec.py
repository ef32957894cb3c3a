"""The body of `POST /_sim/tasks`: any task tree, parsed into the `TaskSpec` a node runs.

```json
{"node": "node-1", "action": "indices:data/write/reindex", "duration": "30s",
 "cancellable": true, "description": "...", "status": {...}, "headers": {"X-Opaque-Id": "a"},
 "on_cancel": "immediate|checkpoint|ignore", "checkpoint_interval": "1s", "ignore_cancel_for": "10s",
 "store_result": true, "response": {...}, "error": {"type": "...", "reason": "...", "status": 500},
 "parent_task_id": "<node>:<id>", "count": 1, "bug": "work|cancel",
 "children": [{"nodes": "data:true", "count": 2, "phase": 0, "send_delay": "100ms", ...}]}
```

`node` (the root) must name exactly one node; a child's `nodes` (or `node`) is a node selector, as
`GET _tasks?nodes=` takes them, and the child is started once per node it names (times `count`).
A missing `duration` (or `-1`) runs until cancelled. `bug` is a test hook: the task's work
("work") or the node's cancellation of it ("cancel") raises a Python error, a simulated tasksim bug
that must fail that task or request alone (a 500 `exception`) while the node serves on. Every field is checked, with
`illegal_argument_exception` messages that name it. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.params import parse_time_value
from coordinator.resolve import resolve_nodes
from simnode._wire import node_pb2 as pb
from simnode.discovery import ClusterState
from simnode.errors import IllegalArgumentError, OpenSearchError
from simnode.registry import BUG_HOOKS, ON_CANCEL_MODES
from simnode.wire import error_to_pb

DEFAULT_ACTION = "internal:tasksim/sim"
MAX_TASKS = 10_000

_TASK_FIELDS = {
    "action",
    "duration",
    "cancellable",
    "description",
    "status",
    "on_cancel",
    "checkpoint_interval",
    "ignore_cancel_for",
    "store_result",
    "response",
    "error",
    "children",
    "bug",
}
_ROOT_FIELDS = _TASK_FIELDS | {"node", "headers", "parent_task_id", "count"}
_CHILD_FIELDS = _TASK_FIELDS | {"node", "nodes", "count", "phase", "send_delay"}


@dataclass(frozen=True)
class SimRequest:
    node_id: str
    spec: pb.TaskSpec
    headers: tuple[tuple[str, str], ...]
    parent_task_id: str
    copies: int


def parse_sim_request(
    body: Any, state: ClusterState, local_node_id: str, headers: tuple[tuple[str, str], ...]
) -> SimRequest:
    if not isinstance(body, Mapping):
        raise IllegalArgumentError("[sim_task] the request body must be a JSON object")
    _check_fields(body, _ROOT_FIELDS, "sim_task")
    selector = body.get("node", "_local")
    if not isinstance(selector, str):
        raise IllegalArgumentError("[sim_task] [node] must be a string")
    ids = resolve_nodes(state, (selector,), local_node_id)
    if len(ids) != 1:
        raise IllegalArgumentError(
            f"[sim_task] [node] must name exactly one node but [{selector}] names {len(ids)}"
        )
    counter = [0]
    spec = _task(body, state, local_node_id, "sim_task", counter)
    all_headers = dict(headers)
    extra = body.get("headers", {})
    if not isinstance(extra, Mapping) or not all(isinstance(v, str) for v in extra.values()):
        raise IllegalArgumentError("[sim_task] [headers] must be an object of strings")
    all_headers.update(extra)
    parent = body.get("parent_task_id", "")
    if not isinstance(parent, str):
        raise IllegalArgumentError("[sim_task] [parent_task_id] must be a string")
    copies = _int(body, "count", 1, "sim_task", minimum=1)
    if copies * counter[0] > MAX_TASKS:
        raise IllegalArgumentError(f"[sim_task] a request may start at most {MAX_TASKS} tasks")
    return SimRequest(ids[0], spec, tuple(all_headers.items()), parent, copies)


def _check_fields(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in body:
        if key not in allowed:
            raise IllegalArgumentError(f"[{where}] unknown field [{key}]")


def _int(body: Mapping[str, Any], key: str, default: int, where: str, *, minimum: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise IllegalArgumentError(f"[{where}] [{key}] must be an integer >= {minimum}")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise IllegalArgumentError(f"[{where}] [{key}] must be true or false")
    return value


def _millis(body: Mapping[str, Any], key: str, default: int, where: str) -> int:
    """A time value (`"30s"`, `"250ms"`) or a number of milliseconds; -1 = forever."""
    if key not in body:
        return default
    value = body[key]
    if isinstance(value, bool):
        raise IllegalArgumentError(f"[{where}] [{key}] must be a time value")
    if isinstance(value, int):
        return -1 if value < 0 else value
    if not isinstance(value, str):
        raise IllegalArgumentError(f"[{where}] [{key}] must be a time value")
    seconds = parse_time_value(value, key)
    return -1 if seconds < 0 else round(seconds * 1000)


def _task(
    body: Mapping[str, Any], state: ClusterState, local_id: str, where: str, counter: list[int]
) -> pb.TaskSpec:
    counter[0] += 1
    if counter[0] > MAX_TASKS:
        raise IllegalArgumentError(f"[sim_task] a request may start at most {MAX_TASKS} tasks")
    action = body.get("action", DEFAULT_ACTION)
    if not isinstance(action, str) or not action:
        raise IllegalArgumentError(f"[{where}] [action] must be a non-empty string")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise IllegalArgumentError(f"[{where}] [description] must be a string")
    on_cancel = body.get("on_cancel", "immediate")
    if on_cancel not in ON_CANCEL_MODES:
        raise IllegalArgumentError(
            f"[{where}] [on_cancel] must be one of {list(ON_CANCEL_MODES)} but was [{on_cancel}]"
        )
    spec = pb.TaskSpec(
        action=action,
        cancellable=_bool(body, "cancellable", True, where),
        duration_millis=_millis(body, "duration", -1, where),
        description=description,
        on_cancel=on_cancel,
        checkpoint_millis=_millis(body, "checkpoint_interval", 1000, where),
        ignore_cancel_millis=_millis(body, "ignore_cancel_for", -1, where),
        store_result=_bool(body, "store_result", False, where),
        bug=_bug(body, where),
    )
    if "status" in body:
        if not isinstance(body["status"], Mapping):
            raise IllegalArgumentError(f"[{where}] [status] must be an object")
        spec.status_json = json.dumps(body["status"])
    if "response" in body:
        spec.response_json = json.dumps(body["response"])
    if "error" in body:
        spec.error.CopyFrom(error_to_pb(_error(body["error"], where)))
    children = body.get("children", [])
    if not isinstance(children, list):
        raise IllegalArgumentError(f"[{where}] [children] must be an array")
    for i, child in enumerate(children):
        spec.children.extend(_children(child, state, local_id, f"{where}.children[{i}]", counter))
    return spec


def _bug(body: Mapping[str, Any], where: str) -> str:
    """The test hook: a simulated tasksim bug (a Python error) in the task's work or in the
    node's cancellation of the task; it must fail that task or request alone (a 500)."""
    value = body.get("bug", "")
    if value not in ("", *BUG_HOOKS):
        raise IllegalArgumentError(
            f"[{where}] [bug] must be one of {list(BUG_HOOKS)} but was [{value}]"
        )
    return str(value)


def _error(value: Any, where: str) -> OpenSearchError:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise IllegalArgumentError(f"[{where}] [error] must be an object with a [type]")
    status = value.get("status", 500)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise IllegalArgumentError(f"[{where}] [error.status] must be an HTTP status")
    cause = _error(value["caused_by"], where) if "caused_by" in value else None
    return OpenSearchError.from_parts(
        value["type"], str(value.get("reason", "")), status=status, cause=cause
    )


def _children(
    body: Any, state: ClusterState, local_id: str, where: str, counter: list[int]
) -> list[pb.ChildSpec]:
    if not isinstance(body, Mapping):
        raise IllegalArgumentError(f"[{where}] must be an object")
    _check_fields(body, _CHILD_FIELDS, where)
    if "node" in body and "nodes" in body:
        raise IllegalArgumentError(f"[{where}] takes [node] or [nodes], not both")
    selector = body.get("nodes", body.get("node"))
    if selector is None:
        node_ids = [""]  # the parent's own node
    else:
        if not isinstance(selector, str):
            raise IllegalArgumentError(f"[{where}] [nodes] must be a string")
        node_ids = resolve_nodes(state, tuple(selector.split(",")), local_id)
        if not node_ids:
            raise IllegalArgumentError(f"[{where}] [nodes] [{selector}] names no node")
    count = _int(body, "count", 1, where, minimum=1)
    phase = _int(body, "phase", 0, where, minimum=0)
    delay = max(0, _millis(body, "send_delay", 0, where))
    before = counter[0]
    spec = _task(body, state, local_id, where, counter)
    counter[0] = before + (counter[0] - before) * len(node_ids) * count
    if counter[0] > MAX_TASKS:
        raise IllegalArgumentError(f"[sim_task] a request may start at most {MAX_TASKS} tasks")
    return [
        pb.ChildSpec(node_id=node_id, task=spec, phase=phase, send_delay_millis=delay)
        for node_id in node_ids
        for _ in range(count)
    ]
