"""Property: a list request with a timeout accounts for every targeted node exactly once, whatever
set U of nodes is unreachable and however (killed, paused, black-holed, disconnected, slower than
the timeout), and answers within the timeout plus slack.

For each example: a task tree across the nodes, a fault plan (U, a fault per node), a list request
(node list, action patterns, parent filter, detailed, group_by, timeout). Then:

- every targeted node is either an answering node or in `node_failures`, never both, never twice;
  `node_failures` is exactly U ∩ targets, each with the cause its fault gives (faults.py `CAUSES`);
- with `group_by=nodes`, a node is under `nodes` exactly when it has matching tasks;
- every matching task of a reachable targeted node is listed (the ground truth, read over the
  control channel before and after the request), and nothing else is;
- the answer comes within `timeout + SLACK`, and not before the timeout when a node of U makes the
  request wait for it.

Fault detection is off for this module (`tasksim up --no-fault-detection`): U stays in the cluster,
so the targets are what the request names and each cause is decided by the fault alone. (With the
follower checks on, a killed node leaves the cluster within a second and is no longer targeted;
tests/properties/test_unreachable_cancel.py runs with them on.)

Each property runs on both engines: on the real one against the module's cluster (few examples,
each costs real seconds), on the sim one in a fresh world per example, its seed drawn by
hypothesis, with 200 examples and the timing bounds exact up to the simulated latencies.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.testing import (
    SimClusters,
    Snapshot,
    TasksimCluster,
    cluster_settings,
    fault_plans,
    list_requests,
    listed_tasks,
    opaque_ids,
    task_trees,
)
from coordinator.testing.faults import FaultPlan
from coordinator.testing.model import (
    LIST_ACTION,
    LIST_NODE_ACTION,
    ListRequest,
    failures_by_node,
    is_transient,
    simple_match,
)
from tests.properties.support import example, note_plan, slack, start_tree

pytestmark = pytest.mark.tasksim(nodes=3, fault_detection=False)

NODES = ["node-1", "node-2", "node-3"]


def check_list_answer(
    cluster: TasksimCluster,
    req: ListRequest,
    plan: FaultPlan,
    status: int,
    body: Any,
    elapsed: float,
    before: Snapshot,
    after: Snapshot,
) -> None:
    assert status == 200, body
    targets = req.targets(cluster.names)
    failures = [(cluster.name_of(node_id), cause) for node_id, cause in failures_by_node(body)]
    failed = [name for name, _ in failures]
    assert len(failed) == len(set(failed)), f"a node is in node_failures twice: {failed}"
    assert set(failed) == plan.unreachable & targets, (
        f"node_failures {sorted(failed)}, expected U ∩ targets = "
        f"{sorted(plan.unreachable & targets)}"
    )
    for name, cause in failures:
        fault = plan.of(name)
        assert fault is not None and cause in fault.causes, f"{name} ({fault}) failed with {cause}"
    answered = targets - set(failed)

    listed = listed_tasks(body)
    keys = [f"{t['node']}:{t['id']}" for t in listed]
    assert len(keys) == len(set(keys)), "a task is listed twice"
    listed_nodes = {cluster.name_of(t["node"]) for t in listed}
    assert listed_nodes <= answered, f"tasks of {sorted(listed_nodes - answered)} listed"
    if req.group_by == "nodes":
        under_nodes = {cluster.name_of(n) for n in body.get("nodes", {})}
        assert under_nodes == listed_nodes, f"under nodes: {under_nodes}, with tasks {listed_nodes}"
        assert under_nodes.isdisjoint(failed)
    else:
        assert "nodes" not in body
    for t in listed:
        assert req.matches(t["action"], t.get("parent_task_id")), f"{t} does not match {req}"

    def wanted(snapshot: Snapshot) -> set[str]:
        return {
            k
            for k, t in snapshot.work().items()
            if t.node in answered and req.matches(t.action, t.parent)
        }

    must, may = wanted(before) & wanted(after), wanted(before) | wanted(after)
    work = {k for k, t in zip(keys, listed, strict=True) if not is_transient(t["action"])}
    assert must <= work, f"tasks of reachable nodes missing: {sorted(must - work)}"
    assert work <= may, f"tasks listed that no node runs: {sorted(work - may)}"

    # The request's own tasks: its entry task on the coordinating node, one [n] child on each
    # node that answered.
    own = [t for t in listed if t["action"].startswith(LIST_ACTION)]
    if req.parent_task_id is None and any(
        simple_match(p, LIST_NODE_ACTION) for p in req.actions or ("*",)
    ):
        with_child = {cluster.name_of(t["node"]) for t in own if t["action"] == LIST_NODE_ACTION}
        assert with_child == answered, f"[n] children on {with_child}, answered: {answered}"

    assert req.timeout is not None
    assert elapsed <= req.timeout + slack(cluster), f"answered after {elapsed:.4f}s ({req})"
    if any(f.times_out for f in plan.faults if f.node in targets):
        early = 0.05 if cluster.engine == "real" else 1e-9  # sim: floating point only
        assert elapsed >= req.timeout - early, f"answered after {elapsed:.4f}s, before the timeout"


@pytest.mark.cluster
@cluster_settings(max_examples=20)
@given(data=st.data())
def test_a_list_accounts_for_every_targeted_node(
    tasksim_cluster: TasksimCluster, data: st.DataObject
) -> None:
    a_list_accounts_for_every_targeted_node(tasksim_cluster, data)


@cluster_settings(max_examples=200)
@given(data=st.data())
def test_a_list_accounts_for_every_targeted_node_sim(
    tasksim_sim: SimClusters, data: st.DataObject
) -> None:
    with tasksim_sim.example(data) as cluster:
        a_list_accounts_for_every_targeted_node(cluster, data)


def a_list_accounts_for_every_targeted_node(cluster: TasksimCluster, data: st.DataObject) -> None:
    sim = cluster.sim
    tree = data.draw(task_trees(cluster.names, max_tasks=8), label="tree")
    plan = data.draw(fault_plans(NODES), label="faults")
    note_plan(plan)
    with example(sim):
        root, _ = start_tree(sim, tree)
        req = data.draw(
            list_requests(cluster.names, parents=st.sampled_from([None, root])), label="request"
        )
        assert req.timeout is not None
        plan.apply(sim, timeout=req.timeout)
        before = Snapshot.read(sim)
        resp = sim.request("GET", req.path(), timeout=req.timeout + 60)
        after = Snapshot.read(sim)
    check_list_answer(cluster, req, plan, resp.status, resp.body, resp.elapsed, before, after)


@pytest.mark.cluster
@cluster_settings(max_examples=8)
@given(data=st.data())
def test_x_opaque_id_is_on_every_child_task_on_every_node_that_answered(
    tasksim_cluster: TasksimCluster, data: st.DataObject
) -> None:
    x_opaque_id_is_on_every_child_task(tasksim_cluster, data)


@cluster_settings(max_examples=200)
@given(data=st.data())
def test_x_opaque_id_is_on_every_child_task_on_every_node_that_answered_sim(
    tasksim_sim: SimClusters, data: st.DataObject
) -> None:
    with tasksim_sim.example(data) as cluster:
        x_opaque_id_is_on_every_child_task(cluster, data)


def x_opaque_id_is_on_every_child_task(cluster: TasksimCluster, data: st.DataObject) -> None:
    """The tree's X-Opaque-Id is on all of its tasks, and a list request's own X-Opaque-Id on its
    entry task and on its [n] child on every node that answered, while U is unreachable."""
    sim = cluster.sim
    tree = data.draw(task_trees(cluster.names, max_tasks=6), label="tree")
    plan = data.draw(fault_plans(NODES), label="faults")
    work_id, list_id = data.draw(opaque_ids(), label="work id"), data.draw(opaque_ids())
    with example(sim):
        root, started = start_tree(sim, tree, opaque_id=work_id)
        plan.apply(sim, timeout=0.5)
        before = Snapshot.read(sim)
        resp = sim.request(
            "GET",
            "/_tasks?group_by=none&detailed&timeout=500ms",
            headers={"X-Opaque-Id": list_id},
            timeout=60,
        )
        after = Snapshot.read(sim)
    assert resp.status == 200, resp.body
    failed = {cluster.name_of(n) for n, _ in failures_by_node(resp.body)}
    assert failed == set(plan.unreachable)
    answered = set(cluster.names) - failed
    listed = {f"{t['node']}:{t['id']}": t for t in listed_tasks(resp.body)}
    tree_keys = set(started.descendants(root))
    for key, t in listed.items():
        if key in tree_keys:
            assert t["headers"] == {"X-Opaque-Id": work_id}, t
        elif t["action"].startswith(LIST_ACTION):
            assert t["headers"] == {"X-Opaque-Id": list_id}, t
        else:
            raise AssertionError(f"a task of neither the tree nor the list: {t}")
    children = [t for t in listed.values() if t["action"] == LIST_NODE_ACTION]
    assert {cluster.name_of(t["node"]) for t in children} == answered
    entry = [t for t in listed.values() if t["action"] == LIST_ACTION]
    assert len(entry) == 1
    assert all(t["parent_task_id"] == f"{entry[0]['node']}:{entry[0]['id']}" for t in children)
    # Every task of the tree that runs on a node that answered is listed (with the tree's id).
    still = {
        k
        for k in tree_keys & set(before.tasks) & set(after.tasks)
        if before.tasks[k].node in answered
    }
    assert still <= set(listed), f"tasks of the tree missing: {sorted(still - set(listed))}"
