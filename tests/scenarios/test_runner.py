"""`tasksim run` as a user runs it: a wrong expectation fails with a clear report, invalid files
exit 2 before anything starts, and heal is guaranteed — after an error midway and on Ctrl-C no rule
stays active and no process stays paused or orphaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from coordinator.client import SimClient
from tests.harness import ROOT, RunningCluster, running_cluster

HUNG = (ROOT / "scenarios" / "hung-node-list-timeout.yaml").read_text()


def tasksim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def assert_clean(cluster: RunningCluster) -> None:
    """No rule active anywhere, every node running (none paused, none dead), no stray node."""
    sim = SimClient(cluster.url)
    faults = sim.faults()
    assert faults["faults"] == []
    assert {n["applied_version"] for n in faults["nodes"].values()} == {faults["version"]}
    nodes = sim.nodes()
    assert all(n["alive"] and not n["paused"] for n in nodes.values()), nodes
    assert {n["rules_version"] for n in nodes.values()} == {faults["version"]}
    processes = cluster.node_processes()
    assert len(processes) == 3
    assert all(p.status() != psutil.STATUS_STOPPED for p in processes)
    pids = {n["pid"] for n in nodes.values() if "pid" in n}
    assert {p.pid for p in processes} == pids


def test_a_wrong_expectation_fails_with_a_clear_report(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        HUNG.replace("name: hung-node-list-timeout", "name: wrong-expectation").replace(
            "node_failures: {node-2: receive_timeout_transport_exception}",
            "node_failures: {node-2: node_disconnected_exception}",
        )
    )
    reports = tmp_path / "reports"
    done = tasksim("run", str(wrong), "--report-dir", str(reports))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    problem = (
        "node_failures: expected {'node-2': 'node_disconnected_exception'}, "
        "got {'node-2': 'receive_timeout_transport_exception'}"
    )
    assert "✗ 3. request GET /_tasks?timeout=1s" in out
    assert problem in out
    assert "FAIL" in out and "0 passed, 1 failed, 0 error(s)" in out
    assert f"seed 101; run it again: tasksim run {wrong} --seed 101" in out
    report = json.loads((reports / "report.json").read_text())
    assert report["summary"] == {"total": 1, "passed": 0, "failed": 1, "vacuous": 0, "errors": 0}
    [scenario] = report["scenarios"]
    assert scenario["status"] == "failed"
    assert scenario["failures"] == [f"step 3. request GET /_tasks?timeout=1s: {problem}"]
    assert [s["status"] for s in scenario["steps"]] == ["ok", "ok", "failed", "skipped", "skipped"]
    assert scenario["heal"]["acknowledged"] is True
    assert scenario["heal"]["resumed"] == ["node-2"]  # the failed run left node-2 paused: healed
    assert not any(alive(pid) for pid in scenario["pids"])
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "wrong-expectation"
    failure = case.find("failure")
    assert failure is not None and problem in (failure.get("message") or "")
    assert f"repro: tasksim run {wrong} --seed 101" in (failure.text or "")


def test_every_run_leaves_a_history_checkers_a_timeline_and_node_logs(tmp_path: Path) -> None:
    """`sometimes` that never held makes the scenario vacuous (not passed: exit 1, JUnit skipped);
    the report directory holds the history, its timeline and a readable log per node."""
    scenario = tmp_path / "never.yaml"
    scenario.write_text(
        HUNG.replace("name: hung-node-list-timeout", "name: never-killed")
        + "checks:\n  sometimes: [{event: pause, where: {node: node-2}}, {event: kill}]\n"
    )
    reports = tmp_path / "reports"
    done = tasksim("run", str(scenario), "--report-dir", str(reports))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "VACUOUS" in out and "0 passed, 0 failed, 1 vacuous, 0 error(s)" in out
    report = json.loads((reports / "report.json").read_text())
    [result] = report["scenarios"]
    assert result["status"] == "vacuous"
    assert result["failures"] == ["sometimes kill: never happened"]
    assert [(s["event"], s["held"]) for s in result["checks"]["sometimes"]] == [
        ("pause", True),
        ("kill", False),
    ]
    history = result["checks"]["history"]
    assert history["task_lifecycle"]["status"] == "passed"
    assert history["list_completeness"]["status"] == "passed"
    assert history["no_orphans"]["status"] == "vacuous"  # nothing was cancelled
    where = reports / "never-killed"
    assert result["history"] == str(where / "history.jsonl")
    lines = (where / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["format"] == "tasksim-history" and len(lines) > 20
    page = (where / "timeline.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "never-killed" in page
    log = (where / "logs" / "node-2.log").read_text()
    assert "process pause" in log and "cluster:monitor/tasks/lists[n]" in log
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    case = suite.find("testcase")
    assert case is not None and case.find("skipped") is not None


def test_invalid_scenarios_exit_2_and_nothing_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "steps:\n"
        "  - kill: node-9\n"
        "  - wait: 2 seconds\n"
        "  - partition: {groups: [[node-1]], colour: red}\n"
    )
    started = time.monotonic()
    done = tasksim("run", str(bad), str(ROOT / "scenarios"), "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 2
    assert time.monotonic() - started < 30
    out = done.stdout
    assert f"{bad}:4:5: steps[1].wait: invalid duration '2 seconds'" in out
    assert f"{bad}:5:37: steps[2].partition.colour: unknown key 'colour'" in out
    assert "nothing was run" in out
    assert not (tmp_path / "r").exists()


def test_an_error_midway_leaves_no_rule_and_no_paused_or_orphaned_process(
    tmp_path: Path,
) -> None:
    midway = tmp_path / "midway.yaml"
    midway.write_text(
        """
