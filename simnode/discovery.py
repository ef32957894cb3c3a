"""Node identity and cluster membership as OpenSearch has them (`DiscoveryNode`, `DiscoveryNodes`).

A node id is a 22-character URL-safe base64 string (16 random bytes, no padding), like OpenSearch's
`UUIDs.randomBase64UUID`; tasksim derives it from the cluster seed and the node name so a restarted
node keeps its id and a seeded run is reproducible. Roles are kept sorted, as `DiscoveryNode` keeps
them. Pure; no I/O.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field

DEFAULT_ROLES: tuple[str, ...] = ("cluster_manager", "data", "ingest", "remote_cluster_client")
BUILT_IN_ROLES = frozenset({"cluster_manager", "data", "ingest", "remote_cluster_client", "search"})
DEFAULT_ATTRIBUTES: tuple[tuple[str, str], ...] = (("shard_indexing_pressure_enabled", "true"),)


def node_id_for(seed: int | str, name: str) -> str:
    """A stable 22-character URL-safe base64 node id for `name` in a cluster seeded with `seed`."""
    rng = random.Random(f"tasksim-node-id:{seed}:{name}")
    raw = rng.getrandbits(128).to_bytes(16, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cluster_uuid_for(seed: int | str) -> str:
    return node_id_for(seed, "\x00cluster-uuid")


@dataclass(frozen=True, slots=True)
class DiscoveryNode:
    id: str
    name: str
    host: str = "127.0.0.1"
    ip: str = "127.0.0.1"
    port: int = 0
    roles: tuple[str, ...] = DEFAULT_ROLES
    attributes: tuple[tuple[str, str], ...] = DEFAULT_ATTRIBUTES
    ephemeral_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(sorted(set(self.roles))))

    @property
    def transport_address(self) -> str:
        return f"{self.ip}:{self.port}"

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The part of the cluster state the Tasks API reads: who is in the cluster, who leads."""

    cluster_name: str = "tasksim"
    cluster_uuid: str = ""
    version: int = 0
    cluster_manager_node_id: str = ""
    nodes: tuple[DiscoveryNode, ...] = field(default_factory=tuple)
    # The node that holds the `.tasks` index (the coordinating node in tasksim); "" = none.
    tasks_index_node_id: str = ""
    # Lookups by id and by name (the first node of each), made once: a state is immutable, and a
    # simulated cluster of 10 000 nodes looks nodes up in it constantly.
    _by_id: dict[str, DiscoveryNode] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_name: dict[str, DiscoveryNode] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The last `departed_since` answer (the previous state and the ids it had that this one has
    # not): every node of a publication asks the same question of the same two states.
    _departed: tuple[ClusterState, tuple[str, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for node in self.nodes:
            self._by_id.setdefault(node.id, node)
            self._by_name.setdefault(node.name, node)

    def get(self, node_id: str) -> DiscoveryNode | None:
        return self._by_id.get(node_id)

    def by_name(self, name: str) -> DiscoveryNode | None:
        return self._by_name.get(name)

    def has(self, node_id: str) -> bool:
        return node_id in self._by_id

    def departed_since(self, old: ClusterState) -> tuple[str, ...]:
        """The ids of the nodes `old` had and this state has not, in `old`'s order."""
        last = self._departed
        if last is not None and last[0] is old:
            return last[1]
        gone = tuple(n.id for n in old.nodes if n.id not in self._by_id)
        object.__setattr__(self, "_departed", (old, gone))
        return gone

    @property
    def cluster_manager(self) -> DiscoveryNode | None:
        return self.get(self.cluster_manager_node_id)
