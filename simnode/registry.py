"""A node's task registry: OpenSearch's `TaskManager` without the threads.

Everything that decides what a node's tasks are lives here: id allocation (per node, from 1),
registration with parent links and thread-context headers (and OpenSearch's header-size limit),
matching (`BaseTasksRequest.match`), cancellation (`CancellableTask.cancel`: the first cancel wins),
bans (`TaskManager.setBan`: a new cancellable child of a banned parent fails before it starts), the
per-parent record of nodes with outstanding children (`CancellableTaskHolder`), and the `TaskInfo`
snapshot with OpenSearch's rules for which fields appear.

It never does I/O, never sleeps and never reads a clock: times are arguments. The trio loop of the
node process is its only owner (DESIGN.md rule 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simnode.errors import IllegalArgumentError, RejectedExecutionError, TaskCancelledError
from simnode.regex import simple_match_any
from simnode.taskid import EMPTY_TASK_ID, TaskId

TRANSPORT = "transport"
DIRECT = "direct"

X_OPAQUE_ID = "X-Opaque-Id"
# `http.max_header_size` default: ByteSizeValue(8, KB), printed as "8kb".
DEFAULT_MAX_HEADER_BYTES = 8 * 1024
DEFAULT_MAX_HEADER_TEXT = "8kb"

Headers = tuple[tuple[str, str], ...]

# How a simulated task reacts when it is cancelled: at once, at its next checkpoint, or not for
# a while (a "zombie" that stays listed with `cancelled: true`).
ON_CANCEL_MODES = ("immediate", "checkpoint", "ignore")
# The `bug` test hook of a simulated task: where a simulated tasksim bug is raised (simnode/node.py).
BUG_WORK = "work"
BUG_CANCEL = "cancel"
BUG_HOOKS = (BUG_WORK, BUG_CANCEL)


@dataclass(frozen=True, slots=True)
class UsageStats:
    cpu_time_in_nanos: int = 0
    memory_in_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ResourceStats:
    """`TaskResourceStats`: usage per kind plus `thread_info` (2.9+)."""

    total: UsageStats = UsageStats()
    average: UsageStats = UsageStats()
    min: UsageStats = UsageStats()
    max: UsageStats = UsageStats()
    thread_executions: int = 0
    active_threads: int = 0


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A snapshot of a task, as `Task.taskInfo(nodeId, detailed)` builds it.

    `status`, `description` and `resource_stats` are None when OpenSearch omits them (not detailed);
    `parent_task_id` is EMPTY_TASK_ID when unset; `cancellation_time_millis` only when cancelled.
    """

    node: str
    id: int
    type: str
    action: str
    start_time_in_millis: int
    running_time_in_nanos: int
    cancellable: bool
    cancelled: bool
    parent_task_id: TaskId = EMPTY_TASK_ID
    headers: Headers = ()
    status: dict[str, Any] | None = None
    description: str | None = None
    resource_stats: ResourceStats | None = None
    cancellation_time_millis: int | None = None

    @property
    def task_id(self) -> TaskId:
        return TaskId(self.node, self.id)

    def __post_init__(self) -> None:
        if self.cancelled and not self.cancellable:
            raise IllegalArgumentError("task cannot be cancelled")


@dataclass(frozen=True, slots=True)
class CancelledInfo:
    reason: str
    time_millis: int
    time_nanos: int


@dataclass(slots=True, eq=False)
class Task:
    """A registered task. Mutable parts: `status`, `cancelled`, `resources`, `child_nodes`."""

    id: int
    node_id: str
    type: str
    action: str
    description: str
    parent: TaskId
    headers: Headers
    start_time_millis: int
    start_time_nanos: int
    cancellable: bool
    status: dict[str, Any] | None = None
    cancelled: CancelledInfo | None = None
    resources: ResourceStats = ResourceStats()
    # CancellableTaskHolder: nodes this task has outstanding child requests on, with counts.
    child_nodes: dict[str, int] = field(default_factory=dict)
    # A status that changes with time (bulk-by-scroll): called with the snapshot's nanos.
    status_fn: Callable[[int], dict[str, Any]] | None = None

    @property
    def task_id(self) -> TaskId:
        return TaskId(self.node_id, self.id)

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled is not None

    def current_status(self, now_nanos: int) -> dict[str, Any] | None:
        if self.status_fn is not None:
            return self.status_fn(now_nanos)
        return dict(self.status) if self.status is not None else None

    def info(self, *, detailed: bool, now_nanos: int) -> TaskInfo:
        return TaskInfo(
            node=self.node_id,
            id=self.id,
            type=self.type,
            action=self.action,
            start_time_in_millis=self.start_time_millis,
            running_time_in_nanos=max(0, now_nanos - self.start_time_nanos),
            cancellable=self.cancellable,
            cancelled=self.cancelled is not None,
            parent_task_id=self.parent,
            headers=self.headers,
            status=self.current_status(now_nanos) if detailed else None,
            description=self.description if detailed else None,
            resource_stats=self.resources if detailed else None,
            cancellation_time_millis=self.cancelled.time_millis if self.cancelled else None,
        )


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """`BaseTasksRequest.match` (and `CancelTasksRequest.match` with `cancellable_only`)."""

    actions: tuple[str, ...] = ()
    task_id: TaskId = EMPTY_TASK_ID
    parent_task_id: TaskId = EMPTY_TASK_ID
    cancellable_only: bool = False

    def match(self, task: Task) -> bool:
        if self.actions and not simple_match_any(self.actions, task.action):
            return False
        if self.task_id.is_set() and self.task_id.id != task.id:
            return False
        if self.parent_task_id.is_set() and self.parent_task_id != task.parent:
            return False
        return not (self.cancellable_only and not task.cancellable)


