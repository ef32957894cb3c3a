"""OpenSearch's `.tasks` index: results stored by tasks that asked for it, held by the coordinator.

`get()` is `TransportGetTaskAction.getFinishedTaskFromIndex`: the stored `{completed, task,
response|error}` document, or the 404 `task [<id>] isn't running and hasn't stored its results`
(caused by `index_not_found_exception no such index [.tasks]` while no result was ever stored).
The index is created on the first store, as OpenSearch creates it on demand. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simnode.errors import IndexNotFoundError, OpenSearchError, ResourceNotFoundError
from simnode.registry import TaskInfo
from simnode.taskid import TaskId

TASKS_INDEX = ".tasks"


@dataclass(frozen=True)
class GetTaskResult:
    """`GetTaskResponse` / `TaskResult`: `completed`, `task`, then `response` or `error`."""

    completed: bool
    task: TaskInfo
    response: dict[str, Any] | None = None
    error: OpenSearchError | None = None


class TaskResultsIndex:
    def __init__(self) -> None:
        self._docs: dict[TaskId, GetTaskResult] = {}
        self.exists = False

    def store(self, result: GetTaskResult) -> None:
        self.exists = True
        self._docs[result.task.task_id] = result

    def get(self, task_id: TaskId) -> GetTaskResult:
        doc = self._docs.get(task_id)
        if doc is not None:
            return doc
        reason = f"task [{task_id}] isn't running and hasn't stored its results"
        if not self.exists:
            raise ResourceNotFoundError(reason, cause=IndexNotFoundError.of(TASKS_INDEX))
        raise ResourceNotFoundError(reason)

    def __len__(self) -> int:
        return len(self._docs)
