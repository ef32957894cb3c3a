"""The coordinating node's transport actions for the Tasks API.

`list_tasks` / `cancel_tasks` are OpenSearch's `TransportTasksAction`: register the REST-entry task
(`cluster:monitor/tasks/lists`, type `transport`) on the coordinating node, resolve the target
nodes, send one `[n]` request per node in parallel with the entry task as parent (the local shortcut
for the coordinating node itself, so its child is `direct`), and gather: a node that fails is one
`failed_node_exception` in `node_failures` (an unknown node id: `no_such_node_exception`), answers
are concatenated in node order, per-task failures become `task_failures`. A `timeout` is a
per-node deadline (`TransportRequestOptions.withTimeout`), counted from the moment the request is
sent, for the coordinating node's own `direct` child as well; there is none by default (a node that
hangs without one is failed when it leaves the cluster). Because the node's own
`wait_for_completion` deadline starts later (when the request arrives), with a `timeout` the
transport deadline always fires first: `receive_timeout_transport_exception`, as in OpenSearch.

`get_task` is `TransportGetTaskAction`: forwarded to the node that owns the task (with `timeout`
as the transport timeout, so a wait on another node that outlives it ends in a 500
`receive_timeout_transport_exception`, while a wait on the coordinating node ends in the 504
`timeout_exception`), falling back to the `.tasks` index (`coordinator/results.py`) when the task
is not running.

In every action the entry task is registered first (the header-size check), then the request is
validated (`TransportAction.execute`).
"""

from __future__ import annotations

import math
from typing import Any

import trio

from coordinator.cluster import Cluster
from coordinator.params import GetTaskRequest, TasksRequest
from coordinator.render import TaskFailureInfo, TasksResult
from coordinator.resolve import resolve_nodes
from coordinator.results import GetTaskResult
from simnode._wire import node_pb2 as pb
from simnode.bulk_by_scroll import BULK_BY_SCROLL_ACTIONS
from simnode.errors import (
    FailedNodeError,
    NoSuchNodeError,
    OpenSearchError,
    ResourceNotFoundError,
)
from simnode.node import CANCEL_ACTION, GET_ACTION, LIST_ACTION, RETHROTTLE_ACTION
from simnode.registry import Headers
from simnode.taskid import TaskId
from simnode.transport import ACTION_OF_METHOD, receive_timeout
from simnode.wire import error_from_pb, headers_to_pb, task_info_from_pb

# A guard around every call that has a deadline, in case the transport's own deadline is late.
DEADLINE_GUARD_SLACK = 1.0


def target_nodes(cluster: Cluster, req: TasksRequest) -> list[str]:
    """`resolveNodes`: the task id's node when a task id is set (not checked), else the selectors."""
    if req.task_id.is_set():
        return [req.task_id.node_id]
    return resolve_nodes(cluster.state, req.nodes, cluster.local.local.id)


def _node_request(req: TasksRequest, parent: TaskId, headers: Headers) -> pb.TasksRequest:
    msg = pb.TasksRequest(
        task_id=str(req.task_id) if req.task_id.is_set() else "",
        actions=list(req.actions),
        parent_task_id=str(req.parent_task_id) if req.parent_task_id.is_set() else "",
        detailed=req.detailed,
        wait_for_completion=req.wait_for_completion,
        reason="by user request",
        parent_task=str(parent),
        headers=headers_to_pb(headers),
    )
    if req.timeout is not None:
        msg.timeout_millis = int(req.timeout * 1000)
    return msg


async def _broadcast(
    cluster: Cluster,
    node_ids: list[str],
    method: str,
    request: Any,
    timeout: float | None,
) -> TasksResult:
    outcomes: list[pb.TasksResponse | OpenSearchError | None] = [None] * len(node_ids)

    async def one(index: int, node_id: str) -> None:
        # The coordinating node itself is reached through the loopback link (Node.send).
        guard = math.inf if timeout is None else timeout + DEADLINE_GUARD_SLACK
        started = trio.current_time()
        try:
            if math.isinf(guard):  # no scope when there is no deadline: fan-outs are wide
                outcomes[index] = await cluster.local.send(node_id, method, request)
                return
            with trio.move_on_after(guard):
                outcomes[index] = await cluster.local.send(
                    node_id, method, request, timeout=timeout
                )
                return
            node = cluster.state.get(node_id)
            if node is None:
                raise NoSuchNodeError.of(node_id)
            elapsed = int((trio.current_time() - started) * 1000)
            raise receive_timeout(
                node, ACTION_OF_METHOD[method], cluster.transport.next_request_id(), elapsed
            )
        except OpenSearchError as e:
            outcomes[index] = e

    async with trio.open_nursery() as nursery:
        for i, node_id in enumerate(node_ids):
            nursery.start_soon(one, i, node_id)

    result = TasksResult()
    for node_id, outcome in zip(node_ids, outcomes, strict=True):
        if isinstance(outcome, OpenSearchError):
            result.node_failures.append(FailedNodeError.of(node_id, outcome))
        elif outcome is not None:
            result.tasks.extend(task_info_from_pb(t) for t in outcome.tasks)
            result.task_failures.extend(
                TaskFailureInfo(f.node_id, f.task_id, error_from_pb(f.reason))
                for f in outcome.task_failures
            )
    return result


