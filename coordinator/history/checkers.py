"""Checkers: pure functions of a history that say what went wrong and which events show it.

Each checker takes a `History` (simnode/history.py) and returns a `Result`: `passed`, `failed`
(with `Violation`s, each naming the events that witness it by their index in `history.events`) or
`vacuous` — the history held nothing the checker could check (no cancel, no ban, no list with a
timeout), which is not a pass. Things a checker could not decide because the history ends too
early are `notes`, not violations.

- `task_lifecycle`: every task goes registered → (cancelled) → unregistered, never backwards,
  never twice (a node process's task ids start again after a restart: each process is counted
  apart, and a process that ends takes its tasks with it);
- `no_child_after_ban`: no cancellable task registers under a parent its node has banned;
- `ban_hygiene`: every ban is lifted within `BAN_BOUND` seconds of its parent task's end (or of the
  parent's node leaving), counted from when the ban's node can hear again (no fault on it);
- `no_orphans`: when a cancel with `wait_for_completion=true` answered, no descendant of a task it
  cancelled is still registered on a node that was reachable during the cancel; `ORPHAN_BOUND`
  seconds after the last heal, none anywhere;
- `list_completeness`: every unfiltered `GET _tasks` accounts for every node in the cluster for the
  whole request exactly once, in `nodes` or `node_failures`, and one with a `timeout` answers
  within the timeout plus `LIST_SLACK`;
- `ml_task_states`: ML tasks move only along ML Commons' transitions (coordinator/ml_state.py).

No I/O, no clock: everything comes from the events.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from coordinator.ml_state import TRANSITIONS
from simnode.history import Event, History

BAN_BOUND = 5.0
ORPHAN_BOUND = 5.0
LIST_SLACK = 1.5
ALL = "*"  # a fault on every node


@dataclass(frozen=True)
class Violation:
    checker: str
    t: float
    message: str
    events: tuple[int, ...] = ()  # indexes into history.events

    def to_json(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "t": self.t,
            "message": self.message,
            "events": list(self.events),
        }


@dataclass
class Result:
    checker: str
    checked: int = 0  # how many things were looked at (tasks, bans, cancels, lists)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.violations:
            return "failed"
        return "passed" if self.checked else "vacuous"

    def fail(self, t: float, message: str, *events: int) -> None:
        self.violations.append(Violation(self.checker, t, message, tuple(sorted(set(events)))))

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked": self.checked,
            "violations": [v.to_json() for v in self.violations],
            "notes": self.notes,
        }


# -- what every checker needs: tasks by process, faults and process states over time -------------


@dataclass
class TaskSpan:
    key: tuple[str, int]  # (task id, process number of its node)
    node: str
    action: str
    parent: str | None
    cancellable: bool
    start: float
    registered: int  # event index
    end: float = math.inf
    ended_by: int | None = None  # event index of the unregistration (or of its process's end)
    cancelled: float | None = None

    def live_at(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class Model:
    """The history read once: task spans, who was cut off when, membership."""

    history: History
    spans: list[TaskSpan] = field(default_factory=list)
    by_task: dict[str, list[TaskSpan]] = field(default_factory=dict)
    children: dict[str, list[TaskSpan]] = field(default_factory=dict)  # parent id → spans
    # node → intervals (start, end, why, event index) when it could not be reached
    cut: dict[str, list[tuple[float, float, str, int]]] = field(default_factory=dict)
    heals: list[float] = field(default_factory=list)
    # faults with their rules: (start, end, rules as rule_to_json renders them, why, index)
    links: list[tuple[float, float, list[dict[str, Any]], str, int]] = field(default_factory=list)

    def link_cut(self, a: str, b: str, start: float, end: float) -> tuple[str, int] | None:
        """A fault that touched the link between `a` and `b` (either way) during [start, end],
        or one of them being paused, killed or out of the cluster."""
        for x, y, rules, why, index in self.links:
            if x <= end and y >= start and any(_covers(r, a, b) for r in rules):
                return why, index
        for node in (a, b):
            for x, y, why, index in self.cut.get(node, []):
                if not why.startswith("fault") and x <= end and y >= start:
                    return why, index
        return None

    def cut_during(self, node: str, start: float, end: float) -> tuple[str, int] | None:
        for a, b, why, index in [*self.cut.get(node, []), *self.cut.get(ALL, [])]:
            if a <= end and b >= start:
                return why, index
        return None

    def quiet_after(self, node: str, t: float) -> float:
        """The first moment at or after `t` when `node` is not cut off."""
        moved = True
        while moved:
            moved = False
            for a, b, _, _ in [*self.cut.get(node, []), *self.cut.get(ALL, [])]:
                if a <= t < b:
                    t, moved = b, True
        return t

    def descendants(self, task: str, before: float) -> list[TaskSpan]:
        out: list[TaskSpan] = []
        todo = [task]
        seen = {task}
        while todo:
            for span in self.children.get(todo.pop(), []):
                if span.start <= before and span.key[0] not in seen:
                    seen.add(span.key[0])
                    out.append(span)
                    todo.append(span.key[0])
        return out


def _names(value: Any) -> set[str] | None:
    """A rule's `from`/`to` as rule_to_json renders it: `"*"` (any: None) or a list of names."""
    return None if value in (None, "*") else {str(v) for v in value}


