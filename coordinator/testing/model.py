"""Plain values for property tests of a tasksim cluster: the shapes strategies draw (a cluster's
nodes and roles, a task tree, a list request) and what a test compares answers with — the ground
truth of every node read over the control channel (`GET /_sim/nodes?tasks=true`, which faults never
touch), flattened list answers, descendants, orphans and bans.

The expectations here are written from OpenSearch's rules, not from tasksim's code: an action
pattern is `Regex.simpleMatch` (`*` only), a node selector here is a list of names, a tree's task
runs on the node its spec names. Reading the cluster is the only I/O (`Snapshot.read`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from coordinator.client import WALL_CLOCK, Clock, SimClient

T = TypeVar("T")

# The tasks a Tasks API request registers for itself; they come and go with every request.
TRANSIENT_ACTIONS = (
    "cluster:monitor/tasks/lists",
    "cluster:admin/tasks/cancel",
    "internal:admin/tasks/ban",
    "cluster:monitor/task/get",
)
LIST_ACTION = "cluster:monitor/tasks/lists"
LIST_NODE_ACTION = "cluster:monitor/tasks/lists[n]"


def is_transient(action: str) -> bool:
    return action.startswith(TRANSIENT_ACTIONS)


def simple_match(pattern: str, value: str) -> bool:
    """OpenSearch's `Regex.simpleMatch`: `*` matches any run of characters, nothing else is special.

    The model's own algorithm, independent of simnode/regex.py's: the set of pattern positions
    reachable after each character (an NFA run), O(len(pattern) * len(value)) whatever the
    pattern — never a backtracking regex, which is exponential in the number of `*`s."""

    def closure(positions: set[int]) -> set[int]:
        out = set(positions)
        for i in sorted(positions):
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
                out.add(j)
        return out

    states = closure({0})
    for c in value:
        step = set()
        for i in states:
            if i < len(pattern):
                if pattern[i] == "*":
                    step.add(i)
                elif pattern[i] == c:
                    step.add(i + 1)
        states = closure(step)
        if not states:
            return False
    return len(pattern) in states


# -- a cluster's shape ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterShape:
    """Named nodes with their roles (the coordinating node is not among them)."""

    nodes: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.nodes]

    def with_role(self, role: str) -> list[str]:
        return [n for n, roles in self.nodes if role in roles]

    def __str__(self) -> str:
        return ", ".join(f"{n}[{','.join(r) or '-'}]" for n, r in self.nodes)


# -- task trees -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTree:
    """A tree of simulated tasks for `POST /_sim/tasks`: each task runs on `node` until cancelled."""

    node: str
    action: str
    children: tuple[TaskTree, ...] = ()

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"node": self.node, "action": self.action}
        if self.children:
            out["children"] = [c.body() for c in self.children]
        return out

    def size(self) -> int:
        return 1 + sum(c.size() for c in self.children)

    def nodes(self) -> frozenset[str]:
        return frozenset({self.node}).union(*(c.nodes() for c in self.children))

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[TaskTree, tuple[str, ...]]]:
        """Every task with the nodes of its ancestors (root first)."""
        yield self, path
        for c in self.children:
            yield from c.walk((*path, self.node))

    def __str__(self) -> str:
        inner = " ".join(str(c) for c in self.children)
        head = f"{self.action.rsplit('/', 1)[-1]}@{self.node}"
        return f"({head} {inner})" if inner else head


# -- list requests --------------------------------------------------------------------------------


def format_timeout(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class ListRequest:
    """`GET _tasks` with its parameters; `nodes` empty = every node."""

    nodes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    parent_task_id: str | None = None
    detailed: bool = False
    group_by: str = "nodes"
    timeout: float | None = None

    def path(self) -> str:
        params: dict[str, str] = {}
        if self.nodes:
            params["nodes"] = ",".join(self.nodes)
        if self.actions:
            params["actions"] = ",".join(self.actions)
        if self.parent_task_id is not None:
            params["parent_task_id"] = self.parent_task_id
        if self.detailed:
            params["detailed"] = "true"
        if self.group_by != "nodes":
            params["group_by"] = self.group_by
        if self.timeout is not None:
            params["timeout"] = format_timeout(self.timeout)
        query = urllib.parse.urlencode(params, safe=":/*,[]")
        return "/_tasks" + ("?" + query if query else "")

    def targets(self, names: Sequence[str]) -> set[str]:
        return set(self.nodes) if self.nodes else set(names)

    def matches(self, action: str, parent: str | None) -> bool:
        if self.actions and not any(simple_match(p, action) for p in self.actions):
            return False
        return self.parent_task_id is None or parent == self.parent_task_id


def listed_tasks(body: Any) -> list[dict[str, Any]]:
    """Every task of a list answer, whatever its `group_by` (children of `parents` included)."""
    out: list[dict[str, Any]] = []

    def take(task: dict[str, Any]) -> None:
        out.append(task)
        for child in task.get("children", []):
            take(child)

    if not isinstance(body, dict):
        return out
    for node in (body.get("nodes") or {}).values():
        for task in (node.get("tasks") or {}).values():
            take(task)
    tasks = body.get("tasks")
    if isinstance(tasks, dict):
        for task in tasks.values():
            take(task)
    elif isinstance(tasks, list):
        for task in tasks:
            take(task)
    return out


def failures_by_node(body: Any) -> list[tuple[str, str]]:
    """(node id, caused_by type) of each `node_failures` entry, in order (duplicates kept)."""
    out = []
    for failure in body.get("node_failures", []) if isinstance(body, dict) else []:
        cause = failure.get("caused_by") or {}
        out.append((str(failure.get("node_id")), str(cause.get("type"))))
    return out


# -- ground truth ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveTask:
    key: str  # "<node id>:<id>"
    node: str  # the node's name
    parent: str | None
    action: str
    cancellable: bool
    cancelled: bool


@dataclass
class Snapshot:
    """Every process's tasks and bans as its own registry has them, read over the control
    channel; a paused or dead process cannot be read (`readable`)."""

    raw: dict[str, Any]
    tasks: dict[str, LiveTask] = field(default_factory=dict)
    readable: frozenset[str] = frozenset()
    ids: dict[str, str] = field(default_factory=dict)  # name → node id
    bans: dict[str, dict[str, str]] = field(default_factory=dict)  # name → parent → reason

    @classmethod
    def read(cls, sim: SimClient) -> Snapshot:
        raw = sim.nodes(tasks=True)
        snap = cls(raw)
        readable = set()
        for name, entry in raw.items():
            snap.ids[name] = entry["id"]
            if not entry.get("reachable"):
                continue
            readable.add(name)
            snap.bans[name] = {b["parent_task_id"]: b["reason"] for b in entry.get("bans", [])}
            for t in entry.get("tasks", []):
                key = f"{entry['id']}:{t['id']}"
                snap.tasks[key] = LiveTask(
                    key,
                    name,
                    t.get("parent_task_id"),
                    t["action"],
                    t["cancellable"],
                    t["cancelled"],
                )
        snap.readable = frozenset(readable)
        return snap

    def name_of(self, node_id: str) -> str | None:
        return next((n for n, i in self.ids.items() if i == node_id), None)

    def work(self) -> dict[str, LiveTask]:
        """The tasks that are not a Tasks API request's own."""
        return {k: t for k, t in self.tasks.items() if not is_transient(t.action)}

    def descendants(self, root: str) -> dict[str, LiveTask]:
        """The live tasks under `root` (root included when live)."""
        children: dict[str, list[str]] = {}
        for k, t in self.tasks.items():
            if t.parent:
                children.setdefault(t.parent, []).append(k)
        out: dict[str, LiveTask] = {}
        frontier = [root]
        if root in self.tasks:
            out[root] = self.tasks[root]
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in out:
                    out[child] = self.tasks[child]
                    frontier.append(child)
        return out

    def ancestors_nodes(self, key: str) -> list[str]:
        """The node names from `key`'s root down to `key` itself (as far as the parents are live)."""
        names = []
        seen = set()
        current: str | None = key
        while current is not None and current in self.tasks and current not in seen:
            seen.add(current)
            names.append(self.tasks[current].node)
            current = self.tasks[current].parent
        return names[::-1]

    def orphans(self) -> list[str]:
        """Work whose parent task is gone although the parent's node can be read."""
        problems = []
        for t in self.work().values():
            if not t.parent:
                continue
            parent_node = self.name_of(t.parent.split(":", 1)[0])
            if t.parent not in self.tasks and (parent_node is None or parent_node in self.readable):
                problems.append(f"{t.node}: {t.key} ({t.action}) has no parent {t.parent}")
        return problems

    def ban_list(self) -> list[str]:
        return [f"{n} bans {p} ({r})" for n, bans in self.bans.items() for p, r in bans.items()]


def wait_for(
    check: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    clock: Clock = WALL_CLOCK,
) -> T:
    """Poll `check()` until `done(value)`; return the last value either way (the caller asserts).

    `clock` is the cluster's (`sim.clock`): the machine's on the real engine, the world's virtual
    time on the sim engine, where a poll costs no wall time and the answer is the same every run."""
    deadline = clock.now() + timeout
    value = check()
    while not done(value) and clock.now() < deadline:
        clock.sleep(interval)
        value = check()
    return value
