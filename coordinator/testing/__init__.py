"""The tasksim testing kit: test your own Tasks API client against a real simulated cluster.

- `running_cluster()` / `RunningCluster` (cluster.py): start `tasksim up` from a test, always stop it;
- `simulated_cluster()` / `SimCluster` (simcluster.py): the same harness on the `sim` engine — one
  process, virtual time, one seed deciding the run; `TasksimCluster` is the API both offer;
- `Faults`, `NodeFault`, `FaultPlan` (faults.py): make nodes unreachable, heal after each example;
- `strategies` (strategies.py): hypothesis strategies for cluster shapes, unreachable sets, faults,
  task trees and list requests;
- `Snapshot`, `ListRequest`, `TaskTree` (model.py): ground truth and what answers are checked with;
- profiles.py: hypothesis profiles `tasksim-ci` / `tasksim-dev` / `tasksim-long`;
- plugin.py: the pytest plugin (fixtures `tasksim_cluster`, `tasksim_faults`, `tasksim_sim`;
  a marker choosing the engine or both), loaded through the `pytest11` entry point `tasksim`.

Nothing in this package imports the project's own tests.
"""

from __future__ import annotations

from coordinator.testing import strategies
from coordinator.testing.cluster import (
    Node,
    RunningCluster,
    TasksimCluster,
    running_cluster,
    running_cluster_of,
    start_cluster,
    stop_cluster,
)
from coordinator.testing.faults import FAULT_KINDS, FaultPlan, Faults, NodeFault
from coordinator.testing.model import ClusterShape, ListRequest, Snapshot, TaskTree, listed_tasks
from coordinator.testing.profiles import cluster_settings, load_profile
from coordinator.testing.simcluster import (
    SimCluster,
    SimClusters,
    seeds,
    sim_config,
    simulated_cluster,
)
from coordinator.testing.strategies import (
    cluster_shapes,
    fault_plans,
    list_requests,
    node_faults,
    opaque_ids,
    task_trees,
    unreachable_sets,
)

__all__ = [
    "FAULT_KINDS",
    "ClusterShape",
    "FaultPlan",
    "Faults",
    "ListRequest",
    "Node",
    "NodeFault",
    "RunningCluster",
    "SimCluster",
    "SimClusters",
    "Snapshot",
    "TaskTree",
    "TasksimCluster",
    "cluster_settings",
    "cluster_shapes",
    "fault_plans",
    "list_requests",
    "listed_tasks",
    "load_profile",
    "node_faults",
    "opaque_ids",
    "running_cluster",
    "running_cluster_of",
    "seeds",
    "sim_config",
    "simulated_cluster",
    "start_cluster",
    "stop_cluster",
    "strategies",
    "task_trees",
    "unreachable_sets",
]
