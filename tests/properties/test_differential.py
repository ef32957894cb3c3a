"""Differential: the same operations and faults on the real engine and on the sim engine give the
same answers, modulo times and ids — so that the engines cannot drift apart.

A script (`SCRIPT`: work started, lists with every `group_by`, a get, errors, a black-holed node, a
killed node, a paused node, heal, restart, cancel with `wait_for_completion`) and hypothesis
examples (a task tree, a fault plan and a list request) run on both. The script runs on a fresh
real cluster, so task numbers agree: its answers are compared whole once `Normaliser` has made node
ids node names (task ids `<name>:<n>`), ports `PORT`, times and durations `T`, process ids `PID`.
The examples share the module's real cluster (task numbers move on from example to example), so
their list answers are compared as `project` sees them: the status, which nodes answered, every
`node_failures` entry (node, cause, reason), and every task by what it is — node, action, type,
headers, cancellable, cancelled, its parent's node and action — with the children under each parent
for `group_by=parents`.

Fault detection is off on both, so that membership never depends on how long an engine takes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.testing import (
    Snapshot,
    TasksimCluster,
    TaskTree,
    cluster_settings,
    fault_plans,
    list_requests,
    listed_tasks,
    running_cluster,
    seeds,
    sim_config,
    simulated_cluster,
    task_trees,
)
from coordinator.testing.faults import FaultPlan
from coordinator.testing.model import ListRequest, wait_for
from tests.properties.support import example, start_tree

pytestmark = [pytest.mark.cluster, pytest.mark.tasksim(nodes=3, fault_detection=False)]

NODES = ["node-1", "node-2", "node-3"]
TIME_KEYS = {
    "start_time_in_millis",
    "running_time_in_nanos",
    "cancellation_time_millis",
    "took",
    "timestamp",
    "time",
}
PROCESS_KEYS = {"pid"}  # a node's process id (none on the sim engine: no process of its own)
PORT = re.compile(r"127\.0\.0\.1:\d+")
MILLIS = re.compile(r"\[\d+(\.\d+)?(ms|s|nanos)\]")
REQUEST_ID = re.compile(r"request_id \[\d+\]")


class Normaliser:
    """Rewrites one engine's answers into engine-neutral values (see the module docstring)."""

    def __init__(self, cluster: TasksimCluster) -> None:
        self.names = {n.id: n.name for n in cluster.nodes}
        self.tasks: dict[str, str] = {}

    def task(self, key: str) -> str:
        node, _, number = key.partition(":")
        name = self.names.get(node)
        if name is None or not number.isdigit():
            return self.text(key)
        return f"{name}:{number}"

    def text(self, value: str) -> str:
        for node_id, name in self.names.items():
            value = value.replace(node_id, name)
        value = PORT.sub("PORT", value)
        value = MILLIS.sub("[T]", value)
        return REQUEST_ID.sub("request_id [N]", value)

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k in value:
                if k in TIME_KEYS:
                    out[k] = "T"
                    continue
                if k in PROCESS_KEYS:
                    out[k] = "PID"
                    continue
                out[self.key(k)] = self(value[k], k)
            return dict(sorted(out.items()))
        if isinstance(value, list):
            items = [self(v, key) for v in value]
            if key in ("node_failures", "task_failures", "tasks", "children"):
                items.sort(key=lambda v: json.dumps(v, sort_keys=True))
            return items
        if isinstance(value, str):
            if key in ("parent_task_id", "task") or (key == "id" and ":" in value):
                return self.task(value)
            return self.text(value)
        return value

    def key(self, k: str) -> str:
        if k in self.names:
            return self.names[k]
        if ":" in k and k.split(":", 1)[0] in self.names:
            return self.task(k)
        return k


def run_script(cluster: TasksimCluster) -> list[tuple[str, Any]]:
    """`SCRIPT` on `cluster`: (step, normalised answer) for each step."""
    norm = Normaliser(cluster)
    sim = cluster.sim
    out: list[tuple[str, Any]] = []
    context: dict[str, str] = {}

    def ask(label: str, method: str, path: str, body: Any = None) -> Any:
        resp = sim.request(method, path.format(**context), body, timeout=120)
        out.append((label, {"status": resp.status, "body": norm(resp.body)}))
        return resp.body

    for step in SCRIPT:
        step(cluster, ask, context)
    return out


