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
    """The part of the cluster state tasksim keeps: who is in the cluster, who leads, and the
    cluster settings of the metadata (`PUT _cluster/settings`)."""

    cluster_name: str = "tasksim"
    cluster_uuid: str = ""
    version: int = 0
    cluster_manager_node_id: str = ""
    nodes: tuple[DiscoveryNode, ...] = field(default_factory=tuple)
    # The node that holds the `.tasks` index (the coordinating node in tasksim); "" = none.
    tasks_index_node_id: str = ""
    # `Metadata.persistentSettings()` / `transientSettings()`: key → text, or a list of text.
    persistent_settings: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    transient_settings: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    # Look-ups by id and by name (a fan-out over thousands of nodes looks each one up).
    _by_id: dict[str, DiscoveryNode] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, DiscoveryNode] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, DiscoveryNode] = {}
        by_name: dict[str, DiscoveryNode] = {}
        for node in self.nodes:
            by_id.setdefault(node.id, node)
            by_name.setdefault(node.name, node)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_by_name", by_name)

    def get(self, node_id: str) -> DiscoveryNode | None:
        return self._by_id.get(node_id)

    def by_name(self, name: str) -> DiscoveryNode | None:
        return self._by_name.get(name)

    @property
    def cluster_manager(self) -> DiscoveryNode | None:
        return self.get(self.cluster_manager_node_id)
