"""Node selectors → node ids: OpenSearch's `DiscoveryNodes.resolveNodes` (reference §2.4).

Empty selection means every node. Otherwise each selector, in order, adds to (or, for a
`role:false`, removes from) the set: `_local`, `_cluster_manager`/`_master`, an exact node id, `_all`,
names / host addresses / host names with `*` wildcards, `role:true|false` for built-in and custom
roles, and `attr:value` for node attributes. Unknown selectors match nothing. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.params import parse_boolean
from simnode.discovery import BUILT_IN_ROLES, ClusterState, DiscoveryNode
from simnode.regex import simple_match

# Role selectors, with OpenSearch's legacy spelling `master` for `cluster_manager`.
_ROLE_ALIASES = {"master": "cluster_manager", "cluster_manager": "cluster_manager"}


def _role_nodes(nodes: Sequence[DiscoveryNode], role: str) -> list[str]:
    if role == "coordinating_only":
        return [n.id for n in nodes if not n.roles]
    return [n.id for n in nodes if n.has_role(role)]


def resolve_nodes(state: ClusterState, selectors: Sequence[str], local_node_id: str) -> list[str]:
    """The node ids the selectors name, in cluster-state order."""
    nodes = state.nodes
    if not selectors:
        return [n.id for n in nodes]
    chosen: set[str] = set()
    known_roles = BUILT_IN_ROLES | {r for n in nodes for r in n.roles}
    for spec in selectors:
        if spec == "_local":
            if state.get(local_node_id) is not None:
                chosen.add(local_node_id)
        elif spec in ("_master", "_cluster_manager"):
            if state.cluster_manager_node_id:
                chosen.add(state.cluster_manager_node_id)
        elif state.get(spec) is not None:
            chosen.add(spec)
        else:
            for n in nodes:
                if (
                    spec == "_all"
                    or simple_match(spec, n.name)
                    or simple_match(spec, n.ip)
                    or simple_match(spec, n.host)
                ):
                    chosen.add(n.id)
            name, sep, value = spec.partition(":")
            if not sep:
                continue
            role = _ROLE_ALIASES.get(name, name)
            if role == "coordinating_only" or role in known_roles:
                matched = _role_nodes(nodes, role)
                if parse_boolean(value, default=True):
                    chosen.update(matched)
                else:
                    chosen.difference_update(matched)
            else:
                for n in nodes:
                    for key, attr in n.attributes:
                        if simple_match(name, key) and simple_match(value, attr):
                            chosen.add(n.id)
    return [n.id for n in nodes if n.id in chosen]
