"""Node hosts: where the nodes of a cluster run, behind one interface the coordinator talks to.

The coordinator (coordinator/cluster.py, coordinator/nemesis.py) never knows which engine it runs
on. It asks a `NodeHosts` to start, kill, pause, resume and restart nodes, to serve its own
coordinating node, and for the `Transport` its calls go through:

- `real` (coordinator/engine/real.py): node processes over gRPC on loopback, started and signalled
  by the supervisor;
- `sim` (coordinator/engine/sim.py): every node in this process and this trio run, on virtual time,
  with in-memory links (simnode/sim/), reproducible by seed.

- `netns` hosts (coordinator/engine/netns.py): the `real` engine's processes, each in its own
  network namespace with its own address, and packet faults (`level: net`) from nftables.

A fourth kind (Kubernetes pods) is one more implementation of the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from coordinator.cat import NodeStats
from coordinator.netfaults import PacketRule
from coordinator.supervisor import NodeSpec
from simnode.driver import Transport
from simnode.node import Clock, Node


@dataclass(frozen=True)
class HostState:
    """What the coordinator may know of a node host (for `/_sim/nodes` and the nemesis)."""

    name: str
    id: str
    host: str
    port: int
    alive: bool
    paused: bool
    restarts: int
    pid: int | None = None  # the node's process (None on the sim engine: no process of its own)
    control_host: str = ""  # where the control channel reaches it, when not at `host`


class PacketFilter(Protocol):
    """Where `level: net` faults are carried out: packets cut between the hosts."""

    async def apply(self, rules: Sequence[PacketRule]) -> None:
        """Install exactly `rules` (and remove every other packet rule)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Packets each installed fault's rules cut so far, by `netfaults.nft_tag(fault id)`."""
        ...


class NodeHosts(Protocol):
    engine: str  # "real" | "sim"
    net: PacketFilter | None  # None: the hosts share one network stack (no `level: net`)

    def host_of(self, name: str, default: str) -> str:
        """The address node `name` (or the coordinating node) listens on; `default` when the
        hosts share the machine's loopback."""
        ...

    @property
    def transport(self) -> Transport:
        """The coordinating node's transport."""
        ...

    def clock(self) -> Clock | None:
        """The coordinating node's clock (None: the machine's)."""
        ...

    def bind_local(self, host: str, port: int) -> int:
        """Reserve the coordinating node's transport address; its port."""
        ...

    async def serve_local(self, node: Node, nursery: trio.Nursery) -> None:
        """Run the coordinating node and let peers call it."""
        ...

    async def start(self, spec: NodeSpec) -> int:
        """Start a node host; its transport port. Raises SupervisorError (one clear line)."""
        ...

    async def restart(self, name: str) -> int:
        """Kill (if alive) and start again: same name, id and address, an empty registry."""
        ...

    async def kill(self, name: str) -> None:
        """Gone at once, its tasks with it; dead when this returns."""
        ...

    async def pause(self, name: str) -> None:
        """Frozen (holds its connections, answers nothing) when this returns."""
        ...

    async def resume(self, name: str) -> None: ...

    def names(self) -> list[str]: ...

    def state(self, name: str) -> HostState: ...

    def can_hear(self, name: str) -> bool:
        """Alive and not paused: the control channel can reach it."""
        ...

    def stats_reader(self) -> Callable[[int], NodeStats]:
        """For one `_cat/nodes` request: the numbers of the node whose process is `pid`."""
        ...

    async def stop(self) -> None:
        """Stop every host and the coordinating node's server (shielded by the caller)."""
        ...