def task_headers(
    headers: Iterable[tuple[str, str]],
    *,
    allowed: Iterable[str] = (X_OPAQUE_ID,),
    max_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_text: str = DEFAULT_MAX_HEADER_TEXT,
) -> Headers:
    """The task headers taken from a request's thread context, as `TaskManager.register` does.

    Lookup is case-insensitive; the key is stored with the configured spelling (`X-Opaque-Id`).
    Each kept header costs `2 * (len(key) + len(value))`; past `max_bytes` the request fails.
    """
    by_lower = {k.lower(): v for k, v in headers}
    kept: list[tuple[str, str]] = []
    size = 0
    for key in allowed:
        value = by_lower.get(key.lower())
        if value is None:
            continue
        size += 2 * len(key) + 2 * len(value)
        if size > max_bytes:
            raise IllegalArgumentError(
                f"Request exceeded the maximum size of task headers {max_text}"
            )
        kept.append((key, value))
    return tuple(kept)


def check_live_tasks(live: int, limit: int | None, action: str, node_name: str) -> None:
    """`tasksim.node.max_live_tasks`: new simulated work is refused once a node holds `limit` live
    tasks (the Tasks API's own tasks are never refused: a full node must stay listable and
    cancellable)."""
    if limit is not None and live >= limit:
        raise RejectedExecutionError(
            f"rejected execution of [{action}] on node [{node_name}]: {live} tasks are live, "
            f"the limit is {limit} (tasksim.node.max_live_tasks)"
        )


def _by_id(task: Task) -> int:
    return task.id


