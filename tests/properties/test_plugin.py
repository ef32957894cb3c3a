"""The testing kit as a user meets it: the README's examples, run by pytest in a directory of their
own, with the `tasksim` plugin (entry point `pytest11`) giving them `tasksim_cluster`,
`tasksim_faults` and `tasksim_sim`, and the strategies imported from `coordinator.testing` — on the
real engine and on the sim engine (which needs no process, so its module runs 200 examples)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.harness import ROOT

# Kept in step with the README's "Testing your client: the pytest plugin" example.
USER_TEST = """
import pytest
from hypothesis import given
from coordinator.testing import cluster_settings, fault_plans

pytestmark = pytest.mark.tasksim(nodes=3, fault_detection=False)


def test_every_node_answers(tasksim_cluster):
    status, body = tasksim_cluster.get("/_tasks")
    assert status == 200 and len(body["nodes"]) == 4  # 3 nodes and the coordinating node


@cluster_settings(max_examples=3)
@given(plan=fault_plans(["node-1", "node-2", "node-3"]))
def test_unreachable_nodes_are_node_failures(tasksim_cluster, plan):
    sim = tasksim_cluster.sim
    with sim.healing():  # examples share the cluster: heal after each one
        plan.apply(sim, timeout=0.5)
        status, body = tasksim_cluster.get("/_tasks?timeout=500ms")
    failed = {f["node_id"] for f in body.get("node_failures", [])}
    assert failed == {tasksim_cluster.node(n).id for n in plan.unreachable}


def test_a_partition_heals_after_the_test(tasksim_faults, tasksim_cluster):
    tasksim_faults.partition(["node-3"])
    status, body = tasksim_cluster.get("/_tasks?timeout=300ms")
    assert [f["node_id"] for f in body["node_failures"]] == [tasksim_cluster.node("node-3").id]
"""


# Kept in step with the README's "On the sim engine" example.
USER_TEST_SIM = """
import pytest
from hypothesis import given, strategies as st
from coordinator.testing import cluster_settings, fault_plans

pytestmark = pytest.mark.tasksim(nodes=3, fault_detection=False, engine="sim")


def test_every_node_answers(tasksim_cluster):
    status, body = tasksim_cluster.get("/_tasks")
    assert status == 200 and len(body["nodes"]) == 4


@cluster_settings(max_examples=200)
@given(data=st.data())
def test_unreachable_nodes_are_node_failures(tasksim_sim, data):
    plan = data.draw(fault_plans(["node-1", "node-2", "node-3"]))
    with tasksim_sim.example(data) as cluster:  # a fresh world, its seed drawn by hypothesis
        plan.apply(cluster.sim, timeout=0.5)
        status, body = cluster.get("/_tasks?timeout=500ms")
    failed = {f["node_id"] for f in body.get("node_failures", [])}
    assert failed == {cluster.node(n).id for n in plan.unreachable}
"""

README = (ROOT / "README.md").read_text()


def run_user_module(
    tmp_path: Path, source: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(source)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_user.py"]
    if not entry_point_installed():  # an editable install older than the entry point
        args[3:3] = ["-p", "coordinator.testing.plugin"]
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )


def entry_point_installed() -> bool:
    return any(ep.name == "tasksim" for ep in importlib.metadata.entry_points(group="pytest11"))


def test_the_entry_point_names_the_plugin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["pytest11"]["tasksim"]
    plugin = importlib.import_module(target)
    assert callable(plugin.tasksim_cluster) and callable(plugin.tasksim_faults)


def test_the_user_modules_are_the_readmes() -> None:
    assert USER_TEST.strip() in README
    assert USER_TEST_SIM.strip() in README


@pytest.mark.cluster
def test_a_user_test_module_gets_a_cluster_and_faults(tmp_path: Path) -> None:
    done = run_user_module(tmp_path, USER_TEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout, done.stdout


def test_a_user_test_module_gets_a_simulated_cluster_and_fresh_worlds(tmp_path: Path) -> None:
    done = run_user_module(tmp_path, USER_TEST_SIM, "--hypothesis-show-statistics")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout
    assert "200 passing" in done.stdout, done.stdout


def test_engines_runs_each_test_once_per_engine(tmp_path: Path) -> None:
    """`engines=[...]` parametrises the cluster (collected only: nothing starts)."""
    source = USER_TEST.replace(
        "fault_detection=False)", 'fault_detection=False, engines=["real", "sim"])'
    )
    assert source != USER_TEST
    done = run_user_module(tmp_path, source, "--collect-only")
    assert done.returncode == 0, done.stdout + done.stderr
    ids = sorted(line.strip() for line in done.stdout.splitlines() if "::" in line)
    assert ids == sorted(
        f"test_user.py::{name}[{engine}]"
        for engine in ("real", "sim")
        for name in (
            "test_every_node_answers",
            "test_unreachable_nodes_are_node_failures",
            "test_a_partition_heals_after_the_test",
        )
    ), done.stdout


def test_an_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    source = USER_TEST.replace("fault_detection=False)", 'fault_detection=False, engine="vm")')
    done = run_user_module(tmp_path, source)
    assert done.returncode != 0
    assert "unknown tasksim engine 'vm'" in done.stdout + done.stderr, done.stdout + done.stderr


# A property that fails on purpose: node-2 paused must be a node failure, but the test says not.
FAILING_TEST = """
import pytest
from hypothesis import given, strategies as st
from coordinator.testing import cluster_settings

