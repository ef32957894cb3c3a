"""Helpers for tests that start task trees with `POST /_sim/tasks` and watch them over HTTP."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from tests.harness import RunningCluster

T = TypeVar("T")


def start(cluster: RunningCluster, body: dict[str, Any], **params: str) -> str:
    """Start a tree; returns the root's task id."""
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    status, answer = cluster.post(
        "/_sim/tasks" + query,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200, answer
    return str(answer["task"])


def tasks(cluster: RunningCluster, **params: str) -> list[dict[str, Any]]:
    """Every task `GET _tasks?group_by=none&detailed` lists (list/cancel tasks of the query left out)."""
    query = urllib.parse.urlencode({"group_by": "none", "detailed": "true", **params})
    status, body = cluster.get("/_tasks?" + query)
    assert status == 200, body
    return [t for t in body["tasks"] if not t["action"].startswith("cluster:monitor/tasks/lists")]


def ids(listed: list[dict[str, Any]]) -> set[str]:
    return {f"{t['node']}:{t['id']}" for t in listed}


def descendants(cluster: RunningCluster, root: str) -> list[dict[str, Any]]:
    """The live tasks of the tree under `root` (root included), from one cluster-wide listing."""
    listed = tasks(cluster)
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for t in listed:
        by_parent.setdefault(t.get("parent_task_id", ""), []).append(t)
    found = [t for t in listed if f"{t['node']}:{t['id']}" == root]
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in by_parent.get(parent, []):
            found.append(child)
            frontier.append(f"{child['node']}:{child['id']}")
    return found


def bans(cluster: RunningCluster) -> dict[str, dict[str, str]]:
    """Node name -> {banned parent task id: reason}."""
    status, body = cluster.get("/_sim/bans")
    assert status == 200, body
    return {entry["name"]: entry["bans"] for entry in body["nodes"].values()}


def wait_until(check: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.05) -> T:
    """Poll until `check()` returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)
        value = check()
    return value