def _covers(rule: dict[str, Any], a: str, b: str) -> bool:
    src, dst = _names(rule.get("from")), _names(rule.get("to"))
    forward = (src is None or a in src) and (dst is None or b in dst)
    backward = (src is None or b in src) and (dst is None or a in dst)
    return forward or backward


def _involved(e: Event) -> list[str]:
    """The nodes a fault's rules name (any rule with a wildcard: every node)."""
    rules = e.get("rules")
    if not rules:
        return list(e.get("nodes") or []) or [ALL]
    names: set[str] = set()
    for rule in rules:
        for side in ("from", "to"):
            found = _names(rule.get(side))
            if found is None:
                return [ALL]
            names |= found
    return sorted(names)


def model_of(history: History) -> Model:
    m = Model(history)
    epoch: dict[str, int] = {}
    live: dict[tuple[str, int], TaskSpan] = {}
    opened: dict[str, tuple[float, str, int]] = {}  # fault id → (start, kind, index)
    fault_nodes: dict[str, list[str]] = {}
    fault_rules: dict[str, list[dict[str, Any]]] = {}
    paused: dict[str, tuple[float, int]] = {}
    down: dict[str, tuple[float, str, int]] = {}

    def close_cut(node: str, start: float, end: float, why: str, index: int) -> None:
        m.cut.setdefault(node, []).append((start, end, why, index))

    for i, e in enumerate(history.events):
        kind = e["type"]
        t = float(e["t"])
        node = str(e.get("node", ""))
        if kind == "record_start":
            epoch[node] = epoch.get(node, 0) + 1
        elif kind == "record_end" and e.get("reason") != "stopped":
            for key, span in list(live.items()):
                if span.node == node:
                    span.end, span.ended_by = t, i
                    del live[key]
        elif kind == "task_registered":
            key = (str(e["task"]), epoch.get(node, 0))
            span = TaskSpan(
                key, node, str(e["action"]), e.get("parent"), bool(e["cancellable"]), t, i
            )
            m.spans.append(span)
            m.by_task.setdefault(key[0], []).append(span)
            if span.parent:
                m.children.setdefault(span.parent, []).append(span)
            live[key] = span
        elif kind == "task_unregistered":
            found = live.pop((str(e["task"]), epoch.get(node, 0)), None)
            if found is not None:
                found.end, found.ended_by = t, i
        elif kind == "task_cancelled":
            found = live.get((str(e["task"]), epoch.get(node, 0)))
            if found is not None and found.cancelled is None:
                found.cancelled = t
        elif kind == "fault_start":
            opened[str(e["fault"])] = (t, str(e.get("kind")), i)
            fault_nodes[str(e["fault"])] = _involved(e)
            # a fault recorded without its rules cuts every link of the nodes it names
            fault_rules[str(e["fault"])] = list(
                e.get("rules") or [{"from": list(e.get("nodes") or []) or "*", "to": "*"}]
            )
        elif kind == "fault_end":
            start = opened.pop(str(e["fault"]), None)
            if start is not None:
                why = f"fault {e['fault']} ({start[1]})"
                for n in fault_nodes.pop(str(e["fault"]), [ALL]):
                    close_cut(n, start[0], t, why, start[2])
                rules = fault_rules.pop(str(e["fault"]), [])
                m.links.append((start[0], t, rules, why, start[2]))
        elif kind == "pause":
            paused[node] = (t, i)
        elif kind == "resume" and node in paused:
            a, index = paused.pop(node)
            close_cut(node, a, t, "paused", index)
        elif kind in ("kill", "node_left"):
            down.setdefault(node, (t, "killed" if kind == "kill" else "left the cluster", i))
        elif kind in ("restart", "node_joined") and node in down:
            a, why, index = down.pop(node)
            close_cut(node, a, t, why, index)
        elif kind == "heal":
            m.heals.append(t)
    for fault, (began, kind_, index) in opened.items():
        for n in fault_nodes.get(fault, [ALL]):
            close_cut(n, began, math.inf, f"fault {fault} ({kind_})", index)
        why = f"fault {fault} ({kind_})"
        m.links.append((began, math.inf, fault_rules.get(fault, []), why, index))
    for node, (a, index) in paused.items():
        close_cut(node, a, math.inf, "paused", index)
    for node, (a, why, index) in down.items():
        close_cut(node, a, math.inf, why, index)
    return m


