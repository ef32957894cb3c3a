"""`tasksim up --node-names`: nodes named as in OpenSearch's docs (`opensearch-node1`, ...), seen by
`_nodes`, `_cat/nodes` and `_tasks`; a count that disagrees is a one-line usage error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.harness import ROOT, running_cluster


@pytest.mark.parametrize(
    ("names", "count"),
    [("opensearch-node1,opensearch-node2", 2), ("opensearch-node{n}", 3)],
)
def test_nodes_take_the_given_names(names: str, count: int) -> None:
    expected = [f"opensearch-node{i}" for i in range(1, count + 1)]
    with running_cluster("--node-names", names, nodes=count, seed=153) as cluster:
        assert [n.name for n in cluster.nodes] == ["coordinator", *expected]
        status, body = cluster.get("/_nodes")
        assert status == 200
        assert sorted(n["name"] for n in body["nodes"].values()) == ["coordinator", *expected]
        status, rows = cluster.get("/_cat/nodes?h=name&format=json")
        assert status == 200
        assert sorted(r["name"] for r in rows) == ["coordinator", *expected]
        status, body = cluster.get(f"/_tasks?nodes={expected[-1]}")
        assert status == 200
        assert [n["name"] for n in body["nodes"].values()] == [expected[-1]]


def test_a_count_that_disagrees_is_one_usage_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coordinator", "up", "--port", "0", "--nodes", "3",
         "--node-names", "opensearch-node1,opensearch-node2"],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "tasksim: --nodes 3 and --node-names (2 names) disagree\n"


def test_the_readme_first_https_command_and_the_docs_curl() -> None:
    """README: `tasksim up --security --node-names opensearch-node1,opensearch-node2 --demo`, then
    the docs' `curl -XGET https://localhost:9200/_tasks -u admin:admin --insecure` (on this port)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    args = ("--security", "--node-names", "opensearch-node1,opensearch-node2", "--demo")
    with running_cluster(*args, nodes=2, seed=154, auth=("admin", "admin")) as cluster:
        out = subprocess.run(
            [curl, "-XGET", f"https://localhost:{cluster.port}/_tasks", "-u", "admin:admin",
             "--insecure"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        names = sorted(n["name"] for n in body["nodes"].values())
        assert set(names) <= {"coordinator", "opensearch-node1", "opensearch-node2"}
        assert "opensearch-node1" in names and "opensearch-node2" in names
