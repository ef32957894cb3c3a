"""Hypothesis strategies for testing against a tasksim cluster.

    from coordinator.testing import strategies as tst

    tst.cluster_shapes(min_nodes=1, max_nodes=5)   # ClusterShape: named nodes and role mixes
    tst.unreachable_sets(["node-1", "node-2"])     # frozenset U of node names
    tst.node_faults("node-2")                      # NodeFault: killed | paused | blackholed |
                                                   #   disconnected | slow (slower than the timeout)
    tst.fault_plans(["node-1", "node-2"])          # FaultPlan: U, a fault per node of U
    tst.task_trees(["node-1", "node-2"])           # TaskTree: a body for POST /_sim/tasks
    tst.list_requests(["coordinator", "node-1"])   # ListRequest: nodes, actions, parent_task_id,
                                                   #   detailed, group_by, timeout
    tst.opaque_ids()                               # X-Opaque-Id values

Every strategy shrinks towards the simple case: fewer nodes and faults, the first fault kind
(`killed`), smaller trees, fewer parameters. Strategies only describe values; applying them to a
cluster is `FaultPlan.apply` / `SimClient.start_task` (coordinator/testing/faults.py, client.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from coordinator.testing.faults import FAULT_KINDS, FaultPlan, NodeFault
from coordinator.testing.model import ClusterShape, ListRequest, TaskTree

# Role mixes real clusters use: the default node, dedicated cluster managers, data-only nodes,
# ingest, coordinating-only ([]), search.
ROLE_MIXES: tuple[tuple[str, ...], ...] = (
    ("cluster_manager", "data", "ingest", "remote_cluster_client"),
    ("cluster_manager",),
    ("data",),
    ("data", "ingest"),
    ("cluster_manager", "data"),
    ("ingest",),
    (),
    ("search",),
)

# Actions of the simulated work (what OpenSearch's own tasks are called).
WORK_ACTIONS: tuple[str, ...] = (
    "indices:data/write/reindex",
    "indices:data/write/bulk",
    "indices:data/write/bulk[s]",
    "indices:data/read/search",
    "indices:data/read/search[phase/query]",
    "internal:tasksim/sim",
)

# `actions=` patterns: match-all, prefixes, exact names, the list's own tasks, nothing at all.
ACTION_PATTERNS: tuple[str, ...] = (
    "*",
    "indices:*",
    "indices:data/write/*",
    "indices:data/read/*",
    "*search*",
    "*[s]",
    "internal:*",
    "cluster:monitor/tasks/lists*",
    "cluster:*",
    "indices:data/write/reindex",
    "indices:data/read/search",
    "no/such/action",
)


def cluster_shapes(min_nodes: int = 1, max_nodes: int = 5) -> st.SearchStrategy[ClusterShape]:
    """Nodes `node-1..N`, each with a role mix; at least one is cluster-manager-eligible."""

    def build(mixes: list[tuple[str, ...]]) -> ClusterShape:
        if not any("cluster_manager" in m for m in mixes):
            mixes = [("cluster_manager", *mixes[0]), *mixes[1:]]
        return ClusterShape(tuple((f"node-{i}", m) for i, m in enumerate(mixes, 1)))

    return st.lists(st.sampled_from(ROLE_MIXES), min_size=min_nodes, max_size=max_nodes).map(build)


def unreachable_sets(
    names: Sequence[str], *, min_size: int = 0, max_size: int | None = None
) -> st.SearchStrategy[frozenset[str]]:
    """A set U of nodes to cut off (from `names`; never the coordinating node, which runs the
    REST API and cannot be faulted)."""
    if not names:
        return st.just(frozenset())
    return st.frozensets(st.sampled_from(list(names)), min_size=min_size, max_size=max_size)


def node_faults(node: str, kinds: Sequence[str] = FAULT_KINDS) -> st.SearchStrategy[NodeFault]:
    return st.sampled_from(list(kinds)).map(lambda kind: NodeFault(node, kind))


@st.composite
def fault_plans(
    draw: st.DrawFn,
    names: Sequence[str],
    *,
    kinds: Sequence[str] = FAULT_KINDS,
    min_size: int = 0,
    max_size: int | None = None,
) -> FaultPlan:
    """U (from `names`) and a fault for each node of U."""
    unreachable = draw(unreachable_sets(names, min_size=min_size, max_size=max_size))
    ordered = [n for n in names if n in unreachable]
    return FaultPlan(tuple(draw(node_faults(n, kinds)) for n in ordered))


@st.composite
def task_trees(
    draw: st.DrawFn,
    nodes: Sequence[str],
    *,
    root_nodes: Sequence[str] | None = None,
    max_depth: int = 3,
    max_children: int = 3,
    max_tasks: int = 10,
    actions: Sequence[str] = WORK_ACTIONS,
) -> TaskTree:
    """A tree of at most `max_tasks` tasks on `nodes` (its root on one of `root_nodes`)."""
    budget = [max_tasks - 1]

    def subtree(node: str, depth: int) -> TaskTree:
        children: list[TaskTree] = []
        if depth < max_depth:
            wanted = draw(st.integers(0, min(max_children, budget[0])))
            for _ in range(wanted):
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                child_node = draw(st.sampled_from(list(nodes)))
                children.append(subtree(child_node, depth + 1))
        return TaskTree(node, draw(st.sampled_from(list(actions))), tuple(children))

    root = draw(st.sampled_from(list(root_nodes if root_nodes is not None else nodes)))
    return subtree(root, 0)


def opaque_ids() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,23}", fullmatch=True)


def action_filters() -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(ACTION_PATTERNS), max_size=2, unique=True).map(tuple)


@st.composite
def list_requests(
    draw: st.DrawFn,
    names: Sequence[str],
    *,
    timeouts: st.SearchStrategy[float | None] | None = None,
    parents: st.SearchStrategy[str | None] | None = None,
) -> ListRequest:
    """`GET _tasks` parameters: a node list (or all), action patterns, a parent filter, detailed,
    group_by, and a timeout (default: one of 0.3, 0.6, 1 s — always set)."""
    selected = draw(st.lists(st.sampled_from(list(names)), unique=True, max_size=len(names)))
    return ListRequest(
        nodes=tuple(selected),
        actions=draw(action_filters()),
        parent_task_id=draw(parents if parents is not None else st.none()),
        detailed=draw(st.booleans()),
        group_by=draw(st.sampled_from(["nodes", "parents", "none"])),
        timeout=draw(timeouts if timeouts is not None else st.sampled_from([0.3, 0.6, 1.0])),
    )