# -- the checkers -----------------------------------------------------------------------------------

# The task lifecycle as a table: (state, event) → state. Anything else is a violation.
LIFECYCLE: dict[tuple[str, str], str] = {
    ("new", "task_registered"): "registered",
    ("registered", "task_cancelled"): "cancelled",
    ("registered", "task_unregistered"): "gone",
    ("cancelled", "task_unregistered"): "gone",
}


def task_lifecycle(history: History) -> Result:
    r = Result("task_lifecycle")
    epoch: dict[str, int] = {}
    state: dict[tuple[str, int], tuple[str, int]] = {}  # key → (state, last event index)
    for i, e in enumerate(history.events):
        kind = e["type"]
        node = str(e.get("node", ""))
        if kind == "record_start":
            epoch[node] = epoch.get(node, 0) + 1
            continue
        if kind == "record_end" and e.get("reason") != "stopped":
            for key in [k for k in state if k[0].startswith(node + "|")]:
                state[key] = ("gone", i)
            continue
        if kind not in ("task_registered", "task_cancelled", "task_unregistered"):
            continue
        key = (f"{node}|{e['task']}", epoch.get(node, 0))
        before, last = state.get(key, ("new", -1))
        after = LIFECYCLE.get((before, kind))
        if kind == "task_registered":
            r.checked += 1
        if after is None:
            word = kind.removeprefix("task_")
            witnesses = (last, i) if last >= 0 else (i,)
            r.fail(
                float(e["t"]),
                f"{node}: task {e['task']} {word} while {before}"
                + (" (never registered)" if before == "new" else ""),
                *witnesses,
            )
            continue
        state[key] = (after, i)
    return r


