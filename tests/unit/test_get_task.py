"""`TransportGetTaskAction` on the coordinating node, in virtual time: running, waited for (with
the stored result when there is one), not running, and a node that left; plus the task-header
size limit every registration enforces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from coordinator import fanout
from coordinator.params import GetTaskRequest
from coordinator.results import GetTaskResult, TaskResultsIndex
from simnode._wire import node_pb2 as pb
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import ActionRequestValidationError, IllegalArgumentError, ResourceNotFoundError
from simnode.node import Node
from simnode.registry import X_OPAQUE_ID, task_headers
from simnode.taskid import TaskId
from simnode.wire import task_info_from_pb

ME = DiscoveryNode("C", "coordinator", roles=())


class NoTransport:
    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no remote calls in these tests")

    def node_left(self, node_id: str) -> None:
        pass


def run(scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        node = Node(ME, NoTransport(), cluster=ClusterState(nodes=(ME,)))
        cluster = SimpleNamespace(
            local=node,
            state=ClusterState(nodes=(ME,)),
            results=TaskResultsIndex(),
            transport=NoTransport(),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await scenario(cluster)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def start(cluster: Any, millis: int) -> TaskId:
    spec = pb.TaskSpec(
        action="indices:data/write/reindex", cancellable=True, duration_millis=millis
    )
    return TaskId.parse(cluster.local.start_task(pb.RunTaskRequest(spec=spec)).task_id)


def test_running_task_is_detailed_and_not_completed() -> None:
    async def scenario(cluster: Any) -> None:
        tid = start(cluster, 10_000)
        result = await fanout.get_task(cluster, GetTaskRequest(tid), ())
        assert result.completed is False
        assert result.task.description == "" and result.task.resource_stats is not None

    run(scenario)


def test_wait_returns_the_stored_result_when_there_is_one() -> None:
    async def scenario(cluster: Any) -> None:
        tid = start(cluster, 2_000)
        snapshot = cluster.local.registry.get(tid.id).info(detailed=True, now_nanos=0)
        stored = GetTaskResult(completed=True, task=snapshot, response={"total": 3})
        cluster.results.store(stored)
        result = await fanout.get_task(cluster, GetTaskRequest(tid, wait_for_completion=True), ())
        assert result is stored

    run(scenario)


def test_wait_without_a_stored_result_returns_the_snapshot() -> None:
    async def scenario(cluster: Any) -> None:
        tid = start(cluster, 2_000)
        t0 = trio.current_time()
        result = await fanout.get_task(cluster, GetTaskRequest(tid, wait_for_completion=True), ())
        assert trio.current_time() - t0 == pytest.approx(2.0)
        assert result.completed is True and result.response is None and result.error is None
        assert result.task.task_id == tid

    run(scenario)


def test_not_running_and_never_stored_is_404_caused_by_the_missing_index() -> None:
    async def scenario(cluster: Any) -> None:
        with pytest.raises(ResourceNotFoundError) as e:
            await fanout.get_task(cluster, GetTaskRequest(TaskId("C", 999)), ())
        assert e.value.reason == "task [C:999] isn't running and hasn't stored its results"
        assert e.value.cause is not None and e.value.cause.type == "index_not_found_exception"

    run(scenario)


def test_task_of_a_node_not_in_the_cluster() -> None:
    async def scenario(cluster: Any) -> None:
        with pytest.raises(ResourceNotFoundError) as e:
            await fanout.get_task(cluster, GetTaskRequest(TaskId("X", 1)), ())
        assert e.value.reason == (
            "task [X:1] belongs to the node [X] which isn't part of the cluster and there is no "
            "record of the task"
        )
        assert e.value.cause is not None
        assert e.value.cause.reason == "task [X:1] isn't running and hasn't stored its results"

    run(scenario)


def test_registration_comes_before_validation() -> None:
    async def scenario(cluster: Any) -> None:
        with pytest.raises(ActionRequestValidationError):
            await fanout.get_task(cluster, GetTaskRequest(TaskId("", -1)), ())
        huge = ((X_OPAQUE_ID, "x" * 5000),)
        with pytest.raises(IllegalArgumentError) as e:
            await fanout.get_task(cluster, GetTaskRequest(TaskId("", -1)), huge)
        assert e.value.reason == "Request exceeded the maximum size of task headers 8kb"

    run(scenario)


def test_task_header_size_limit() -> None:
    # each kept header costs 2 * (len(key) + len(value)); the limit is 8kb = 8192
    fits = "v" * (4096 - len(X_OPAQUE_ID))
    assert task_headers([("x-opaque-id", fits)]) == ((X_OPAQUE_ID, fits),)
    with pytest.raises(IllegalArgumentError):
        task_headers([(X_OPAQUE_ID, fits + "v")])
    assert task_headers([("Other", "1")]) == ()


def test_wire_round_trip_keeps_headers() -> None:
    from simnode.wire import task_info_to_pb

    info = task_info_from_pb(
        task_info_to_pb(
            task_info_from_pb(
                pb.TaskInfo(node="C", id=1, headers=[pb.Header(key=X_OPAQUE_ID, value="q")])
            )
        )
    )
    assert info.headers == ((X_OPAQUE_ID, "q"),)
