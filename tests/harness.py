"""Start a real tasksim cluster (the `tasksim up` process) for tests, and always stop it.

The logic lives in the user-facing testing kit (coordinator/testing/cluster.py); this module keeps
the names the project's tests and benchmarks import.
"""

from __future__ import annotations

from pathlib import Path

from coordinator.testing.cluster import (
    Node,
    RunningCluster,
    running_cluster,
    start_cluster,
    stop_cluster,
)

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "Node", "RunningCluster", "running_cluster", "start_cluster", "stop_cluster"]