async def _tasks_action(
    cluster: Cluster,
    action: str,
    method: str,
    req: TasksRequest,
    headers: Headers,
) -> TasksResult:
    """`TransportTasksAction.doExecute`: the entry task on the coordinating node, validation,
    node resolution, and the `[n]` fan-out with the entry task as parent."""
    node = cluster.local
    parent = node.register(action, local=False, headers=headers)
    try:
        req.validate()
        node_ids = target_nodes(cluster, req)
        if not node_ids:
            return TasksResult()
        request = _node_request(req, parent.task_id, headers)
        return await _broadcast(cluster, node_ids, method, request, req.timeout)
    finally:
        node.unregister(parent)


async def list_tasks(cluster: Cluster, req: TasksRequest, headers: Headers) -> TasksResult:
    return await _tasks_action(cluster, LIST_ACTION, "ListTasks", req, headers)


async def cancel_tasks(cluster: Cluster, req: TasksRequest, headers: Headers) -> TasksResult:
    """Cancel has no `timeout` parameter (parse_cancel never sets one)."""
    return await _tasks_action(cluster, CANCEL_ACTION, "CancelTasks", req, headers)


async def rethrottle(
    cluster: Cluster, task_id: TaskId, requests_per_second: float, headers: Headers
) -> TasksResult:
    """`TransportRethrottleAction`: a tasks action over the bulk-by-scroll actions only."""
    node = cluster.local
    parent = node.register(RETHROTTLE_ACTION, local=False, headers=headers)
    try:
        req = TasksRequest(task_id=task_id, actions=BULK_BY_SCROLL_ACTIONS)
        node_ids = target_nodes(cluster, req)
        msg = _node_request(req, parent.task_id, headers)
        msg.reason = ""
        msg.requests_per_second = requests_per_second
        return await _broadcast(cluster, node_ids, "Rethrottle", msg, None)
    finally:
        node.unregister(parent)


async def get_task(cluster: Cluster, req: GetTaskRequest, headers: Headers) -> GetTaskResult:
    """`TransportGetTaskAction` (reference §2.6)."""
    node = cluster.local
    me = node.register(GET_ACTION, local=False, headers=headers)
    try:
        req.validate()
        task_id = req.task_id
        target = cluster.state.get(task_id.node_id)
        if target is None:
            try:
                return cluster.results.get(task_id)
            except ResourceNotFoundError as e:
                raise ResourceNotFoundError(
                    f"task [{task_id}] belongs to the node [{task_id.node_id}] which isn't part of "
                    "the cluster and there is no record of the task",
                    cause=e,
                ) from e
        msg = pb.GetTaskRequest(
            id=task_id.id,
            wait_for_completion=req.wait_for_completion,
            parent_task=str(me.task_id),
            headers=headers_to_pb(headers),
        )
        if req.timeout is not None:
            msg.timeout_millis = int(req.timeout * 1000)
        if target.id == node.local.id:
            # TransportGetTaskAction's own shortcut (not the loopback link): the coordinating
            # node serves its task inside the REST-entry task, without a child task.
            answer = await node.get_task(msg, local=True, register=False)
        else:
            answer = await cluster.transport.call(target, "GetTask", msg, timeout=req.timeout)
        if not answer.HasField("task"):
            return cluster.results.get(task_id)  # not running: the stored result, or 404
        info = task_info_from_pb(answer.task)
        if answer.completed:
            try:
                return cluster.results.get(task_id)
            except ResourceNotFoundError:
                return GetTaskResult(completed=True, task=info)
        return GetTaskResult(completed=False, task=info)
    finally:
        node.unregister(me)
