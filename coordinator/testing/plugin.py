"""The `tasksim` pytest plugin (entry point `pytest11`), loaded wherever tasksim is installed.

Fixtures:

- `tasksim_cluster` (module scope): a cluster shared by the tests of a module and always stopped —
  on the `real` engine `tasksim up` with its node processes (`RunningCluster`), on the `sim` engine
  a simulated world in this process on virtual time (`SimCluster`, the same harness API). A module
  chooses it with a marker:

      pytestmark = pytest.mark.tasksim(nodes=3, seed=7, fault_detection=False, args=[...])

  `nodes` is a count or a `ClusterShape`; `fault_detection` is True (OpenSearch's follower checks:
  every 1 s, 10 s timeout, 3 retries; a refused connection at once), False (unreachable nodes stay
  in the cluster), or a dict such as `{"interval": "500ms", "timeout": "1s", "retries": 2}`;
  `engine` is `"real"` (the default) or `"sim"`; `engines=["real", "sim"]` runs every test of the
  module once on each (the fixture `tasksim_engine` is parametrised: ids `[real]`, `[sim]`).
- `tasksim_faults` (function scope): the cluster's fault client (`Faults`), healed — every rule
  removed, paused nodes resumed, dead ones restarted — after the test, which fails if the heal is
  not acknowledged. Hypothesis examples share a test's fixtures: heal per example with
  `with tasksim_cluster.sim.healing(): ...` instead.
- `tasksim_sim` (module scope): fresh simulated clusters of the marker's configuration, one per
  hypothesis example, its seed drawn by hypothesis — `with tasksim_sim.example(data) as cluster:` —
  so that a failing example shrinks and its reproduction fails the same way every time. It starts
  nothing until an example asks.

It also registers the hypothesis profiles `tasksim-ci`, `tasksim-dev` and `tasksim-long`
(`pytest --hypothesis-profile=tasksim-ci`) without loading any. The plugin starts nothing until a
test asks for a fixture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from coordinator.testing.cluster import (
    RunningCluster,
    TasksimCluster,
    running_cluster,
    running_cluster_of,
)
from coordinator.testing.faults import Faults
from coordinator.testing.model import ClusterShape
from coordinator.testing.profiles import register_profiles
from coordinator.testing.simcluster import SimClusters, sim_config, simulated_cluster

register_profiles()

MARKER = (
    "tasksim(nodes=3, seed=7, fault_detection=True, args=(), engine='real', engines=None): the "
    "cluster `tasksim_cluster` starts for the tests of this module (engines: run on each)"
)
_OPTIONS = {"nodes", "seed", "fault_detection", "args", "engine", "engines"}
ENGINES = ("real", "sim")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def _options(node: Any) -> dict[str, Any]:
    marker = node.get_closest_marker("tasksim")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - _OPTIONS
    if unknown:
        raise pytest.UsageError(
            f"unknown tasksim marker option(s) {sorted(unknown)} (known: {sorted(_OPTIONS)})"
        )
    for engine in [options.get("engine", "real"), *options.get("engines", ())]:
        if engine not in ENGINES:
            raise pytest.UsageError(f"unknown tasksim engine {engine!r} (engines: {ENGINES})")
    return options


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`tasksim(engines=[...])`: the tests that use the cluster run once per engine."""
    if "tasksim_engine" not in metafunc.fixturenames:
        return
    engines = _options(metafunc.definition).get("engines")
    if engines:
        metafunc.parametrize("tasksim_engine", list(engines), indirect=True, scope="module")


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


def _sim_clusters(options: dict[str, Any]) -> SimClusters:
    args = tuple(options.get("args", ()))
    try:
        config = sim_config(
            options.get("nodes", 3),
            fault_detection=options.get("fault_detection", True),
            args=[a for a in args if a != "--demo"],
        )
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    return SimClusters(config, demo="--demo" in args)


@pytest.fixture(scope="module")
def tasksim_engine(request: pytest.FixtureRequest) -> str:
    """The engine `tasksim_cluster` runs on: the parameter (`engines=`), else the marker's
    `engine`, else `real`."""
    param = getattr(request, "param", None)
    return str(param or _options(request.node).get("engine", "real"))


@pytest.fixture(scope="module")
def tasksim_cluster(
    request: pytest.FixtureRequest, tasksim_engine: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TasksimCluster]:
    """A tasksim cluster for this module (see the `tasksim` marker), on its engine. A real one
    records its history: an example that fails in `sim.healing()` leaves the part it covered on
    disk (a simulated one replays from its seed instead)."""
    options = _options(request.node)
    if tasksim_engine == "sim":
        clusters = _sim_clusters(options)
        with simulated_cluster(
            clusters.config, seed=options.get("seed", 7), demo=clusters.demo
        ) as simulated:
            yield simulated
        return
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


@pytest.fixture(scope="module")
def tasksim_sim(request: pytest.FixtureRequest) -> SimClusters:
    """Fresh simulated clusters of the marker's configuration, one per example (see above)."""
    return _sim_clusters(_options(request.node))


@pytest.fixture
def tasksim_faults(tasksim_cluster: TasksimCluster) -> Iterator[Faults]:
    """The cluster's fault client; the cluster is healed after the test."""
    faults = tasksim_cluster.sim
    try:
        yield faults
    finally:
        faults.heal_checked()
