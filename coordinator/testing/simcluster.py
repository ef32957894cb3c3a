"""A simulated cluster with the harness API of a real one: the testing kit on the `sim` engine.

`simulated_cluster(config, seed=S)` starts a `SimWorld` (coordinator/engine/sim.py: every node, the
coordinator and the REST front in one trio run on virtual time) and yields a `SimCluster`, which a
test holds exactly as it holds a `RunningCluster` (cluster.py): `url`, `nodes`, `names`,
`name_of`, `request/get/post` returning `(status, body, headers)`, and `sim`, the fault client
(`Faults`), whose requests go into the world and whose waits (`wait_for`, background requests) run
on the world's virtual clock. One seed and the calls made decide the whole run: the same example
gives the same answers, byte for byte, on any machine and under any load.

`sim_config(nodes, fault_detection=..., args=...)` turns the `tasksim` marker's options into the
`ClusterConfig` that `tasksim up` would build from them. `SimClusters` is what the `tasksim_sim`
fixture gives a hypothesis property: a fresh world per example, its seed drawn by hypothesis
(`with tasksim_sim.example(data) as cluster:`), so that a failing example shrinks and replays.

It never starts a process, a thread of its own beyond the world's, or a socket.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from coordinator.client import Response
from coordinator.cluster import ClusterConfig, FaultDetection, NodeConfig
from coordinator.engine.sim import SimPending, SimWorld
from coordinator.testing.cluster import ClusterNodes, Node
from coordinator.testing.faults import Faults, example_name, final_example, history_path, note_saved
from coordinator.testing.model import ClusterShape
from simnode.history import write

ENGINE = "sim"
# `tasksim up` arguments a simulated cluster understands (the rest need a real process).
SIM_ARGS = ("--no-fault-detection", "--demo")


def seeds() -> st.SearchStrategy[int]:
    """A world's seed: hypothesis draws it, so that it shrinks (towards 0) and is printed."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def sim_config(
    nodes: int | ClusterShape = 3,
    *,
    fault_detection: bool | dict[str, Any] = True,
    args: Sequence[str] = (),
) -> ClusterConfig:
    """The cluster `tasksim up --nodes N [--no-fault-detection]` (or `--config` with a cluster
    section of `nodes` and `fault_detection`) would run; its seed is the world's."""
    unknown = [a for a in args if a not in SIM_ARGS]
    if unknown:
        raise ValueError(
            f"tasksim arguments {unknown} are not supported on the sim engine "
            f"(supported: {', '.join(SIM_ARGS)})"
        )
    if isinstance(nodes, ClusterShape):
        configs = tuple(NodeConfig(name, roles=tuple(roles)) for name, roles in nodes.nodes)
    else:
        configs = tuple(NodeConfig(f"node-{i}") for i in range(1, nodes + 1))
    detection = FaultDetection()
    if fault_detection is False or "--no-fault-detection" in args:
        detection = FaultDetection(enabled=False)
    elif isinstance(fault_detection, dict):
        from coordinator.scenario.schema import FaultDetectionSpec

        spec = FaultDetectionSpec.model_validate(fault_detection)
        detection = FaultDetection(
            enabled=True, interval=spec.interval, timeout=spec.timeout, retries=spec.retries
        )
    return ClusterConfig(nodes=configs, seed=0, fault_detection=detection)


@dataclass
class SimCluster(ClusterNodes):
    """A simulated cluster, held as a `RunningCluster` is."""

    world: SimWorld
    nodes: list[Node] = field(default_factory=list)
    engine: str = ENGINE

    def __repr__(self) -> str:  # no memory address: a failing example prints the same every run
        return f"SimCluster(seed={self.world.seed}, nodes={[n.name for n in self.nodes]})"

    @property
    def seed(self) -> int:
        return int(self.world.seed)

    @property
    def url(self) -> str:
        assert self.world.client is not None
        return self.world.client.url

    @property
    def clock(self) -> SimWorld:
        """The world's virtual clock (`now()`, `sleep()`)."""
        return self.world

    @property
    def sim(self) -> Faults:
        """Fault injection, ground truth and `POST /_sim/tasks`, into the world."""
        return Faults(self.url, send=self.world.request, clock=self.world, background=self._later)

    def _later(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> SimPending[Response]:
        client = self.world.client
        assert client is not None
        return self.world.spawn(
            lambda: client.request(method, path, body, headers=headers, timeout=timeout)
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, parsed JSON or text, headers) — errors are answers too, never exceptions."""
        resp = self.world.request(method, path, body, headers=headers, timeout=timeout)
        return resp.status, resp.body, resp.headers


def start_simulated(
    config: ClusterConfig, *, seed: int, demo: bool = False, record: bool = False
) -> SimCluster:
    """Start a world for `config` under `seed` (recording its history with `record`); the caller
    closes `cluster.world`."""
    world = SimWorld(replace(config, seed=seed), seed=seed, demo=demo, record=record).start()
    try:
        state = world.cluster.state
        nodes = [Node(n.name, n.id, n.transport_address, list(n.roles)) for n in state.nodes]
    except BaseException:
        world.close()
        raise
    return SimCluster(world, nodes)


@contextlib.contextmanager
def simulated_cluster(
    config: ClusterConfig | None = None, *, seed: int = 7, demo: bool = False, record: bool = False
) -> Iterator[SimCluster]:
    """A simulated cluster of `config` (default: three nodes) under `seed`, stopped on exit.

    With `record`, a failure inside the block leaves the world's history in
    `$TASKSIM_HISTORY_DIR` (default `tasksim-reports/histories`), named in the failure's notes."""
    cluster = start_simulated(config or sim_config(), seed=seed, demo=demo, record=record)
    try:
        yield cluster
    except BaseException as e:
        if cluster.world.recorder is not None:
            note_saved(e, lambda: save_world_history(cluster))
        raise
    finally:
        cluster.world.close()


def save_world_history(cluster: SimCluster) -> Path:
    """The history a world recorded so far, in a new file of `$TASKSIM_HISTORY_DIR`."""
    from coordinator.history.recording import run_header

    world = cluster.world
    assert world.recorder is not None
    path = history_path(example_name())
    write(path, run_header(world.config, engine="sim"), list(world.recorder.events))
    return path.resolve()


class SimClusters:
    """Fresh simulated clusters of one configuration: one per hypothesis example."""

    def __init__(self, config: ClusterConfig, *, demo: bool = False) -> None:
        self.config = config
        self.demo = demo

    def __repr__(self) -> str:  # what hypothesis prints of the fixture in a falsifying example
        detection = "on" if self.config.fault_detection.enabled else "off"
        names = ",".join(n.name for n in self.config.nodes)
        return f"SimClusters(nodes=[{names}], fault_detection={detection})"

    @contextlib.contextmanager
    def start(self, seed: int, *, record: bool = False) -> Iterator[SimCluster]:
        with simulated_cluster(self.config, seed=seed, demo=self.demo, record=record) as cluster:
            yield cluster

    @contextlib.contextmanager
    def example(self, data: st.DataObject) -> Iterator[SimCluster]:
        """A fresh world for this example, its seed drawn from `data` (label `seed`).

        Only hypothesis's final replay of a failing example records its history (the seed and the
        calls replay the run exactly, so nothing is lost by not recording the others): a failure
        then names the saved file in its notes, as on the real engine."""
        seed = data.draw(seeds(), label="seed")
        with self.start(seed, record=final_example()) as cluster:
            yield cluster