name: errors-midway
cluster: {nodes: 3, fault_detection: {interval: 200ms, timeout: 1s, retries: 2}}
steps:
  - {id: split, partition: {groups: [[node-1]]}}
  - {id: slow, slow: {node: node-3, latency: 2s}}
  - pause: node-2
  - kill: node-3
  - wait_until:
      request: {path: /_sim/nodes}
      expect: {json: {nodes.node-3.in_cluster: false}}
      within: 10s
  - note: node-3 left the cluster, so this start is refused (400) and the scenario errors
    start: {node: node-3, action: "indices:data/read/search"}
  - wait: 30s
"""
    )
    with running_cluster() as cluster:
        done = tasksim(
            "run", str(midway), "--url", cluster.url, "--report-dir", str(tmp_path / "r")
        )
        assert done.returncode == 1, done.stdout
        assert "ERROR" in done.stdout
        assert "[sim_task] [node] must name exactly one node but [node-3] names 0" in done.stdout
        [scenario] = json.loads((tmp_path / "r" / "report.json").read_text())["scenarios"]
        assert scenario["status"] == "error"
        assert scenario["steps"][5]["status"] == "error"
        assert scenario["steps"][6]["status"] == "skipped"
        assert scenario["heal"]["resumed"] == ["node-2"]
        assert scenario["heal"]["restarted"] == ["node-3"]
        assert_clean(cluster)
    # The same, on a cluster of its own: when the command returns, not one process remains.
    done = tasksim("run", str(midway), "--report-dir", str(tmp_path / "own"))
    assert done.returncode == 1
    [scenario] = json.loads((tmp_path / "own" / "report.json").read_text())["scenarios"]
    assert scenario["status"] == "error" and len(scenario["pids"]) >= 4
    assert not any(alive(pid) for pid in scenario["pids"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_heals(tmp_path: Path, sig: signal.Signals) -> None:
    long = tmp_path / "long.yaml"
    long.write_text(
        """
name: interrupted
steps:
  - {id: split, partition: {groups: [[node-3]]}}
  - pause: node-2
  - wait: 60s
"""
    )
    with running_cluster() as cluster:
        sim = SimClient(cluster.url)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coordinator",
                "run",
                str(long),
                "--url",
                cluster.url,
                "--report-dir",
                str(tmp_path / "r"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 60
            while not sim.nodes()["node-2"]["paused"]:
                assert time.monotonic() < deadline and runner.poll() is None
                time.sleep(0.1)
            assert sim.faults()["faults"] != []
            assert cluster.node_process("node-2").status() == psutil.STATUS_STOPPED
            runner.send_signal(sig)
            out, _ = runner.communicate(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
        assert runner.returncode == 130, out
        assert "interrupted" in out
        assert_clean(cluster)
        [scenario] = json.loads((tmp_path / "r" / "report.json").read_text())["scenarios"]
        assert scenario["status"] == "error"
        assert scenario["heal"]["resumed"] == ["node-2"]
