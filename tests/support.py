"""Helpers for cluster tests: start simulated task trees on a node over its real gRPC `StartTask`,
and look tasks up in a `_tasks` answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import RunningCluster


def spec(
    action: str,
    *,
    millis: int = 600_000,
    cancellable: bool = True,
    description: str = "",
    status: dict[str, Any] | None = None,
    children: Sequence[tuple[str, pb.TaskSpec]] = (),
) -> pb.TaskSpec:
    """A task tree: `children` are (node id, spec) pairs."""
    s = pb.TaskSpec(
        action=action,
        cancellable=cancellable,
        duration_millis=millis,
        description=description,
        children=[pb.ChildSpec(node_id=n, task=c) for n, c in children],
        on_cancel="immediate",
    )
    if status is not None:
        s.status_json = json.dumps(status)
    return s


def start(
    cluster: RunningCluster,
    node_name: str,
    tree: pb.TaskSpec,
    *,
    headers: Sequence[tuple[str, str]] = (),
    copies: int = 1,
) -> list[str]:
    """Start `copies` trees on `node_name`; returns the root task ids."""
    address = cluster.node(node_name).address
    with grpc.insecure_channel(address) as channel:
        answer = pb_grpc.NodeStub(channel).StartTask(
            pb.RunTaskRequest(
                spec=tree,
                headers=[pb.Header(key=k, value=v) for k, v in headers],
                copies=copies,
            ),
            timeout=10,
        )
    return list(answer.task_ids)


def wait_for_tasks(cluster: RunningCluster, actions: str, count: int, timeout: float = 20) -> None:
    """Wait until `count` tasks matching `actions` are listed (children start in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        _, body = cluster.get(f"/_tasks?actions={actions}&group_by=none")
        if len(body["tasks"]) >= count or time.monotonic() > deadline:
            assert len(body["tasks"]) >= count, body
            return
        time.sleep(0.05)


def all_tasks(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every task of a list answer, whatever the grouping (children included)."""

    def walk(t: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield t
        for child in t.get("children", ()):
            yield from walk(child)

    if "nodes" in body:
        for node in body["nodes"].values():
            yield from node["tasks"].values()
    tasks = body.get("tasks", ())
    for t in tasks.values() if isinstance(tasks, dict) else tasks:
        yield from walk(t)


def task_id(t: dict[str, Any]) -> str:
    return f"{t['node']}:{t['id']}"


def by_action(body: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [t for t in all_tasks(body) if t["action"] == action]