def no_child_after_ban(history: History) -> Result:
    r = Result("no_child_after_ban")
    bans: dict[tuple[str, str], int] = {}  # (node, parent) → index of ban_set
    for i, e in enumerate(history.events):
        kind = e["type"]
        node = str(e.get("node", ""))
        if kind == "ban_set":
            r.checked += 1
            bans[(node, str(e["parent"]))] = i
        elif kind == "ban_removed":
            bans.pop((node, str(e["parent"])), None)
        elif kind == "record_end" and e.get("reason") != "stopped":
            for key in [k for k in bans if k[0] == node]:
                del bans[key]
        elif kind == "task_registered" and e.get("cancellable") and e.get("parent"):
            ban = bans.get((node, str(e["parent"])))
            if ban is not None:
                r.fail(
                    float(e["t"]),
                    f"{node}: cancellable task {e['task']} ({e['action']}) registered under the "
                    f"ban of its parent {e['parent']}",
                    ban,
                    i,
                )
    return r


def ban_hygiene(history: History, *, bound: float = BAN_BOUND) -> Result:
    r = Result("ban_hygiene")
    m = model_of(history)
    names = {str(n.get("id")): str(n.get("name")) for n in history.head.get("nodes", [])}
    end_of_history = history.end
    open_bans: dict[tuple[str, str], tuple[float, int]] = {}
    lifted: list[tuple[str, str, float, int, float, int]] = []  # node, parent, set, i, lifted, j

    for i, e in enumerate(history.events):
        kind = e["type"]
        node = str(e.get("node", ""))
        if kind == "ban_set":
            open_bans[(node, str(e["parent"]))] = (float(e["t"]), i)
        elif kind == "ban_removed":
            found = open_bans.pop((node, str(e["parent"])), None)
            if found is not None:
                lifted.append((node, str(e["parent"]), found[0], found[1], float(e["t"]), i))
        elif kind == "record_end" and e.get("reason") != "stopped":
            for key in [k for k in open_bans if k[0] == node]:
                a, index = open_bans.pop(key)
                lifted.append((node, key[1], a, index, float(e["t"]), i))
    for (node, parent), (a, index) in open_bans.items():
        lifted.append((node, parent, a, index, math.inf, -1))

    for node, parent, set_at, i, lifted_at, j in lifted:
        r.checked += 1
        spans = [s for s in m.by_task.get(parent, []) if s.start <= set_at]
        parent_end = spans[-1].end if spans else set_at
        parent_node = names.get(parent.split(":", 1)[0], "")
        left = m.cut_during(parent_node, set_at, parent_end) if parent_node else None
        if left is not None and left[0] in ("killed", "left the cluster"):
            parent_end = min(parent_end, max(set_at, _cut_start(m, parent_node, set_at)))
        if math.isinf(parent_end):
            continue  # the parent still runs: the ban may stay
        deadline = m.quiet_after(node, parent_end) + bound
        if lifted_at <= deadline:
            continue
        if end_of_history < deadline:
            r.notes.append(
                f"{node}: the ban of {parent} was still set when the history ended "
                f"(the deadline was {deadline:.3f}s)"
            )
            continue
        witnesses = [i] + ([j] if j >= 0 else [])
        ended = spans[-1].ended_by if spans else None
        if ended is not None:
            witnesses.append(ended)
        r.fail(
            deadline,
            f"{node}: the ban of {parent} stayed {('until ' + format(lifted_at, '.3f') + 's') if j >= 0 else 'to the end'}, "
            f"more than {bound:g}s after its parent ended ({parent_end:.3f}s) and the node could hear",
            *witnesses,
        )
    return r


def _cut_start(m: Model, node: str, after: float) -> float:
    starts = [a for a, b, why, _ in m.cut.get(node, []) if b >= after and why != "paused"]
    return min(starts, default=math.inf)


def _query(path: str) -> tuple[str, dict[str, list[str]]]:
    parts = urllib.parse.urlsplit(path)
    return parts.path.rstrip("/"), urllib.parse.parse_qs(parts.query, keep_blank_values=True)


def _flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name) or []
    return bool(values) and values[-1] in ("", "true")


_CANCEL_PATH = re.compile(r"^/_tasks(?:/(?P<task>[^/]+))?/_cancel$")