pytestmark = pytest.mark.tasksim(nodes=2, fault_detection=False)


@cluster_settings(max_examples=2)
@given(timeout=st.sampled_from(["300ms", "400ms"]))
def test_wrong_on_purpose(tasksim_cluster, timeout):
    sim = tasksim_cluster.sim
    with sim.healing():
        sim.pause("node-2")
        status, body = tasksim_cluster.get(f"/_tasks?timeout={timeout}")
        assert body.get("node_failures", []) == []
"""


@pytest.mark.cluster
def test_a_failing_example_leaves_its_history(tmp_path: Path) -> None:
    histories = tmp_path / "histories"
    done = run_user_module(tmp_path, FAILING_TEST, env={"TASKSIM_HISTORY_DIR": str(histories)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "tasksim: the history of this example:" in done.stdout, done.stdout
    [saved] = list(histories.glob("test_wrong_on_purpose-*.jsonl"))  # the final replay only
    assert str(saved) in done.stdout
    from simnode.history import read

    history = read(saved)
    kinds = [e["type"] for e in history.events]
    # the example's own events: the pause, the list that reported node-2, the heal's resume
    assert "pause" in kinds and "resume" in kinds
    lists = [e for e in history.events if e["type"] == "ok" and "/_tasks?timeout" in e["path"]]
    assert lists and lists[-1]["summary"]["node_failures"]


# The same mistake on the sim engine: each example a fresh world, its seed drawn by hypothesis.
FAILING_SIM_TEST = """
import pytest
from hypothesis import given, strategies as st
from coordinator.testing import cluster_settings

pytestmark = pytest.mark.tasksim(nodes=2, fault_detection=False, engine="sim")


@cluster_settings(max_examples=20)
@given(data=st.data())
def test_wrong_on_purpose_sim(tasksim_sim, data):
    timeout = data.draw(st.sampled_from(["300ms", "400ms"]), label="timeout")
    with tasksim_sim.example(data) as cluster:
        cluster.sim.pause("node-2")
        status, body = cluster.get(f"/_tasks?timeout={timeout}")
        assert body.get("node_failures", []) == []
"""


def test_a_failing_sim_example_leaves_the_history_of_its_final_replay(tmp_path: Path) -> None:
    histories = tmp_path / "histories"
    done = run_user_module(tmp_path, FAILING_SIM_TEST, env={"TASKSIM_HISTORY_DIR": str(histories)})
    assert done.returncode == 1, done.stdout + done.stderr
    # One file: the final replay records, the examples hypothesis generated and shrank did not.
    [saved] = list(histories.glob("test_wrong_on_purpose_sim-*.jsonl"))
    assert f"tasksim: the history of this example: {saved}" in done.stdout, done.stdout
    from simnode.history import read

    history = read(saved)
    assert history.head["engine"] == "sim"
    assert f"Draw 2 (seed): {history.head['seed']}" in done.stdout  # the falsifying seed
    assert {"pause", "record_start"} <= {e["type"] for e in history.events}
    lists = [e for e in history.events if e["type"] == "ok" and "/_tasks?timeout" in e["path"]]
    assert lists and lists[-1]["summary"]["node_failures"]
