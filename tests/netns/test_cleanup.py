"""What `tasksim up --hosts netns` leaves when its coordinator is SIGKILLed, and who removes it
(`tasksim clean`, or the next `tasksim up --hosts netns`); the one-line refusal when the machine
lacks what netns hosts need."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.engine.netns import STATE_DIR
from tests.harness import ROOT, start_cluster, stop_cluster
from tests.netns.conftest import tsim_links, tsim_namespaces

pytestmark = pytest.mark.cluster


def tasksim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too (its parent, the test, has not reaped it yet).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_sigkilled_coordinator_is_cleaned_up() -> None:
    before = {p.name for p in STATE_DIR.glob("*.json")} if STATE_DIR.is_dir() else set()
    cluster = start_cluster("--hosts", "netns", nodes=1)
    try:
        mine = [p for p in STATE_DIR.glob("*.json") if p.name not in before]
        state = [json.loads(p.read_text()) for p in mine]
        state = [s for s in state if s["owner_pid"] == cluster.process.pid]
        assert len(state) == 1
        made = set(state[0]["namespaces"])
        assert made <= tsim_namespaces() and set(state[0]["links"]) <= tsim_links()
        node_pid = cluster.sim.nodes()["node-1"]["pid"]
        cluster.process.send_signal(signal.SIGKILL)
        cluster.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not gone(node_pid):  # PR_SET_PDEATHSIG: the node dies with its coordinator
            assert time.monotonic() < deadline, "the node outlived its coordinator"
            time.sleep(0.05)
        assert made <= tsim_namespaces()  # left behind: nobody could remove them
        done = tasksim("clean")
        assert done.returncode == 0, done.stderr
        assert f"removed netns {sorted(made)[0]}" in done.stdout
        assert not made & tsim_namespaces()
        assert not set(state[0]["links"]) & tsim_links()
        assert not (STATE_DIR / f"{state[0]['id']}.json").exists()
        again = tasksim("clean")
        assert again.returncode == 0 and "nothing left behind" in again.stdout
    finally:
        stop_cluster(cluster.process)
        tasksim("clean")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_live_clusters_network_is_never_cleaned_and_removed_on_stop(sig: int) -> None:
    cluster = start_cluster("--hosts", "netns", nodes=1)
    try:
        owned = [
            json.loads(p.read_text())
            for p in STATE_DIR.glob("*.json")
            if json.loads(p.read_text())["owner_pid"] == cluster.process.pid
        ]
        assert len(owned) == 1
        done = tasksim("clean")
        assert done.returncode == 0
        assert set(owned[0]["namespaces"]) <= tsim_namespaces()
        assert cluster.request("GET", "/_tasks?timeout=5s")[0] == 200
        cluster.sim.link(None, "node-1", "blackhole", level="net")
        cluster.process.send_signal(sig)
        cluster.process.wait(timeout=30)
    finally:
        stop_cluster(cluster.process)
    # Stopped by a signal, a fault still installed: the namespaces (and their rules) are gone.
    assert not set(owned[0]["namespaces"]) & tsim_namespaces()
    assert not set(owned[0]["links"]) & tsim_links()
    assert not (STATE_DIR / f"{owned[0]['id']}.json").exists()


def test_without_the_tools_one_line_and_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # neither `ip` nor `nft` on the PATH
    before = tsim_namespaces()
    done = tasksim("up", "--hosts", "netns", "--port", "0", "--nodes", "1", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tasksim: --hosts netns needs the 'ip' command (Debian package iproute2)"
    ]
    assert tsim_namespaces() == before


def test_clean_removes_only_a_dead_owners_own_names() -> None:
    """A dead owner's state file that lists a name outside its own prefix, and a live owner's
    state file: `tasksim clean` removes the dead owner's own namespace and nothing else."""
    gone_process = subprocess.Popen(["true"])
    gone_process.wait()
    dead_pid = gone_process.pid
    dead, other, live = "d0d0d0", "e0e0e0", "f0f0f0"
    spaces = {n: f"tsim-{n}-n1" for n in (dead, other, live)}
    files = [STATE_DIR / f"{dead}.json", STATE_DIR / f"{live}.json"]

    def state(cid: str, pid: int, start: int | None, namespaces: list[str]) -> str:
        return json.dumps(
            {
                "id": cid,
                "owner_pid": pid,
                "owner_start": start,
                "subnet": "10.213.250.0/24",
                "namespaces": namespaces,
                "links": [f"tsim-{cid}-c"],
            }
        )

    from coordinator.engine.netns import _start_time

    try:
        for ns in spaces.values():
            subprocess.run(["ip", "netns", "add", ns], check=True)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        files[0].write_text(state(dead, dead_pid, 1, [spaces[dead], spaces[other]]))
        files[1].write_text(state(live, os.getpid(), _start_time(os.getpid()), [spaces[live]]))
        done = tasksim("clean")
        assert done.returncode == 0, done.stderr
        said = done.stdout.splitlines()
        assert f"removed netns {spaces[dead]}" in said and f"removed state {files[0]}" in said
        assert not [line for line in said if other in line or live in line]
        assert tsim_namespaces() >= {spaces[other], spaces[live]}
        assert files[1].exists()
    finally:
        for ns in spaces.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for path in files:
            path.unlink(missing_ok=True)