class Registry:
    """The live tasks of one node, in registration order, and the bans it holds."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._tasks: dict[int, Task] = {}
        # The same tasks by action (registration order within each), so that an `actions` filter
        # costs what it matches, not what the node holds.
        self._by_action: dict[str, dict[int, Task]] = {}
        self._last_id = 0
        self._bans: dict[TaskId, str] = {}
        self._ban_marks: dict[TaskId, int] = {}  # the last task id when the ban was set
        # Told of every lifecycle change, `(event type, fields)` (simnode/history.py records
        # them); None: nobody listens.
        self.listener: Callable[[str, dict[str, Any]], None] | None = None

    # -- registration ----------------------------------------------------------------------------

    def register(
        self,
        *,
        action: str,
        now_millis: int,
        now_nanos: int,
        type: str = TRANSPORT,
        parent: TaskId = EMPTY_TASK_ID,
        headers: Headers = (),
        cancellable: bool = False,
        description: str = "",
        status: dict[str, Any] | None = None,
    ) -> Task:
        """Register a task. A cancellable task whose parent is banned gets its id, is cancelled and
        unregistered at once, and `Task cancelled before it started: <reason>` is raised."""
        self._last_id += 1
        task = Task(
            id=self._last_id,
            node_id=self.node_id,
            type=type,
            action=action,
            description=description,
            parent=parent,
            headers=headers,
            start_time_millis=now_millis,
            start_time_nanos=now_nanos,
            cancellable=cancellable,
            status=status,
        )
        if cancellable and parent.is_set() and parent in self._bans:
            raise TaskCancelledError(f"Task cancelled before it started: {self._bans[parent]}")
        self._tasks[task.id] = task
        self._by_action.setdefault(task.action, {})[task.id] = task
        if self.listener is not None:
            self.listener(
                "task_registered",
                {
                    "task": str(task.task_id),
                    "action": action,
                    "parent": str(parent) if parent.is_set() else None,
                    "cancellable": cancellable,
                },
            )
        return task

    def unregister(self, task: Task) -> Task | None:
        found = self._tasks.pop(task.id, None)
        if found is not None:
            same = self._by_action[found.action]
            del same[found.id]
            if not same:
                del self._by_action[found.action]
            if self.listener is not None:
                self.listener("task_unregistered", {"task": str(found.task_id)})
        return found

    # -- lookup ----------------------------------------------------------------------------------

    def get(self, task_id: int) -> Task | None:
        return self._tasks.get(task_id)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def matching(self, task_filter: TaskFilter) -> list[Task]:
        """The tasks `task_filter.match` accepts, in registration order.

        Each criterion is decided once per call, not once per task: the action patterns are matched
        against the distinct actions of the node, and only the tasks of the matching actions are
        looked at (a filtered list over 100 000 tasks costs what it finds)."""
        f = task_filter
        tasks: list[Task]
        if f.task_id.is_set():
            found = self._tasks.get(f.task_id.id)
            tasks = [found] if found is not None else []
            if f.actions:
                tasks = [t for t in tasks if simple_match_any(f.actions, t.action)]
        elif f.actions:
            groups = [g for a, g in self._by_action.items() if simple_match_any(f.actions, a)]
            if len(groups) == 1:
                tasks = list(groups[0].values())
            else:  # ids grow with registration: id order is registration order
                tasks = sorted((t for g in groups for t in g.values()), key=_by_id)
        else:
            tasks = list(self._tasks.values())
        if f.parent_task_id.is_set():
            parent = f.parent_task_id
            tasks = [t for t in tasks if t.parent == parent]
        if f.cancellable_only:
            tasks = [t for t in tasks if t.cancellable]
        return tasks

    def children_of(self, parent: TaskId) -> list[Task]:
        return [t for t in self._tasks.values() if t.parent == parent]

    # -- cancellation ----------------------------------------------------------------------------

    def cancel(self, task: Task, reason: str, *, now_millis: int, now_nanos: int) -> bool:
        """`CancellableTask.cancel`: the first call records reason and time; later calls change
        nothing. Returns True only for the call that cancelled the task."""
        if not task.cancellable:
            raise IllegalArgumentError(f"task [{task.task_id}] is not cancellable")
        if task.cancelled is not None:
            return False
        task.cancelled = CancelledInfo(reason, now_millis, now_nanos)
        if self.listener is not None:
            self.listener("task_cancelled", {"task": str(task.task_id), "reason": reason})
        return True

    def register_child_node(self, task: Task, node_id: str) -> None:
        """Record an outstanding child request of `task` on `node_id` before it is sent.

        Sending a child after the parent was cancelled fails as `CancellableTaskHolder` does
        (2.16+ wording, with the ban reason appended)."""
        if task.cancelled is not None:
            raise TaskCancelledError(
                "The parent task was cancelled, shouldn't start any child tasks, "
                f"{task.cancelled.reason}"
            )
        task.child_nodes[node_id] = task.child_nodes.get(node_id, 0) + 1

    def unregister_child_node(self, task: Task, node_id: str) -> None:
        count = task.child_nodes.get(node_id, 0) - 1
        if count > 0:
            task.child_nodes[node_id] = count
        else:
            task.child_nodes.pop(node_id, None)

    # -- bans ------------------------------------------------------------------------------------

    def set_ban(self, parent: TaskId, reason: str, *, record: bool = True) -> list[Task]:
        """Ban `parent`: no new cancellable child of it may start here. Returns the live
        cancellable children of `parent` on this node, which the caller must cancel.

        OpenSearch records the ban only when the parent's node is in the cluster (`record`); the
        children are returned either way."""
        if record:
            if self.listener is not None and parent not in self._bans:
                self.listener("ban_set", {"parent": str(parent), "reason": reason})
            self._bans[parent] = reason
            self._ban_marks.setdefault(parent, self._last_id)
        return [t for t in self._tasks.values() if t.parent == parent and t.cancellable]

    def remove_ban(self, parent: TaskId) -> None:
        if self._bans.pop(parent, None) is not None and self.listener is not None:
            self.listener("ban_removed", {"parent": str(parent), "why": "unban"})
        self._ban_marks.pop(parent, None)

    def remove_bans_of_node(self, node_id: str) -> None:
        """Bans whose parent's node left the cluster are dropped (`applyClusterState`)."""
        for parent in [p for p in self._bans if p.node_id == node_id]:
            del self._bans[parent]
            self._ban_marks.pop(parent, None)
            if self.listener is not None:
                self.listener("ban_removed", {"parent": str(parent), "why": "node_left"})

    @property
    def bans(self) -> dict[TaskId, str]:
        return dict(self._bans)

    @property
    def ban_marks(self) -> dict[TaskId, int]:
        """For each ban, the last task id registered before it was set: a cancellable child of
        the banned parent with a higher id started under the ban (which must never happen)."""
        return dict(self._ban_marks)