def _completions(history: History) -> Iterable[tuple[int, Event, int, Event]]:
    """(invoke index, invoke, completion index, completion) for every finished operation."""
    invokes: dict[Any, tuple[int, Event]] = {}
    for i, e in enumerate(history.events):
        if e["type"] == "invoke":
            invokes[e["op"]] = (i, e)
        elif e["type"] in ("ok", "fail", "info") and e.get("op") in invokes:
            j, inv = invokes.pop(e["op"])
            yield j, inv, i, e


def no_orphans(history: History, *, bound: float = ORPHAN_BOUND) -> Result:
    r = Result("no_orphans")
    m = model_of(history)
    cancelled: dict[str, tuple[float, int]] = {}  # task → when and which event says so
    for j, invoke, i, done in _completions(history):
        route, query = _query(str(invoke["path"]))
        match = _CANCEL_PATH.match(route)
        if invoke["method"] != "POST" or match is None or done["type"] != "ok":
            continue
        tasks = list((done.get("summary") or {}).get("tasks") or [])
        if match.group("task"):
            tasks.append(match.group("task"))
        t_ok = float(done["t"])
        for task in dict.fromkeys(tasks):
            cancelled.setdefault(task, (t_ok, i))
        if not _flag(query, "wait_for_completion"):
            continue
        r.checked += 1
        for task in dict.fromkeys(tasks):
            for span in m.descendants(task, t_ok):
                if not span.live_at(t_ok):
                    continue
                if _path_cut(m, span, task, float(invoke["t"]), t_ok):
                    continue  # unreachable from its ancestors: its turn comes after the heal
                r.fail(
                    t_ok,
                    f"{span.node}: task {span.key[0]} ({span.action}), a descendant of the "
                    f"cancelled task {task}, was still registered when the cancel with "
                    "wait_for_completion answered",
                    j,
                    i,
                    span.registered,
                )
    for span in m.spans:
        if span.cancelled is not None:
            cancelled.setdefault(span.key[0], (span.cancelled, span.registered))
    if not m.heals or not cancelled:
        return r
    heal = m.heals[-1]
    for task, (when, index) in cancelled.items():
        r.checked += 1
        deadline = max(heal, when) + bound
        for span in m.descendants(task, max(heal, when)):
            if span.end <= deadline:
                continue
            if history.end < deadline:
                r.notes.append(
                    f"{span.node}: task {span.key[0]}, a descendant of the cancelled task {task}, "
                    "was still registered when the history ended, before the deadline"
                )
                continue
            r.fail(
                deadline,
                f"{span.node}: task {span.key[0]} ({span.action}), a descendant of the cancelled "
                f"task {task}, was still registered {bound:g}s after the last heal "
                "(and the cancel)",
                index,
                span.registered,
            )
    return r


def _path_cut(m: Model, span: TaskSpan, root: str, start: float, end: float) -> bool:
    """Whether a fault or a process fault touched a link from `root` down to `span` (the way a
    ban travels) during [start, end]."""
    node_of: dict[str, str] = {}
    for s in m.spans:
        if s.start <= end:
            node_of[s.key[0]] = s.node
    child: TaskSpan | None = span
    seen: set[str] = set()
    while child is not None and child.parent and child.key[0] != root:
        if child.key[0] in seen:
            break
        seen.add(child.key[0])
        parent_node = node_of.get(child.parent)
        if parent_node is None:
            return False
        if m.link_cut(parent_node, child.node, start, end) is not None:
            return True
        if child.parent == root:
            return False
        candidates = [p for p in m.by_task.get(child.parent, []) if p.start <= end]
        child = candidates[-1] if candidates else None
    return False


