"""Helpers for the ML Commons tests: settings, waiting for a task state, reading `_tasks`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.harness import RunningCluster
from tests.spec_schema import validate

T = TypeVar("T")

MINILM = {
    "name": "huggingface/sentence-transformers/all-MiniLM-L6-v2",
    "version": "1.0.1",
    "model_format": "TORCH_SCRIPT",
}


def send(cluster: RunningCluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    status, answer, _ = cluster.request(method, path, body=data, headers=headers)
    return status, answer


def settings(cluster: RunningCluster, **values: Any) -> None:
    """PUT transient ML settings (dots in names written as `__`: plugins__ml_commons__x)."""
    flat = {k.replace("__", "."): v for k, v in values.items()}
    status, body = send(cluster, "PUT", "/_cluster/settings", {"transient": flat})
    assert status == 200, body


def wait_for(fn: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def get_task(cluster: RunningCluster, task_id: str) -> dict[str, Any]:
    status, body = cluster.get(f"/_plugins/_ml/tasks/{task_id}")
    assert status == 200, body
    validate(body, "Task")
    assert isinstance(body, dict)
    return body


def wait_state(
    cluster: RunningCluster, task_id: str, *states: str, timeout: float = 30
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task = get_task(cluster, task_id)
        return task if task["state"] in states else None

    return wait_for(check, timeout, f"ML task {task_id} in {states}")


def register(cluster: RunningCluster, body: dict[str, Any] | None = None) -> str:
    status, answer = send(cluster, "POST", "/_plugins/_ml/models/_register", body or MINILM)
    assert status == 200, answer
    return str(answer["task_id"])


def registered_model(cluster: RunningCluster) -> str:
    task = wait_state(cluster, register(cluster), "COMPLETED")
    return str(task["model_id"])


def deploy(cluster: RunningCluster, model_id: str, body: Any = None) -> str:
    status, answer = send(cluster, "POST", f"/_plugins/_ml/models/{model_id}/_deploy", body)
    assert status == 200, answer
    assert list(answer) == ["task_id", "task_type", "status"]
    assert answer["task_type"] == "DEPLOY_MODEL" and answer["status"] == "CREATED"
    return str(answer["task_id"])


def tasks_by_action(cluster: RunningCluster, prefix: str) -> list[dict[str, Any]]:
    """Every running task whose action starts with `prefix` (group_by=none, detailed)."""
    status, body = cluster.get("/_tasks?group_by=none&detailed=true")
    assert status == 200, body
    return [t for t in body["tasks"] if t["action"].startswith(prefix)]
