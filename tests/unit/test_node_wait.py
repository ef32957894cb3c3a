"""`wait_for_completion` on the node side, in virtual time (trio's MockClock): the 30 s default,
the explicit timeout, list tasks never waited for, the final snapshot, `timeout_exception` (504)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from simnode._wire import node_pb2 as pb
from simnode.discovery import DiscoveryNode
from simnode.errors import OpenSearchTimeoutError
from simnode.node import LIST_ACTION, Node

REINDEX = "indices:data/write/reindex"


class NoTransport:
    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no remote calls in these tests")

    def node_left(self, node_id: str) -> None:
        pass


def run(scenario: Callable[[Node], Awaitable[None]]) -> None:
    async def main() -> None:
        node = Node(DiscoveryNode("n1", "node-1"), NoTransport())
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await scenario(node)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def start(node: Node, millis: int) -> str:
    spec = pb.TaskSpec(action=REINDEX, cancellable=True, duration_millis=millis)
    return node.start_task(pb.RunTaskRequest(spec=spec)).task_id


def test_list_waits_for_matching_tasks_and_returns_the_final_snapshot() -> None:
    async def scenario(node: Node) -> None:
        start(node, 5_000)
        start(node, 3_000)
        t0 = trio.current_time()
        answer = await node.list_tasks(
            pb.TasksRequest(actions=["indices:*"], wait_for_completion=True), local=True
        )
        assert trio.current_time() - t0 == pytest.approx(5.0)
        assert [t.running_time_in_nanos for t in answer.tasks] == [5_000_000_000, 5_000_000_000]

    run(scenario)


def test_list_wait_times_out_after_30_seconds_by_default() -> None:
    async def scenario(node: Node) -> None:
        start(node, 60_000)
        t0 = trio.current_time()
        with pytest.raises(OpenSearchTimeoutError) as e:
            await node.list_tasks(pb.TasksRequest(wait_for_completion=True), local=True)
        assert trio.current_time() - t0 == pytest.approx(30.0)
        assert e.value.status == 504
        assert re.fullmatch(
            r"Timed out waiting for completion of \[org\.opensearch\.index\.reindex\.BulkByScrollTask@[0-9a-f]+\]",
            e.value.reason,
        )

    run(scenario)


def test_list_wait_uses_the_timeout_when_given() -> None:
    async def scenario(node: Node) -> None:
        start(node, 60_000)
        t0 = trio.current_time()
        with pytest.raises(OpenSearchTimeoutError):
            await node.list_tasks(
                pb.TasksRequest(wait_for_completion=True, timeout_millis=2_000), local=True
            )
        assert trio.current_time() - t0 == pytest.approx(2.0)

    run(scenario)


def test_list_tasks_are_never_waited_for() -> None:
    async def scenario(node: Node) -> None:
        other_list = node.register(LIST_ACTION, local=False)
        t0 = trio.current_time()
        answer = await node.list_tasks(
            pb.TasksRequest(actions=[LIST_ACTION + "*"], wait_for_completion=True), local=True
        )
        assert trio.current_time() == t0
        assert {t.id for t in answer.tasks} >= {other_list.id}

    run(scenario)


def test_get_waits_then_answers_completed() -> None:
    async def scenario(node: Node) -> None:
        task_id = start(node, 4_000)
        number = int(task_id.split(":")[1])
        running = await node.get_task(pb.GetTaskRequest(id=number), local=True)
        assert running.completed is False and running.task.description == ""
        t0 = trio.current_time()
        done = await node.get_task(
            pb.GetTaskRequest(id=number, wait_for_completion=True), local=True
        )
        assert trio.current_time() - t0 == pytest.approx(4.0)
        assert done.completed is True and done.task.id == number
        gone = await node.get_task(pb.GetTaskRequest(id=number), local=True)
        assert not gone.HasField("task")  # not running: the caller reads the results index

    run(scenario)


def test_get_wait_times_out_with_504() -> None:
    async def scenario(node: Node) -> None:
        number = int(start(node, 600_000).split(":")[1])
        t0 = trio.current_time()
        with pytest.raises(OpenSearchTimeoutError) as e:
            await node.get_task(pb.GetTaskRequest(id=number, wait_for_completion=True), local=True)
        assert trio.current_time() - t0 == pytest.approx(30.0)
        assert e.value.type == "timeout_exception" and e.value.status == 504
        with pytest.raises(OpenSearchTimeoutError):
            await node.get_task(
                pb.GetTaskRequest(id=number, wait_for_completion=True, timeout_millis=1500),
                local=True,
            )
        assert trio.current_time() - t0 == pytest.approx(31.5)

    run(scenario)


def test_an_enclosing_transport_deadline_fires_first() -> None:
    """The transport timeout starts when the request is sent, so with the same `timeout` it wins
    (OpenSearch: `receive_timeout_transport_exception`, not the node's `timeout_exception`)."""

    async def scenario(node: Node) -> None:
        number = int(start(node, 600_000).split(":")[1])
        with trio.move_on_after(2.0) as transport:
            await node.list_tasks(
                pb.TasksRequest(wait_for_completion=True, timeout_millis=2_000), local=True
            )
        assert transport.cancelled_caught
        with trio.move_on_after(1.0) as transport:
            await node.get_task(
                pb.GetTaskRequest(id=number, wait_for_completion=True, timeout_millis=1_000),
                local=False,
            )
        assert transport.cancelled_caught

    run(scenario)
