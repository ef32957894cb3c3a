"""Property: a cancel issued while a set U of nodes is cut off reaches every reachable descendant at
once and every other descendant after the heal; afterwards no ban and no orphan task remain.

For each example: a task tree across the nodes (its root on a node outside U), U with a fault per
node — paused, black-holed, slower than the timeout, or killed — and `POST _tasks/<root>/_cancel`
with or without `wait_for_completion`, sent while U is cut off (it waits for its bans, so it runs
in a thread). A descendant is *reachable* when no node on its path from the root is in U: the bans
travel that path (`internal:admin/tasks/ban`, node by node), so it must be cancelled — or gone —
within seconds while U is still cut off. A descendant below a paused or black-holed node has not
heard of the cancel (the ground truth, read over the control channel, says `cancelled: false`).
After the heal: every descendant is gone, no node holds a ban, no task lost its parent, and the
cancel answered 200 with the root cancelled (or, when a killed node already took the tree down,
with the root not found).

`disconnected` is left out: it breaks the tree's channels, which cancels the tree at once
("channel was closed") before any cancel is sent; the list property covers it.

Fault detection is on with OpenSearch's defaults (every 1 s, 10 s timeout, 3 retries; a refused
connection at once): a killed node leaves the cluster within a second — the bans its tasks set are
dropped, the bans sent to it are no failure — while a paused or black-holed node stays in the
cluster for the few seconds an example lasts.

The property runs on both engines: the real one against the module's cluster, the sim one in a
fresh world per example (its seed drawn by hypothesis, 200 examples), where "at once" and "after the
heal" are measured in virtual time and bounded tightly (`AT_ONCE`, `AFTER_HEAL`).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.client import Response
from coordinator.testing import (
    SimClusters,
    Snapshot,
    TasksimCluster,
    cluster_settings,
    fault_plans,
    task_trees,
)
from coordinator.testing.faults import BLACKHOLED, KILLED, PAUSED, SLOW
from coordinator.testing.model import wait_for
from tests.properties.support import example, note_plan, start_tree

pytestmark = pytest.mark.tasksim(nodes=3)

NODES = ["node-1", "node-2", "node-3"]
CUT = (KILLED, PAUSED, BLACKHOLED, SLOW)
HOLDING = {PAUSED, BLACKHOLED}  # nothing crosses until the heal
# Seconds for the cancel to reach the reachable descendants, and for the rest to be gone once U
# is back: generous on two busy shared cores, tight in virtual time.
AT_ONCE = {"real": 5.0, "sim": 0.1}
AFTER_HEAL = {"real": 10.0, "sim": 1.0}


@pytest.mark.cluster
@cluster_settings(max_examples=15)
@given(data=st.data())
def test_a_cancel_reaches_the_reachable_at_once_and_the_rest_after_heal(
    tasksim_cluster: TasksimCluster, data: st.DataObject
) -> None:
    a_cancel_reaches_the_reachable_at_once_and_the_rest_after_heal(tasksim_cluster, data)


@cluster_settings(max_examples=200)
@given(data=st.data())
def test_a_cancel_reaches_the_reachable_at_once_and_the_rest_after_heal_sim(
    tasksim_sim: SimClusters, data: st.DataObject
) -> None:
    with tasksim_sim.example(data) as cluster:
        a_cancel_reaches_the_reachable_at_once_and_the_rest_after_heal(cluster, data)


def a_cancel_reaches_the_reachable_at_once_and_the_rest_after_heal(
    cluster: TasksimCluster, data: st.DataObject
) -> None:
    sim = cluster.sim
    at_once, after_heal = AT_ONCE[cluster.engine], AFTER_HEAL[cluster.engine]
    root_node = data.draw(st.sampled_from(cluster.names), label="root node")
    plan = data.draw(fault_plans([n for n in NODES if n != root_node], kinds=CUT), label="U")
    tree = data.draw(task_trees(cluster.names, root_nodes=[root_node], max_tasks=8), label="tree")
    wait = data.draw(st.booleans(), label="wait_for_completion")
    note_plan(plan)
    u = plan.unreachable
    with example(sim, allow_lost_unbans=False):
        root, started = start_tree(sim, tree)
        tree_tasks = started.descendants(root)
        path = {k: set(started.ancestors_nodes(k)) for k in tree_tasks}
        reachable = {k for k in tree_tasks if not path[k] & u}
        held = {
            k
            for k in tree_tasks
            if path[k] & u and all(plan.of(n).kind in HOLDING for n in path[k] & u)  # type: ignore[union-attr]
        }
        plan.apply(sim, timeout=1.0)
        path = f"/_tasks/{root}/_cancel" + ("?wait_for_completion=true" if wait else "")
        cancel = sim.in_background("POST", path, timeout=120)
        try:
            snap = wait_for(
                lambda: Snapshot.read(sim),
                lambda s: all(k not in s.tasks or s.tasks[k].cancelled for k in reachable),
                timeout=at_once,
                clock=sim.clock,
            )
            late = sorted(k for k in reachable if k in snap.tasks and not snap.tasks[k].cancelled)
            assert not late, f"reachable descendants not cancelled within {at_once}s: {late}"
            heard = sorted(k for k in held if k in snap.tasks and snap.tasks[k].cancelled)
            assert not heard, f"descendants below a cut-off node were cancelled already: {heard}"
        finally:
            sim.heal_checked()
        try:
            resp = cancel.result(timeout=90)
        except TimeoutError:
            raise AssertionError("the cancel did not answer after the heal") from None
        check_cancel_answer(resp, root, killed=KILLED in plan.kinds())

        def settled(s: Snapshot) -> bool:
            return not (set(tree_tasks) & set(s.work())) and not s.ban_list() and not s.orphans()

        snap = wait_for(lambda: Snapshot.read(sim), settled, timeout=after_heal, clock=sim.clock)
        left = sorted(set(tree_tasks) & set(snap.work()))
        assert not left, f"descendants still running {after_heal}s after the heal: {left}"
        assert not snap.ban_list(), f"bans left after the heal: {snap.ban_list()}"
        assert not snap.orphans(), f"orphan tasks after the heal: {snap.orphans()}"


def check_cancel_answer(resp: Response, root: str, *, killed: bool) -> None:
    assert resp.status == 200, resp.body
    body = resp.body
    listed = [t for node in body.get("nodes", {}).values() for t in node["tasks"].values()]
    if listed or not killed:
        assert [f"{t['node']}:{t['id']}" for t in listed] == [root], body
        assert listed[0]["cancelled"] is True, body
        assert "node_failures" not in body, body
    else:  # a killed node took the tree down before the cancel arrived
        causes = [f.get("caused_by", {}).get("type") for f in body.get("node_failures", [])]
        assert causes == ["resource_not_found_exception"], body
