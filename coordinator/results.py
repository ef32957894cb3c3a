"""OpenSearch's `.tasks` index: results stored by tasks that asked for it, as real documents.

`store()` is `TaskResultsService.storeResult`: the `.tasks` index is created on the first store,
as OpenSearch creates it on demand (`TaskResultsService.taskResultIndexSettings`) — one shard,
`auto_expand_replicas: 0-1`, `index.priority` Integer.MAX_VALUE, OpenSearch's strict task mapping
(`task-index-mapping.json`); not hidden: a system index that `_all` and `*` reach, as OpenSearch's
own REST tests see when a refresh of everything refreshes it (OpenSearch then adds a deprecation
`Warning` header, "this request accesses system indices", which tasksim does not send) — and the result is indexed as the
document `<node>:<id>` whose source is `TaskResult.toXContent` (`completed`, `task`, then
`response` or `error`). It is an index like any other: `GET .tasks/_doc/<id>`, `POST .tasks/_search`,
`GET /.tasks`, `DELETE /.tasks` work on it.

`get()` is `TransportGetTaskAction.getFinishedTaskFromIndex`: the stored result, or the 404
`task [<id>] isn't running and hasn't stored its results` — caused by `index_not_found_exception no
such index [.tasks]` while the index does not exist (never created, or deleted). The typed result
(for `?human` rendering) is kept beside the document and answered only while the document is
there. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coordinator.documents import IndexMapping
from coordinator.indices import Indices
from coordinator.render import task_info
from simnode.errors import IndexNotFoundError, OpenSearchError, ResourceNotFoundError
from simnode.registry import TaskInfo
from simnode.taskid import TaskId

TASKS_INDEX = ".tasks"

# `task-index-mapping.json` (strict), plus the fields TaskInfo gained since (not searchable).
TASK_INDEX_MAPPING: dict[str, Any] = {
    "_meta": {"version": 5},
    "dynamic": "strict",
    "properties": {
        "completed": {"type": "boolean"},
        "task": {
            "properties": {
                "action": {"type": "keyword"},
                "cancellable": {"type": "boolean"},
                "cancelled": {"type": "boolean"},
                "id": {"type": "long"},
                "parent_task_id": {"type": "keyword"},
                "node": {"type": "keyword"},
                "running_time_in_nanos": {"type": "long"},
                "start_time_in_millis": {"type": "long"},
                "type": {"type": "keyword"},
                "status": {"type": "object", "enabled": False},
                "description": {"type": "text"},
                "headers": {"type": "object", "enabled": False},
                "resource_stats": {"type": "object", "enabled": False},
                "cancellation_time_millis": {"type": "long"},
            }
        },
        "response": {"type": "object", "enabled": False},
        "error": {"type": "object", "enabled": False},
    },
}


@dataclass(frozen=True)
class GetTaskResult:
    """`GetTaskResponse` / `TaskResult`: `completed`, `task`, then `response` or `error`."""

    completed: bool
    task: TaskInfo
    response: dict[str, Any] | None = None
    error: OpenSearchError | None = None

    def source(self, *, human: bool = False) -> dict[str, Any]:
        """`TaskResult.innerToXContent`: the `.tasks` document, and `GET _tasks/<id>`'s body."""
        body: dict[str, Any] = {
            "completed": self.completed,
            "task": task_info(self.task, human=human),
        }
        if self.error is not None:
            body["error"] = self.error.xcontent()
        if self.response is not None:
            body["response"] = self.response
        return body


class TaskResultsIndex:
    def __init__(
        self, indices: Indices | None = None, data_nodes: Callable[[], list[str]] = list
    ) -> None:
        self.indices = indices if indices is not None else Indices()
        self._data_nodes = data_nodes
        self._typed: dict[str, tuple[int, GetTaskResult]] = {}  # doc id → (seq_no, result)

    @property
    def exists(self) -> bool:
        return TASKS_INDEX in self.indices

    def _ensure(self, now: float) -> None:
        if self.exists:
            return
        nodes = self._data_nodes()
        self.indices.create(
            TASKS_INDEX,
            nodes,
            shards=1,
            replicas=1 if len(nodes) > 1 else 0,  # auto_expand_replicas 0-1
            auto_expand_replicas="0-1",
            priority=2**31 - 1,
            mapping=IndexMapping.from_body(TASK_INDEX_MAPPING),
            now=now,
        )

    def store(self, result: GetTaskResult, now: float = 0.0) -> None:
        self._ensure(now)
        doc_id = str(result.task.task_id)
        written = self.indices.docs(TASKS_INDEX).index(doc_id, result.source())
        self._typed[doc_id] = (written.seq_no, result)

    def get(self, task_id: TaskId) -> GetTaskResult:
        reason = f"task [{task_id}] isn't running and hasn't stored its results"
        if not self.exists:
            raise ResourceNotFoundError(reason, cause=IndexNotFoundError.of(TASKS_INDEX))
        doc = self.indices.docs(TASKS_INDEX).get(str(task_id))
        typed = self._typed.get(str(task_id))
        if doc is None or typed is None or typed[0] != doc.seq_no:
            raise ResourceNotFoundError(reason)
        return typed[1]

    def __len__(self) -> int:
        return len(self.indices.docs(TASKS_INDEX)) if self.exists else 0
