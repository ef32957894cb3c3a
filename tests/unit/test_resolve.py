"""Node selectors, as `DiscoveryNodes.resolveNodes` applies them (reference §2.4)."""

from __future__ import annotations

import pytest

from coordinator.resolve import resolve_nodes
from simnode.discovery import DEFAULT_ROLES, ClusterState, DiscoveryNode
from simnode.errors import IllegalArgumentError

COORD = DiscoveryNode("cid", "coordinator", host="localhost", ip="127.0.0.1", port=9300, roles=())
N1 = DiscoveryNode("id1", "node-1", host="host-a", ip="10.0.0.1", port=9301)
N2 = DiscoveryNode(
    "id2",
    "node-2",
    host="host-b",
    ip="10.0.0.2",
    port=9302,
    roles=("data", "ml"),
    attributes=(("zone", "east"), ("shard_indexing_pressure_enabled", "true")),
)
N3 = DiscoveryNode(
    "id3",
    "worker-3",
    host="host-c",
    ip="10.0.1.3",
    port=9303,
    roles=("remote_cluster_client",),
    attributes=(("zone", "west"),),
)
STATE = ClusterState(cluster_manager_node_id="id1", nodes=(COORD, N1, N2, N3))
ALL = ["cid", "id1", "id2", "id3"]


def resolve(*selectors: str) -> list[str]:
    return resolve_nodes(STATE, selectors, "cid")


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        ((), ALL),
        (("_all",), ALL),
        (("_local",), ["cid"]),
        (("_cluster_manager",), ["id1"]),
        (("_master",), ["id1"]),
        (("id2",), ["id2"]),
        (("node-1",), ["id1"]),
        (("node-*",), ["id1", "id2"]),
        (("*",), ALL),
        (("*-3",), ["id3"]),
        (("10.0.0.*",), ["id1", "id2"]),
        (("10.0.1.3",), ["id3"]),
        (("host-b",), ["id2"]),
        (("localhost",), ["cid"]),
        (("node-1", "id3"), ["id1", "id3"]),
        (("nope",), []),
        (("NODE-1",), []),  # case-sensitive
        ((" node-1",), []),  # a comma list is not trimmed
        (("",), []),
        (("data:true",), ["id1", "id2"]),
        (("data:",), ["id1", "id2"]),  # an empty value is true
        (("data:false",), []),  # removing from nothing
        (("_all", "data:false"), ["cid", "id3"]),
        (("_all", "cluster_manager:false"), ["cid", "id2", "id3"]),
        (("master:true",), ["id1"]),
        (("ingest:true",), ["id1"]),
        (("coordinating_only:true",), ["cid", "id3"]),  # neither data, manager nor ingest
        (("_all", "coordinating_only:false"), ["id1", "id2"]),
        (("ml:true",), ["id2"]),  # a custom role
        (("_all", "ml:false"), ["cid", "id1", "id3"]),
        (("remote_cluster_client:true",), []),  # a built-in role without its own branch
        (("zone:east",), ["id2"]),
        (("zone:*",), ["id2", "id3"]),
        (("z*:w*",), ["id3"]),
        (("shard_indexing_pressure_enabled:true",), ["cid", "id1", "id2"]),
        (("data:false", "node-1"), ["id1"]),  # order matters: remove first, then add
        (("node-1", "data:false"), []),
    ],
)
def test_selectors(selectors: tuple[str, ...], expected: list[str]) -> None:
    assert resolve(*selectors) == expected


@pytest.mark.parametrize("selector", ["data:maybe", "cluster_manager:yes", "ml:1", "ingest:TRUE"])
def test_bad_role_values_are_400(selector: str) -> None:
    with pytest.raises(IllegalArgumentError) as e:
        resolve(selector)
    value = selector.split(":", 1)[1]
    assert (
        e.value.reason == f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    )


def test_values_of_roles_that_do_not_exist_are_not_parsed() -> None:
    assert resolve("remote_cluster_client:maybe") == []
    assert resolve("unknown_role:maybe") == []


def test_no_cluster_manager() -> None:
    state = ClusterState(nodes=(COORD,))
    assert resolve_nodes(state, ("_cluster_manager",), "cid") == []


def test_default_roles_are_cluster_manager_data_ingest() -> None:
    assert set(DEFAULT_ROLES) >= {"cluster_manager", "data", "ingest"}
