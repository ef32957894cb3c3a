"""Processes: no node outlives its cluster, and bad command-line input fails cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from simnode.discovery import node_id_for
from tests.harness import ROOT, start_cluster, stop_cluster


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The ones still running (a zombie has exited)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_dead(procs: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def node_processes_of(seed: int, names: list[str]) -> list[psutil.Process]:
    """Every live node process on this machine whose id belongs to the cluster seeded `seed`
    (only for clusters that never started: other tests may run clusters with the same seed)."""
    ids = {node_id_for(seed, n) for n in names}
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        ours = "simnode" in cmd and "--id" in cmd and cmd[cmd.index("--id") + 1] in ids
        if ours and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def wait_gone(seed: int, names: list[str], timeout: float = 15) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = node_processes_of(seed, names)
        if not left:
            return []
        time.sleep(0.1)
    return node_processes_of(seed, names)


NAMES = ["node-1", "node-2", "node-3"]


def test_sigterm_stops_every_node() -> None:
    cluster = start_cluster(nodes=3, seed=101)
    try:
        nodes = cluster.node_processes()
        assert len(nodes) == 3
        cluster.process.send_signal(signal.SIGTERM)
        assert cluster.process.wait(timeout=15) == 0
        assert wait_dead(nodes) == []
    finally:
        stop_cluster(cluster.process)


def test_nodes_outlive_idle_threads_but_not_their_coordinator() -> None:
    """PR_SET_PDEATHSIG follows the forking thread: nodes must survive trio's worker threads
    going idle (10 s), and still die with the coordinator, even when paused."""
    cluster = start_cluster(nodes=3, seed=102)
    nodes: list[psutil.Process] = []
    try:
        nodes = cluster.node_processes()
        assert len(nodes) == 3
        time.sleep(11)
        assert alive(nodes) == nodes
        status, body = cluster.get("/_tasks")
        assert status == 200 and len(body["nodes"]) == 4
        nodes[0].suspend()  # even a paused node must not survive its parent
        cluster.process.kill()
        cluster.process.wait(timeout=10)
        left = wait_dead(nodes)
        assert left == [], f"orphaned node processes: {[p.pid for p in left]}"
    finally:
        for p in alive(nodes):
            p.kill()
        stop_cluster(cluster.process)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def test_bad_node_count_is_one_clear_line() -> None:
    for value in ("0", "abc", "-2", "65"):
        result = run_cli("up", "--nodes", value, "--port", "0")
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"tasksim: --nodes must be a whole number from 1 to 64, got '{value}'\n"
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("70000", "70000 is not in the range 0<=x<=65535."),
        ("65536", "65536 is not in the range 0<=x<=65535."),
        ("-5", "-5 is not in the range 0<=x<=65535."),
        ("abc", "'abc' is not a valid integer range."),
    ],
)
def test_a_port_out_of_range_is_one_clear_line(value: str, message: str) -> None:
    """Issue 14: `--port 70000` and `--port -5` printed a Python traceback."""
    result = run_cli("up", "--nodes", "1", "--port", value)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"tasksim: Invalid value for '--port': {message}\n"


def test_port_in_use_is_one_clear_line_and_leaves_nothing() -> None:
    seed = 103
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("up", "--nodes", "2", "--port", str(port), "--seed", str(seed))
    assert result.returncode == 1
    assert result.stderr == (
        f"tasksim: cannot bind the HTTP port 127.0.0.1:{port}: Address already in use\n"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert wait_gone(seed, NAMES[:2], timeout=2) == []
