"""The `tasksim` pytest plugin (entry point `pytest11`), loaded wherever tasksim is installed.

Fixtures:

- `tasksim_cluster` (module scope): a real cluster — `tasksim up` with its node processes — shared
  by the tests of a module and always stopped. A module chooses it with a marker:

      pytestmark = pytest.mark.tasksim(nodes=3, seed=7, fault_detection=False, args=[...])

  `nodes` is a count or a `ClusterShape`; `fault_detection` is True (OpenSearch's follower checks:
  every 1 s, 10 s timeout, 3 retries; a refused connection at once), False (unreachable nodes stay
  in the cluster), or a dict such as `{"interval": "500ms", "timeout": "1s", "retries": 2}`.
- `tasksim_faults` (function scope): the cluster's fault client (`Faults`), healed — every rule
  removed, paused nodes resumed, dead ones restarted — after the test, which fails if the heal is
  not acknowledged. Hypothesis examples share a test's fixtures: heal per example with
  `with tasksim_cluster.sim.healing(): ...` instead.

It also registers the hypothesis profiles `tasksim-ci`, `tasksim-dev` and `tasksim-long`
(`pytest --hypothesis-profile=tasksim-ci`) without loading any. The plugin starts nothing until a
test asks for a fixture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from coordinator.testing.cluster import RunningCluster, running_cluster, running_cluster_of
from coordinator.testing.faults import Faults
from coordinator.testing.model import ClusterShape
from coordinator.testing.profiles import register_profiles

register_profiles()

MARKER = (
    "tasksim(nodes=3, seed=7, fault_detection=True, args=()): the cluster `tasksim_cluster` "
    "starts for the tests of this module"
)
_OPTIONS = {"nodes", "seed", "fault_detection", "args"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


@contextlib.contextmanager
def cluster_for(
    nodes: int | ClusterShape = 3,
    *,
    seed: int = 7,
    fault_detection: bool | dict[str, Any] = True,
    args: tuple[str, ...] = (),
) -> Iterator[RunningCluster]:
    """The cluster a `tasksim` marker describes."""
    if isinstance(nodes, ClusterShape) or isinstance(fault_detection, dict):
        shape = (
            nodes
            if isinstance(nodes, ClusterShape)
            else ClusterShape(
                tuple(
                    (f"node-{i}", ("cluster_manager", "data", "ingest", "remote_cluster_client"))
                    for i in range(1, nodes + 1)
                )
            )
        )
        with running_cluster_of(
            shape.nodes,
            *args,
            seed=seed,
            fault_detection=None if fault_detection is True else fault_detection,
        ) as c:
            yield c
        return
    extra = () if fault_detection else ("--no-fault-detection",)
    with running_cluster(*extra, *args, nodes=nodes, seed=seed) as c:
        yield c


@pytest.fixture(scope="module")
def tasksim_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCluster]:
    """A running tasksim cluster for this module (see the `tasksim` marker). It records its
    history: an example that fails in `sim.healing()` leaves the part it covered on disk."""
    marker = request.node.get_closest_marker("tasksim")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - _OPTIONS
    if unknown:
        raise pytest.UsageError(
            f"unknown tasksim marker option(s) {sorted(unknown)} (known: {sorted(_OPTIONS)})"
        )
    with cluster_for(
        options.get("nodes", 3),
        seed=options.get("seed", 7),
        fault_detection=options.get("fault_detection", True),
        args=(
            *options.get("args", ()),
            "--record",
            str(tmp_path_factory.mktemp("tasksim-history") / "cluster.jsonl"),
        ),
    ) as cluster:
        yield cluster


@pytest.fixture
def tasksim_faults(tasksim_cluster: RunningCluster) -> Iterator[Faults]:
    """The cluster's fault client; the cluster is healed after the test."""
    faults = tasksim_cluster.sim
    try:
        yield faults
    finally:
        faults.heal_checked()