Ask = Callable[..., Any]
Step = Callable[[TasksimCluster, Ask, dict[str, str]], None]

TREE = {
    "node": "node-1",
    "action": "indices:data/write/reindex",
    "description": "reindex from [a] to [b]",
    "headers": {"X-Opaque-Id": "diff"},
    "children": [
        {
            "node": "node-2",
            "action": "indices:data/write/bulk",
            "children": [{"node": "node-3", "action": "indices:data/write/bulk[s]"}],
        },
        {"node": "node-3", "action": "indices:data/read/search"},
    ],
}


def started(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    body = ask("start work", "POST", "/_sim/tasks", TREE)
    ctx["root"] = body["task"]
    sim = cluster.sim
    wait_for(
        lambda: Snapshot.read(sim),
        lambda s: len(s.descendants(ctx["root"])) == 5,
        timeout=15,
        clock=sim.clock,
    )
    snap = Snapshot.read(sim)
    ctx["leaf"] = next(k for k, t in snap.work().items() if t.action == "indices:data/read/search")


def lists(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    for group_by in ("nodes", "parents", "none"):
        ask(
            f"list group_by={group_by}",
            "GET",
            f"/_tasks?actions=indices:*&detailed&group_by={group_by}",
        )
    ask("list by parent", "GET", "/_tasks?parent_task_id={root}&actions=indices:*")
    ask("list by node", "GET", "/_tasks?nodes=node-3,_local&actions=indices:*,cluster:*")
    ask("get the root", "GET", "/_tasks/{root}")
    ask("get a leaf", "GET", "/_tasks/{leaf}?timeout=1s")


def errors(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    ask("unknown node", "GET", "/_tasks?nodes=nope&actions=indices:*")
    ask("bad task id", "GET", "/_tasks/not-a-task-id")
    ask("unknown task", "GET", "/_tasks/{root}0")
    ask("bad parameter", "GET", "/_tasks?group_by=tree")
    ask("cancel with an unknown parameter", "POST", "/_tasks/_cancel?timeout=1s")


def blackholed(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    cluster.sim.partition(["node-3"])
    ask("list, node-3 black-holed", "GET", "/_tasks?timeout=300ms&actions=indices:*")
    ask("get on node-3, black-holed", "GET", "/_tasks/{leaf}?timeout=300ms")
    ask("heal", "POST", "/_sim/faults/_heal")


def killed(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    ask("kill node-2", "POST", "/_sim/nodes/node-2/kill")
    ask("list, node-2 killed", "GET", "/_tasks?timeout=300ms&actions=indices:*&group_by=parents")
    ask("heal (restarts node-2)", "POST", "/_sim/faults/_heal")
    ask("list after the restart", "GET", "/_tasks?actions=indices:*&group_by=parents")


def paused(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    ask("pause node-3", "POST", "/_sim/nodes/node-3/pause")
    ask("get on node-3, paused", "GET", "/_tasks/{leaf}?timeout=300ms")
    ask("nodes", "GET", "/_sim/nodes")
    ask("heal (resumes node-3)", "POST", "/_sim/faults/_heal")


def cancelled(cluster: TasksimCluster, ask: Ask, ctx: dict[str, str]) -> None:
    ask("cancel the root", "POST", "/_tasks/{root}/_cancel?wait_for_completion=true")
    ask("cancel what is left", "POST", "/_tasks/_cancel?actions=indices:*&wait_for_completion=true")
    ask("no work left", "GET", "/_tasks?actions=indices:*")
    ask("cat nodes", "GET", "/_cat/nodes?h=name,node.role,cluster_manager&s=name")


SCRIPT: list[Step] = [started, lists, errors, blackholed, killed, paused, cancelled]


def differences(real: list[tuple[str, Any]], sim: list[tuple[str, Any]]) -> list[str]:
    out = []
    for (label, a), (_, b) in zip(real, sim, strict=True):
        if a != b:
            out.append(
                f"{label}:\n  real: {json.dumps(a, sort_keys=True)}\n  sim:  "
                f"{json.dumps(b, sort_keys=True)}"
            )
    return out


def test_the_same_script_gives_the_same_answers_on_both_engines() -> None:
    with running_cluster("--no-fault-detection", nodes=3, seed=7) as fresh:
        real = run_script(fresh)
    with simulated_cluster(sim_config(3, fault_detection=False), seed=7) as cluster:
        sim = run_script(cluster)
    assert [label for label, _ in real] == [label for label, _ in sim]
    diff = differences(real, sim)
    assert not diff, "the engines answered differently:\n" + "\n".join(diff)


def project(cluster: TasksimCluster, status: int, body: Any) -> dict[str, Any]:
    """A list answer as what it says, not how its ids are numbered (see the module docstring)."""
    norm = Normaliser(cluster)
    tasks = listed_tasks(body)
    by_key = {f"{t['node']}:{t['id']}": t for t in tasks}

    def what(t: dict[str, Any]) -> str:
        parent = t.get("parent_task_id")
        up: Any = None
        if parent is not None:
            p = by_key.get(parent)
            up = [norm.text(parent.split(":")[0]), p["action"] if p else "(not listed)"]
        fields = ("action", "type", "headers", "cancellable", "cancelled", "description")
        return json.dumps(
            [norm.text(t["node"]), up, *[t.get(f) for f in fields]], sort_keys=True, default=str
        )

    out: dict[str, Any] = {"status": status}
    if not isinstance(body, dict):
        out["body"] = norm(body)
        return out
    out["nodes"] = sorted(norm.text(n) for n in body.get("nodes", {}))
    out["node_failures"] = sorted(
        json.dumps(norm(f), sort_keys=True) for f in body.get("node_failures", [])
    )
    out["tasks"] = sorted(what(t) for t in tasks)
    tops = body.get("tasks")
    if isinstance(tops, dict):  # group_by=parents
        out["families"] = sorted(
            [what(t), sorted(what(c) for c in t.get("children", []))] for t in tops.values()
        )
    out["keys"] = sorted(set(body) - {"nodes", "tasks", "node_failures"})
    return out


def list_under_faults(
    cluster: TasksimCluster, tree: TaskTree, plan: FaultPlan, draw_request: Any
) -> dict[str, Any]:
    sim = cluster.sim
    with example(sim):
        root, _ = start_tree(sim, tree)
        req: ListRequest = draw_request(root)
        plan.apply(sim, timeout=req.timeout or 1.0)
        resp = sim.request("GET", req.path(), timeout=120)
    return project(cluster, resp.status, resp.body)


@cluster_settings(max_examples=10)
@given(data=st.data())
def test_a_list_under_faults_answers_the_same_on_both_engines(
    tasksim_cluster: TasksimCluster, data: st.DataObject
) -> None:
    tree = data.draw(task_trees(tasksim_cluster.names, max_tasks=6), label="tree")
    plan = data.draw(fault_plans(NODES), label="faults")
    seed = data.draw(seeds(), label="seed")
    requests: dict[str, ListRequest] = {}

    def draw_request(root: str) -> ListRequest:
        # One request for both engines: drawn once, its parent filter the root on each engine.
        if "req" not in requests:
            parents = st.sampled_from([None, "ROOT"])
            requests["req"] = data.draw(
                list_requests(tasksim_cluster.names, parents=parents), label="request"
            )
        req = requests["req"]
        if req.parent_task_id is None:
            return req
        return ListRequest(**{**req.__dict__, "parent_task_id": root})

    real = list_under_faults(tasksim_cluster, tree, plan, draw_request)
    with simulated_cluster(sim_config(3, fault_detection=False), seed=seed) as cluster:
        sim = list_under_faults(cluster, tree, plan, draw_request)
    assert real == sim, differences([("list", real)], [("list", sim)])
