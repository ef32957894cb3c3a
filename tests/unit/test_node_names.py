"""`tasksim up --node-names` and a cluster section's `name_pattern`: the docs' node names, as a
list or a `{n}` pattern."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.cli import expand_node_names
from coordinator.scenario.loader import LoadError
from coordinator.scenario.schema import load_cluster_section


def test_a_list_gives_the_names_and_the_count() -> None:
    assert expand_node_names("opensearch-node1,opensearch-node2", None) == [
        "opensearch-node1",
        "opensearch-node2",
    ]
    assert expand_node_names("opensearch-node1,opensearch-node2", 2) == [
        "opensearch-node1",
        "opensearch-node2",
    ]
    assert expand_node_names("solo", None) == ["solo"]


def test_a_pattern_is_numbered_from_one() -> None:
    assert expand_node_names("opensearch-node{n}", 3) == [
        "opensearch-node1",
        "opensearch-node2",
        "opensearch-node3",
    ]


@pytest.mark.parametrize(
    ("spec", "count", "message"),
    [
        ("a,b", 3, "--nodes 3 and --node-names (2 names) disagree"),
        ("a", 2, "--nodes 2 and --node-names (1 name) disagree"),
        ("a,a", None, "--node-names: 'a' is given twice"),
        ("a,,b", None, "--node-names: '' is not a node name (letters, digits, '.', '_', '-')"),
        ("a b", None, "--node-names: 'a b' is not a node name (letters, digits, '.', '_', '-')"),
        ("coordinator", None, "--node-names: 'coordinator' is the coordinating node's name"),
        ("n{n}", 65, "--nodes must be a whole number from 1 to 64 for n{n}"),
        (",".join(f"n{i}" for i in range(65)), None,
         "--node-names gives 65 names; 1 to 64 are allowed"),
    ],
)  # fmt: skip
def test_bad_names_are_one_line(spec: str, count: int | None, message: str) -> None:
    with pytest.raises(ValueError) as e:
        expand_node_names(spec, count)
    assert str(e.value) == message


def test_a_cluster_section_names_its_nodes_with_a_pattern(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("nodes: 2\nname_pattern: opensearch-node{n}\n")
    section = load_cluster_section(path)
    assert section.node_names() == ["opensearch-node1", "opensearch-node2"]
    assert [n.name for n in section.to_config(1).nodes] == ["opensearch-node1", "opensearch-node2"]
    path.write_text("nodes: 2\n")
    assert load_cluster_section(path).node_names() == ["node-1", "node-2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes: 2\nname_pattern: fixed\n",
         "name_pattern needs {n}, e.g. 'opensearch-node{n}', not 'fixed'"),
        ("nodes: [{name: a}]\nname_pattern: n{n}\n",
         "name_pattern goes with a node count; a node list names each node"),
        ("nodes: 1\nname_pattern: Node{n}\n", "name_pattern gives 'Node1', not a node name"),
    ],
)  # fmt: skip
def test_a_bad_name_pattern_is_a_located_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as e:
        load_cluster_section(path)
    assert message in str(e.value)
