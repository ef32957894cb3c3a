"""Node selectors → node ids: OpenSearch's `DiscoveryNodes.resolveNodes` (reference §2.4).

No selector means every node. Otherwise the set starts empty and each selector, in order, adds to
it (or, for `role:false`, removes from it):

- `_local` (the coordinating node), `_cluster_manager` / `_master` (the elected cluster manager);
- an exact node id;
- otherwise `_all`, or a node name / host address / host name, with `*` wildcards, adds every node
  that matches; and when the selector has a `:` it is also `name:value`, where the name is
  - `data`, `cluster_manager` / `master`, `ingest` or `coordinating_only`: the value is a boolean
    (`Booleans.parseBoolean(value, true)`: empty means true, anything but `true`/`false` is a 400)
    that adds or removes those nodes;
  - anything else: a custom (not built-in) role with that name adds or removes its nodes (the value
    parsed as a boolean only when such a role exists), and every node with an attribute whose name
    and value match (`*` wildcards) is added.

Built-in roles without a branch of their own (`remote_cluster_client`, `search`) are therefore
neither roles nor attributes to a selector: `remote_cluster_client:true` matches nothing, exactly
as in OpenSearch. Unknown selectors match nothing (no error). The answer keeps cluster-state order
(OpenSearch's is a `HashSet`'s). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.params import parse_boolean
from simnode.discovery import BUILT_IN_ROLES, ClusterState, DiscoveryNode
from simnode.regex import simple_match


def _is_data(n: DiscoveryNode) -> bool:
    return n.has_role("data")


def _is_cluster_manager(n: DiscoveryNode) -> bool:
    return n.has_role("cluster_manager") or n.has_role("master")


def _is_ingest(n: DiscoveryNode) -> bool:
    return n.has_role("ingest")


def _is_coordinating_only(n: DiscoveryNode) -> bool:
    """`getCoordinatingOnlyNodes`: neither cluster-manager, data nor ingest."""
    return not (_is_data(n) or _is_cluster_manager(n) or _is_ingest(n))


_ROLE_SELECTORS = {
    "data": _is_data,
    "master": _is_cluster_manager,
    "cluster_manager": _is_cluster_manager,
    "ingest": _is_ingest,
    "coordinating_only": _is_coordinating_only,
}


def resolve_nodes(state: ClusterState, selectors: Sequence[str], local_node_id: str) -> list[str]:
    """The node ids the selectors name, in cluster-state order."""
    nodes = state.nodes
    if not selectors:
        return [n.id for n in nodes]
    chosen: set[str] = set()
    for spec in selectors:
        if spec == "_local":
            if local_node_id:
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
            role_test = _ROLE_SELECTORS.get(name)
            if role_test is not None:
                matched = {n.id for n in nodes if role_test(n)}
                if parse_boolean(value, default=True):
                    chosen |= matched
                else:
                    chosen -= matched
                continue
            for n in nodes:
                for role in n.roles:
                    if role not in BUILT_IN_ROLES and role == name:
                        if parse_boolean(value, default=True):
                            chosen.add(n.id)
                        else:
                            chosen.discard(n.id)
            for n in nodes:
                for key, attr in n.attributes:
                    if simple_match(name, key) and simple_match(value, attr):
                        chosen.add(n.id)
    return [n.id for n in nodes if n.id in chosen]