def _members_over_time(history: History) -> Callable[[float], set[str]]:
    ids = {str(n.get("name")): str(n.get("id")) for n in history.head.get("nodes", [])}
    changes: list[tuple[float, str, bool]] = []
    for e in history.events:
        if e["type"] in ("node_left", "node_joined") and str(e.get("node")) in ids:
            changes.append((float(e["t"]), ids[str(e["node"])], e["type"] == "node_joined"))

    def at(t: float) -> set[str]:
        members = set(ids.values())
        for when, node_id, joined in changes:
            if when > t:
                break
            if joined:
                members.add(node_id)
            else:
                members.discard(node_id)
        return members

    return at


_TIME = re.compile(r"^(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)?$")
_UNIT = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value: str) -> float | None:
    m = _TIME.match(value.strip())
    if m is None:
        return None
    return float(m.group(1)) * _UNIT[m.group(2) or "ms"]


def list_completeness(history: History, *, slack: float = LIST_SLACK) -> Result:
    r = Result("list_completeness")
    members = _members_over_time(history)
    names = {str(n.get("id")): str(n.get("name")) for n in history.head.get("nodes", [])}
    for j, invoke, i, done in _completions(history):
        route, query = _query(str(invoke["path"]))
        if invoke["method"] != "GET" or route != "/_tasks" or done["type"] != "ok":
            continue
        if any(k in query for k in ("nodes", "actions", "parent_task_id", "filter_path")):
            continue
        if query.get("group_by", ["nodes"])[-1] != "nodes":
            continue
        summary = done.get("summary") or {}
        answered = list(summary.get("nodes") or [])
        failed = list(summary.get("node_failures") or [])
        r.checked += 1
        t0, t1 = float(invoke["t"]), float(done["t"])
        before, after = members(t0), members(t1)
        seen = answered + failed
        for node_id in sorted(set(seen)):
            if seen.count(node_id) > 1:
                r.fail(t1, f"{names.get(node_id, node_id)} is accounted for twice", j, i)
        for node_id in sorted((before & after) - set(seen)):
            r.fail(
                t1,
                f"{names.get(node_id, node_id)} was in the cluster for the whole request but is "
                "in neither nodes nor node_failures",
                j,
                i,
            )
        for node_id in sorted(set(seen) - (before | after)):
            r.fail(t1, f"{names.get(node_id, node_id)} answered but was not in the cluster", j, i)
        timeout = _seconds(query["timeout"][-1]) if "timeout" in query else None
        if timeout is not None and t1 - t0 > timeout + slack:
            r.fail(
                t1,
                f"GET {invoke['path']} answered after {t1 - t0:.3f}s, more than its timeout "
                f"{timeout:g}s + {slack:g}s",
                j,
                i,
            )
    return r


def ml_task_states(history: History) -> Result:
    r = Result("ml_task_states")
    allowed = {(a, b) for (a, _), b in TRANSITIONS.items()}
    last: dict[str, tuple[str, int]] = {}
    for i, e in enumerate(history.events):
        if e["type"] != "ml_task_state":
            continue
        task = str(e["ml_task"])
        state = str(e["state"])
        before = last.get(task)
        if before is None:
            r.checked += 1
            if e.get("previous") is None and state not in ("CREATED", "RUNNING"):
                r.fail(float(e["t"]), f"ML task {task} was created {state}", i)
        elif (before[0], state) not in allowed:
            r.fail(
                float(e["t"]),
                f"ML task {task} moved {before[0]} → {state}, not one of ML Commons' transitions",
                before[1],
                i,
            )
        last[task] = (state, i)
    return r


CHECKERS: dict[str, Callable[[History], Result]] = {
    "task_lifecycle": task_lifecycle,
    "no_child_after_ban": no_child_after_ban,
    "ban_hygiene": ban_hygiene,
    "no_orphans": no_orphans,
    "list_completeness": list_completeness,
    "ml_task_states": ml_task_states,
}


def check_all(history: History, names: Iterable[str] | None = None) -> dict[str, Result]:
    return {name: CHECKERS[name](history) for name in (names or CHECKERS)}
