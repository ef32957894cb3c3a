"""A stateful test of the cluster: hypothesis drives a real cluster through any sequence of start
work, list, get, cancel, partition, kill, pause, restart and heal, and checks it against a model
after every step.

The model knows, per node, whether its process runs, is paused or is dead and whether a partition
cuts it off; and, per task tree started, every task (node, parent) and whether the tree is intact,
being cancelled, or damaged (a node it ran on was killed or restarted, so some of it died with the
process and the rest may follow). What must hold:

- after every step (`@invariant`, from the ground truth read over the control channel): each
  process is alive/paused as modelled; every task of an intact tree on a node that can be read is
  there and not cancelled; no node runs work the model does not know; no cancellable task started
  under its parent's ban;
- `list`: every targeted node is accounted for exactly once — the unreachable ones in
  `node_failures` with the cause of their fault — within the timeout plus slack, and every task of
  an intact tree on a reachable targeted node that matches is listed;
- `get`: a task on a reachable node answers with that task; on an unreachable one, the fault's
  error; a task of a cancelled tree is gone (404) or still shown cancelled;
- `cancel` (of a tree whose root node is reachable, sent in the background since it waits for
  the bans to cut-off nodes): every descendant whose path from the root avoids unreachable nodes is
  cancelled — or gone — at once;
- `heal`: every pending cancel answers 200 with its root cancelled; then every cancelled or damaged
  tree is gone (damaged ones are cancelled first), no ban and no orphan remains, and the intact
  trees are all there.

Fault detection is off (`tasksim up --no-fault-detection`): membership never changes, so a cut-off
node is always targeted and the model's answer is exact; a restarted node still leaves and joins
again (coordinator/cluster.py). Restarts are only drawn while no other node is paused or cut off (a
publication to such a node waits out its timeout, twice per restart).

It runs on both engines: on the real one against the module's cluster (10 runs of 25 steps), on the
sim one with a fresh world per run whose seed the first step draws (100 runs of 50 steps), so that
a failing run shrinks and its printed steps replay it exactly; there "at once" is virtual time.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from coordinator.client import Response
from coordinator.scenario.checks import children_under_ban
from coordinator.testing import (
    SimClusters,
    Snapshot,
    TasksimCluster,
    cluster_settings,
    list_requests,
    listed_tasks,
    seeds,
    task_trees,
)
from coordinator.testing.faults import CAUSES, KILLED, RECEIVE_TIMEOUT, Faults, Pending
from coordinator.testing.model import failures_by_node, is_transient, wait_for
from tests.properties.support import SETTLE_WITHIN, reset, slack, start_tree

pytestmark = pytest.mark.tasksim(nodes=3, fault_detection=False)

NODES = ("node-1", "node-2", "node-3")
RUNNING, PAUSED_, DEAD = "running", "paused", "dead"
INTACT, CANCELLING, DAMAGED = "intact", "cancelling", "damaged"
CALLS: Counter[str] = Counter()  # rule and invariant calls, reported at the end
# Seconds for a cancel to reach the reachable descendants, and for cancelled trees to be gone
# after a heal: generous on the real engine (only a failure waits that long, and a loaded machine
# meets them), tight in the sim engine's virtual time.
AT_ONCE = {"real": SETTLE_WITHIN, "sim": 0.1}
SETTLED = {"real": SETTLE_WITHIN, "sim": 1.0}


@dataclass
class TreeModel:
    root: str
    tasks: dict[str, tuple[str, str | None, str]]  # key → (node name, parent key, action)
    path: dict[str, set[str]]  # key → the nodes from the root down to it
    state: str = INTACT
    cancel: Pending | None = None
    answer: dict[str, Any] = field(default_factory=dict)


class ClusterMachine(RuleBasedStateMachine):
    """`source`: the module's cluster (real: every run shares it and is reset after), or fresh
    simulated clusters (sim: each run starts its own world, seeded by its first step)."""

    def __init__(self, source: TasksimCluster | SimClusters) -> None:
        super().__init__()
        self.source = source
        self._cluster: TasksimCluster | None = None if isinstance(source, SimClusters) else source
        self._world: Any = None
        self._sim: Faults | None = None
        self.process = {n: RUNNING for n in NODES}
        self.cut: set[str] = set()
        self.trees: list[TreeModel] = []
        self.steps = 0

    @property
    def cluster(self) -> TasksimCluster:
        assert self._cluster is not None, "the run has not started its cluster"
        return self._cluster

    @property
    def sim(self) -> Faults:
        if self._sim is None:
            self._sim = self.cluster.sim
        return self._sim

    # -- the model ----------------------------------------------------------------------------

    def reachable(self, name: str) -> bool:
        return name == "coordinator" or (self.process[name] == RUNNING and name not in self.cut)

    def healthy(self) -> list[str]:
        return [n for n in self.cluster.names if self.reachable(n)]

    def fault_causes(self, name: str) -> frozenset[str]:
        if self.process[name] == DEAD and name not in self.cut:  # a partition holds calls first
            return CAUSES[KILLED]
        return frozenset({RECEIVE_TIMEOUT})

    def known_keys(self) -> set[str]:
        return {k for t in self.trees for k in t.tasks}

    def node_lost(self, name: str) -> None:
        """The node's process died: its tasks are gone, their trees are damaged. A cancel still
        waiting for its answer whose root was there answers as a damaged tree's may (its `[n]`
        request to that node failed: `node_failures`, no root listed)."""
        for tree in self.trees:
            mine = [k for k, (node, _, _) in tree.tasks.items() if node == name]
            touched = mine or any(name in p for p in tree.path.values())
            if touched and tree.state == INTACT:
                tree.state = DAMAGED
            if tree.cancel is not None and tree.root in mine:
                tree.answer["damaged"] = True
            for k in mine:
                del tree.tasks[k]

    # -- rules ----------------------------------------------------------------------------------

    @initialize(seed=seeds())
    def clean_start(self, seed: int) -> None:
        """The run's cluster: on sim a fresh world under `seed` (on real the seed is unused)."""
        CALLS["clean_start"] += 1
        if isinstance(self.source, SimClusters):
            self._world = self.source.start(seed)
            self._cluster = self._world.__enter__()
        snap = Snapshot.read(self.sim)
        assert not snap.work() and not snap.ban_list(), "the cluster is not clean"

    @precondition(lambda self: len(self.trees) < 4)
    @rule(data=st.data())
    def start_work(self, data: st.DataObject) -> None:
        CALLS["start_work"] += 1
        tree = data.draw(task_trees(self.healthy(), max_tasks=6, max_depth=2), label="tree")
        root, snap = start_tree(self.sim, tree)
        tasks = {k: (t.node, t.parent, t.action) for k, t in snap.descendants(root).items()}
        path = {k: set(snap.ancestors_nodes(k)) for k in tasks}
        self.trees.append(TreeModel(root, tasks, path))

    @rule(data=st.data())
    def list_tasks(self, data: st.DataObject) -> None:
        CALLS["list_tasks"] += 1
        roots = [t.root for t in self.trees]
        parents = st.sampled_from([None, *roots]) if roots else st.none()
        req = data.draw(list_requests(self.cluster.names, parents=parents), label="list")
        assert req.timeout is not None
        resp = self.sim.request("GET", req.path(), timeout=req.timeout + 60)
        assert resp.status == 200, resp.body
        targets = req.targets(self.cluster.names)
        unreachable = {n for n in targets if not self.reachable(n)}
        failures = [(self.cluster.name_of(i), c) for i, c in failures_by_node(resp.body)]
        assert sorted(n for n, _ in failures) == sorted(unreachable), (failures, unreachable)
        for name, cause in failures:
            assert cause in self.fault_causes(name), (name, self.process[name], cause)
        listed = {f"{t['node']}:{t['id']}": t for t in listed_tasks(resp.body)}
        assert {self.cluster.name_of(t["node"]) for t in listed.values()} <= targets - unreachable
        strangers = {
            k for k, t in listed.items() if not is_transient(t["action"])
        } - self.known_keys()
        assert not strangers, f"listed work the model does not know: {sorted(strangers)}"
        answered = targets - unreachable
        for tree in self.trees:
            if tree.state != INTACT:
                continue
            for k, (node, parent, action) in tree.tasks.items():
                if node in answered and req.matches(action, parent):
                    assert k in listed, f"{k} ({action}) on {node} is not listed"
        for t in listed.values():
            assert req.matches(t["action"], t.get("parent_task_id")), t
        assert resp.elapsed <= req.timeout + slack(self.cluster), (
            f"answered after {resp.elapsed:.4f}s"
        )

    @precondition(lambda self: any(t.tasks for t in self.trees))
    @rule(data=st.data())
    def get_task(self, data: st.DataObject) -> None:
        CALLS["get_task"] += 1
        choices = sorted((k, t.state) for t in self.trees for k in t.tasks)
        key, state = data.draw(st.sampled_from(choices), label="get")
        tree = next(t for t in self.trees if key in t.tasks)
        node = tree.tasks[key][0]
        resp = self.sim.request("GET", f"/_tasks/{key}?timeout=1s", timeout=60)
        if not self.reachable(node):
            assert resp.status >= 500, resp.body
            error = resp.body["error"]
            assert error["type"] in self.fault_causes(node), resp.body
        elif state == INTACT:
            assert resp.status == 200, resp.body
            assert resp.body["completed"] is False
            assert f"{resp.body['task']['node']}:{resp.body['task']['id']}" == key
            assert resp.body["task"]["cancelled"] is False
        elif state == CANCELLING and not tree.answer.get("damaged"):
            assert resp.status in (200, 404), resp.body
            if resp.status == 200:
                assert resp.body["task"]["cancelled"] is True, resp.body
        else:  # damaged (cancelled since, or not): a task may also have ended with an error when
            # a node below it died, and its stored result says so (`completed`, not cancelled)
            assert resp.status in (200, 404), resp.body

    @precondition(lambda self: any(t.state in (INTACT, DAMAGED) for t in self.trees))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        CALLS["cancel"] += 1
        choices = [i for i, t in enumerate(self.trees) if t.state in (INTACT, DAMAGED)]
        tree = self.trees[data.draw(st.sampled_from(choices), label="cancel")]
        root_node = self.cluster.name_of(tree.root.split(":")[0])
        if not self.reachable(root_node) or tree.root not in tree.tasks:
            return  # the root is cut off or gone: nothing to learn from it
        damaged = tree.state == DAMAGED
        tree.state = CANCELLING
        tree.cancel = self.sim.in_background("POST", f"/_tasks/{tree.root}/_cancel", timeout=120)
        tree.answer["damaged"] = damaged
        reachable = {
            k for k, p in tree.path.items() if k in tree.tasks and all(self.reachable(n) for n in p)
        }
        snap = wait_for(
            lambda: Snapshot.read(self.sim),
            # (generous: the cut-off part cannot be cancelled before the heal whatever the wait)
            lambda s: all(k not in s.tasks or s.tasks[k].cancelled for k in reachable),
            timeout=AT_ONCE[self.cluster.engine],
            clock=self.sim.clock,
        )
        late = sorted(k for k in reachable if k in snap.tasks and not snap.tasks[k].cancelled)
        assert not late, f"reachable descendants not cancelled at once: {late}"

    @precondition(lambda self: [n for n in NODES if self.process[n] != DEAD and n not in self.cut])
    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        CALLS["partition"] += 1
        free = [n for n in NODES if self.process[n] != DEAD and n not in self.cut]
        group = data.draw(st.lists(st.sampled_from(free), min_size=1, unique=True), label="cut")
        self.sim.partition(group)
        self.cut |= set(group)

    @precondition(lambda self: [n for n in NODES if self.process[n] != DEAD])
    @rule(data=st.data())
    def kill(self, data: st.DataObject) -> None:
        CALLS["kill"] += 1
        name = data.draw(
            st.sampled_from([n for n in NODES if self.process[n] != DEAD]), label="kill"
        )
        self.sim.kill(name)
        self.process[name] = DEAD
        self.node_lost(name)

    @precondition(lambda self: [n for n in NODES if self.process[n] == RUNNING])
    @rule(data=st.data())
    def pause(self, data: st.DataObject) -> None:
        CALLS["pause"] += 1
        name = data.draw(
            st.sampled_from([n for n in NODES if self.process[n] == RUNNING]), label="pause"
        )
        self.sim.pause(name)
        self.process[name] = PAUSED_

    @precondition(lambda self: not self.cut and all(self.process[n] != PAUSED_ for n in NODES))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        CALLS["restart"] += 1
        name = data.draw(st.sampled_from(NODES), label="restart")
        self.sim.restart(name)
        self.process[name] = RUNNING
        self.node_lost(name)

    @precondition(
        lambda self: (
            self.cut
            or any(p != RUNNING for p in self.process.values())
            or any(t.state != INTACT for t in self.trees)
        )
    )
    @rule()
    def heal(self) -> None:
        CALLS["heal"] += 1
        self.sim.heal_checked()
        self.process = {n: RUNNING for n in NODES}
        self.cut = set()
        for tree in self.trees:
            if tree.cancel is not None:
                try:
                    tree.answer["resp"] = tree.cancel.result(timeout=60)
                except TimeoutError:
                    raise AssertionError(f"the cancel of {tree.root} never answered") from None
                self._check_cancel_answer(tree)
                tree.cancel = None
        # Damaged trees: what is left of them is cancelled too (their root may be gone: cancel
        # each surviving task whose parent is gone).
        snap = Snapshot.read(self.sim)
        for tree in self.trees:
            if tree.state == DAMAGED:
                for k in tree.tasks:
                    if k in snap.tasks:
                        self.sim.request("POST", f"/_tasks/{k}/_cancel", timeout=60)
                tree.state = CANCELLING
        gone = {k for t in self.trees if t.state == CANCELLING for k in t.tasks}

        def settled(s: Snapshot) -> bool:
            return not (gone & set(s.work())) and not s.ban_list() and not s.orphans()

        snap = wait_for(
            lambda: Snapshot.read(self.sim),
            settled,
            timeout=SETTLED[self.cluster.engine],
            clock=self.sim.clock,
        )
        assert not (gone & set(snap.work())), (
            f"cancelled tasks left: {sorted(gone & set(snap.work()))}"
        )
        assert not snap.ban_list(), f"bans left after the heal: {snap.ban_list()}"
        assert not snap.orphans(), f"orphans after the heal: {snap.orphans()}"
        self.trees = [t for t in self.trees if t.state == INTACT]
        expected = self.known_keys()
        assert set(snap.work()) == expected, sorted(set(snap.work()) ^ expected)

    def _check_cancel_answer(self, tree: TreeModel) -> None:
        resp: Response = tree.answer["resp"]
        assert resp.status == 200, resp.body
        listed = [t for n in resp.body.get("nodes", {}).values() for t in n["tasks"].values()]
        if listed or not tree.answer.get("damaged"):
            assert [f"{t['node']}:{t['id']}" for t in listed] == [tree.root], resp.body
            assert listed[0]["cancelled"] is True

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def processes_as_modelled(self) -> None:
        CALLS["processes_as_modelled"] += 1
        nodes = self.sim.nodes()
        for name in NODES:
            entry = nodes[name]
            state = DEAD if not entry["alive"] else PAUSED_ if entry["paused"] else RUNNING
            assert state == self.process[name], (name, state, self.process[name])

    @invariant()
    def ground_truth_as_modelled(self) -> None:
        CALLS["ground_truth_as_modelled"] += 1
        snap = Snapshot.read(self.sim)
        for tree in self.trees:
            if tree.state != INTACT:
                continue
            for k, (node, _, _) in tree.tasks.items():
                if node in snap.readable:
                    assert k in snap.tasks, f"{k} of an intact tree is gone from {node}"
                    assert not snap.tasks[k].cancelled, f"{k} of an intact tree is cancelled"
        strangers = set(snap.work()) - self.known_keys()
        assert not strangers, f"work the model does not know: {sorted(strangers)}"
        assert not children_under_ban(snap.raw), children_under_ban(snap.raw)

    def teardown(self) -> None:
        if self._cluster is None:
            return
        try:
            try:
                self.sim.heal_checked()
                for tree in self.trees:
                    if tree.cancel is not None:
                        try:
                            tree.cancel.result(timeout=60)
                        except Exception:
                            pass  # the run failed already; its own error is what counts
            finally:
                reset(self.sim, allow_lost_unbans=False)
        finally:
            if self._world is not None:
                self._world.__exit__(None, None, None)


@pytest.mark.cluster
# 10 examples of 25 steps: about 70 s on a quiet machine, several times that on a loaded one;
# pytest-timeout's 120 s default would end it there (it still ends a hang).
@pytest.mark.timeout(600)
def test_the_cluster_behaves_as_modelled_under_any_sequence_of_faults(
    tasksim_cluster: TasksimCluster,
) -> None:
    started = time.monotonic()
    run_state_machine_as_test(
        lambda: ClusterMachine(tasksim_cluster),
        settings=cluster_settings(max_examples=10, stateful_step_count=25),
    )
    print(f"stateful: {time.monotonic() - started:.1f}s, {dict(sorted(CALLS.items()))}")


def test_the_cluster_behaves_as_modelled_under_any_sequence_of_faults_sim(
    tasksim_sim: SimClusters,
) -> None:
    started = time.monotonic()
    run_state_machine_as_test(
        lambda: ClusterMachine(tasksim_sim),
        settings=cluster_settings(max_examples=100, stateful_step_count=50),
    )
    print(f"stateful (sim): {time.monotonic() - started:.1f}s, {dict(sorted(CALLS.items()))}")
