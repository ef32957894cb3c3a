"""The scenario checks, as pure functions of what the runner observed.

`always` — they must hold at every observation of the run:
- `nodes_accounted`: in every answer to an unfiltered `GET _tasks`, each node targeted (the cluster's
  members when the request was sent and answered) is accounted for exactly once, either in `nodes`
  or in `node_failures` — never twice, never missing, never a stranger;
- `no_child_under_ban`: no node ever holds a cancellable task whose parent it has banned and that
  registered after the ban was set (its id is above the ban's mark — ids grow on a node).

`eventually` — after the final heal they must come true within a deadline:
- `no_cancelled_descendants`: no live task descends from a task that was seen cancelled;
- `no_bans`: no node holds a ban;
- `no_live_work`: no node runs any task at all.

The ground truth comes from the control channel (`GET /_sim/nodes?tasks=true`), which faults never
touch. Observations are dicts as that endpoint renders them. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coordinator.scenario.expect import answering_nodes, failed_nodes

Sample = dict[str, Any]  # node name → the /_sim/nodes entry (id, pid, bans, tasks, ...)


def nodes_accounted(
    body: Any, before: set[str], after: set[str], names_by_id: dict[str, str]
) -> list[str]:
    """`before`/`after`: the ids in the cluster when the request left and when it came back."""
    answered = answering_nodes(body)
    failed = list(failed_nodes(body))
    problems = []
    seen = answered + failed
    for node_id in sorted(set(seen)):
        if seen.count(node_id) > 1:
            where = (
                "in both nodes and node_failures"
                if node_id in answered and node_id in failed
                else "twice"
            )
            problems.append(f"node {names_by_id.get(node_id, node_id)} is accounted for {where}")
    accounted = set(seen)
    for node_id in sorted((before & after) - accounted):
        problems.append(
            f"node {names_by_id.get(node_id, node_id)} was targeted but is in neither nodes nor node_failures"
        )
    for node_id in sorted(accounted - (before | after)):
        problems.append(
            f"node {names_by_id.get(node_id, node_id)} answered but was not in the cluster"
        )
    return problems


def children_under_ban(sample: Sample) -> list[str]:
    problems = []
    for name, node in sample.items():
        marks = {b["parent_task_id"]: b["mark"] for b in node.get("bans", [])}
        for task in node.get("tasks", []):
            parent = task.get("parent_task_id")
            if task["cancellable"] and parent in marks and task["id"] > marks[parent]:
                problems.append(
                    f"{name}: cancellable task {task['id']} ({task['action']}) started under the "
                    f"ban of its parent {parent}"
                )
    return problems


def bans_left(sample: Sample) -> list[str]:
    return [
        f"{name} still bans {b['parent_task_id']} ({b['reason']})"
        for name, node in sample.items()
        for b in node.get("bans", [])
    ]


def live_work(sample: Sample) -> list[str]:
    return [
        f"{name} still runs task {t['id']} ({t['action']})"
        for name, node in sample.items()
        for t in node.get("tasks", [])
    ]


@dataclass
class TaskHistory:
    """Every task seen, with its parent, and which were seen cancelled; forgotten per node when
    that node's process changes (a restarted node counts its task ids from 1 again)."""

    parents: dict[str, str | None] = field(default_factory=dict)  # "nodeid:id" → parent
    cancelled: set[str] = field(default_factory=set)
    actions: dict[str, str] = field(default_factory=dict)
    _pids: dict[str, int] = field(default_factory=dict)  # node id → pid

    def _forget_node(self, node_id: str) -> None:
        prefix = node_id + ":"
        for key in [k for k in self.parents if k.startswith(prefix)]:
            del self.parents[key]
            self.actions.pop(key, None)
        self.cancelled = {k for k in self.cancelled if not k.startswith(prefix)}

    def observe(self, sample: Sample) -> None:
        for node in sample.values():
            node_id = node.get("id")
            if node_id is None or "tasks" not in node:
                continue
            pid = node.get("pid")
            if pid is not None:
                if node_id in self._pids and self._pids[node_id] != pid:
                    self._forget_node(node_id)
                self._pids[node_id] = pid
            for task in node["tasks"]:
                key = f"{node_id}:{task['id']}"
                self.parents[key] = task.get("parent_task_id")
                self.actions[key] = task["action"]
                if task.get("cancelled"):
                    self.cancelled.add(key)

    def observe_cancelled(self, task_ids: list[str]) -> None:
        self.cancelled.update(task_ids)

    def cancelled_ancestor(self, key: str) -> str | None:
        seen: set[str] = set()
        parent = self.parents.get(key)
        while parent and parent not in seen:
            if parent in self.cancelled:
                return parent
            seen.add(parent)
            parent = self.parents.get(parent)
        return None

    def orphans(self, sample: Sample) -> list[str]:
        """Live tasks of `sample` that descend from a task seen cancelled."""
        self.observe(sample)
        problems = []
        for name, node in sample.items():
            for task in node.get("tasks", []):
                key = f"{node.get('id')}:{task['id']}"
                ancestor = self.cancelled_ancestor(key)
                if ancestor is not None:
                    problems.append(
                        f"{name}: task {task['id']} ({task['action']}) still runs, a descendant of "
                        f"the cancelled task {ancestor}"
                    )
        return problems
