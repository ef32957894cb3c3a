"""What the unreachability properties share: starting a tree and waiting until all of it runs,
putting the shared cluster back to a clean state after every example, and how late an answer may
be on each engine. Every wait polls on the cluster's clock (`sim.clock`): wall time on the real
engine, the world's virtual time on the sim engine."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from hypothesis import event

from coordinator.testing import FaultPlan, Faults, Snapshot, TasksimCluster, TaskTree
from coordinator.testing.model import wait_for

# Every action of the simulated work (coordinator.testing.strategies.WORK_ACTIONS).
WORK = "indices:*,internal:tasksim/*"
# Beyond a request's timeout, how late its answer may be: on two busy shared cores (real), and in
# virtual time (sim), where only the simulated message latencies (under a millisecond each) count.
SLACK = {"real": 3.0, "sim": 0.01}
# How long a tree may take to start, and the cluster to settle (no work, no ban) after a heal and
# a cancel: only a failure waits that long, and a loaded machine meets them (on the cluster's
# clock: virtual seconds on the sim engine, which cost nothing).
START_WITHIN = 30.0
SETTLE_WITHIN = 30.0


def slack(cluster: TasksimCluster) -> float:
    return SLACK[cluster.engine]


def note_plan(plan: FaultPlan) -> None:
    """Statistics (`--hypothesis-show-statistics`): how many nodes were cut off, and how."""
    event(f"|U| = {len(plan.faults)}")
    for kind in sorted(plan.kinds()):
        event(f"a node {kind}")


def start_tree(
    sim: Faults, tree: TaskTree, *, opaque_id: str | None = None
) -> tuple[str, Snapshot]:
    """Start `tree`; its root's task id and the ground truth once every task of it is registered."""
    # The root stores its result: when it ends early, `GET _tasks/<root>` says why.
    root = sim.start_task({**tree.body(), "store_result": True}, opaque_id=opaque_id)[0]
    snap = wait_for(
        lambda: Snapshot.read(sim),
        lambda s: len(s.descendants(root)) == tree.size(),
        timeout=START_WITHIN,
        clock=sim.clock,
    )
    if len(snap.descendants(root)) != tree.size():
        raise AssertionError(
            f"only {len(snap.descendants(root))} of the {tree.size()} tasks of {tree} started "
            f"(root {root}); work: {sorted(snap.work())}; bans: {snap.ban_list()}; "
            f"the root: {sim.request('GET', '/_tasks/' + root).body}; "
            f"rules: {rules_in_force(sim)}; "
            f"a probe of the same links: {probe(sim, tree)}"
        )
    return root, snap


def rules_in_force(sim: Faults) -> dict[str, Any]:
    """The rule version the nemesis is at, and what each process actually runs (its own version
    and its rules' hits, read over the control channel): a child request held by a rule that
    the nemesis no longer has shows up here."""
    nodes = sim.nodes()
    return {
        "version": sim.faults()["version"],
        "processes": {
            name: {"rules_version": e.get("rules_version"), "hits": e.get("hits")}
            if e.get("reachable")
            else "unreadable"
            for name, e in nodes.items()
        },
    }


def probe(sim: Faults, tree: TaskTree) -> Any:
    """Run a task on the tree's root node with a child on each node it uses, and wait: what went
    wrong, when a tree did not start."""
    children = [{"node": n, "duration": "0s"} for n in sorted(tree.nodes())]
    body = {"node": tree.node, "duration": "0s", "children": children}
    return sim.request("POST", "/_sim/tasks?wait_for_completion=true", body, timeout=30).body


def reset(sim: Faults, *, allow_lost_unbans: bool) -> Snapshot:
    """After a heal: cancel whatever work is left and wait until no task and no ban remain.

    `allow_lost_unbans`: a ban whose `ban:false` was lost to a fault that fails calls fast (a
    disconnect, a connection reset under a request already delivered) stays, in OpenSearch too,
    until the banning task's node leaves the cluster; such a node is restarted here so that the
    next example starts clean."""
    resp = sim.request(
        "POST", f"/_tasks/_cancel?actions={WORK}&wait_for_completion=true", timeout=60
    )
    assert resp.status == 200, resp.body

    def clean(s: Snapshot) -> bool:
        return not s.work() and not s.ban_list() and s.readable == set(s.ids)

    snap = wait_for(lambda: Snapshot.read(sim), clean, timeout=SETTLE_WITHIN, clock=sim.clock)
    assert not snap.work(), f"work left after the heal and a cancel: {sorted(snap.work())}"
    if snap.ban_list() and allow_lost_unbans:
        event("a ban whose unban was lost, cleared by a restart")
        # The node that holds the ban forgets it when restarted; the coordinating node cannot
        # be: restart the banning task's node instead, which makes every node drop its bans.
        names = {v: k for k, v in snap.ids.items()}
        restart: set[str] = set()
        for holder, bans in snap.bans.items():
            for parent in bans:
                owner = names.get(parent.split(":", 1)[0], "coordinator")
                restart.add(holder if holder != "coordinator" else owner)
        for name in sorted(restart - {"coordinator"}):
            sim.restart(name)
        snap = wait_for(lambda: Snapshot.read(sim), clean, timeout=SETTLE_WITHIN, clock=sim.clock)
    assert not snap.ban_list(), f"bans left after the heal: {snap.ban_list()}"
    return snap


@contextlib.contextmanager
def example(sim: Faults, *, allow_lost_unbans: bool = True) -> Iterator[None]:
    """One example on the shared cluster: heal and reset afterwards, also when it failed (then a
    failing reset does not hide the example's own failure)."""
    started = time.time()
    try:
        try:
            yield
        finally:
            failed = sys.exc_info()[0] is not None
            try:
                sim.heal_checked()
                reset(sim, allow_lost_unbans=allow_lost_unbans)
            except Exception:
                if not failed:
                    raise
    except BaseException as e:
        sim.note_history(e, started)  # where the history of the failed example is
        raise
