"""A bug in a node's background work is contained (issue 14, defect 4), in virtual time: `spawn`
logs the traceback and keeps the node's nursery alive, and a simulated task whose work raises a
Python error fails with a 500 `exception`, as `RunTask` answers it."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from simnode._wire import node_pb2 as pb
from simnode.discovery import DiscoveryNode
from simnode.errors import OpenSearchError
from simnode.node import Node
from tests.unit.test_node_wait import NoTransport


def test_a_bug_in_spawned_work_is_logged_and_the_node_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    served: list[str] = []

    async def buggy() -> None:
        await trio.sleep(1)
        raise ZeroDivisionError("division by zero")

    async def main() -> None:
        node = Node(DiscoveryNode("n1", "node-1"), NoTransport())
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            node.spawn("the buggy job", buggy)
            await trio.sleep(2)  # virtual time: the bug has happened
            answer = await node.run_task(
                pb.RunTaskRequest(spec=pb.TaskSpec(action="a", duration_millis=5)), local=True
            )
            served.append(answer.task.action)
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.ERROR, logger="tasksim.node"):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert served == ["a"]
    [record] = caplog.records
    assert "a bug in the buggy job on node [node-1]" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_a_bug_in_a_tasks_work_fails_the_task_with_a_500() -> None:
    async def main() -> OpenSearchError:
        node = Node(DiscoveryNode("n1", "node-1"), NoTransport())
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            with pytest.raises(OpenSearchError) as caught:
                await node.run_task(
                    pb.RunTaskRequest(spec=pb.TaskSpec(action="a", bug="work")), local=True
                )
            assert len(node.registry) == 0  # the task is gone
            nursery.cancel_scope.cancel()
        return caught.value

    error = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert (error.type, error.status) == ("exception", 500)
    assert error.reason == "SimulatedBug: simulated bug in the work of task [n1:1]"
