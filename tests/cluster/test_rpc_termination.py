"""A node process over gRPC: a caller that goes away mid-call still reaches the node's trio side —
a waiting `ListTasks` stops waiting, a `RunTask` child is cancelled ("channel was closed") — and a
call answered normally leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import ROOT

pytestmark = pytest.mark.cluster

LIST_N = "cluster:monitor/tasks/lists[n]"


@pytest.fixture
def stub() -> Iterator[pb_grpc.NodeStub]:
    cmd = [sys.executable, "-m", "simnode", "--id", "A" * 22, "--name", "lonely", "--port", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("READY "), line
        with grpc.insecure_channel(f"127.0.0.1:{line.split()[1]}") as channel:
            yield pb_grpc.NodeStub(channel)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def actions(stub: pb_grpc.NodeStub) -> list[str]:
    return [t.action for t in stub.ListTasks(pb.TasksRequest(), timeout=10).tasks]


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def long_task(action: str) -> pb.TaskSpec:
    return pb.TaskSpec(action=action, cancellable=True, duration_millis=3_600_000)


def test_answered_calls_leave_nothing_behind(stub: pb_grpc.NodeStub) -> None:
    for _ in range(50):
        stub.ListTasks(pb.TasksRequest(), timeout=10)
    assert actions(stub) == [LIST_N]  # only the listing itself
    assert stub.Status(pb.Empty(), timeout=10).live_tasks == 0


def test_a_cancelled_waiting_list_stops_waiting_on_the_node(stub: pb_grpc.NodeStub) -> None:
    stub.StartTask(pb.RunTaskRequest(spec=long_task("test:sleep")), timeout=10)
    waiting = stub.ListTasks.future(
        pb.TasksRequest(actions=["test:sleep"], wait_for_completion=True), timeout=60
    )
    assert wait_until(lambda: actions(stub).count(LIST_N) == 2)  # the waiting one and ours
    waiting.cancel()
    assert wait_until(lambda: actions(stub) == ["test:sleep", LIST_N])


def test_a_run_task_whose_caller_goes_away_is_cancelled(stub: pb_grpc.NodeStub) -> None:
    call = stub.RunTask.future(pb.RunTaskRequest(spec=long_task("test:child")), timeout=60)
    assert wait_until(lambda: "test:child" in actions(stub))
    call.cancel()
    assert wait_until(lambda: actions(stub) == [LIST_N])
