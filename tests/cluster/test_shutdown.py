"""Shutdown: SIGTERM or Ctrl-C stops everything within 2 s (plus a margin for a loaded machine),
even with work and clients in flight; SIGKILL of the coordinator makes every node exit by itself
(stdin EOF, PR_SET_PDEATHSIG — each tested on its own too). Afterwards nothing runs and nothing
listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from simnode.discovery import node_id_for
from tests.harness import ROOT, RunningCluster, start_cluster, stop_cluster

REINDEX = "indices:data/write/reindex"
STOP_WITHIN = 2.0  # the bound, on a quiet machine (the figure printed below)
# What a loaded machine (two busy cores) may add to it: a stop that waits out a timeout of its
# own (a grace period, a request's deadline) still fails; a slow scheduler does not.
LOADED_SLACK = 3.0


def family(cluster: RunningCluster) -> list[psutil.Process]:
    root = psutil.Process(cluster.process.pid)
    return [root, *root.children(recursive=True)]


def ports(cluster: RunningCluster) -> set[int]:
    return {cluster.port, *(int(n.address.rsplit(":", 1)[1]) for n in cluster.nodes)}


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def listening(on: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in on
    }


def wait_all_gone(procs: list[psutil.Process], on: set[int], limit: float) -> float:
    """Seconds until every process is gone and no port listens; fails past `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not alive(procs) and not listening(on):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(
        f"after {limit}s still running: {[p.pid for p in alive(procs)]}, "
        f"still listening: {sorted(listening(on))}"
    )


def busy(cluster: RunningCluster) -> list[socket.socket]:
    """Work and clients in flight: a long wait_for_completion, a stalled request, an idle
    keep-alive connection."""
    path = f"/_tasks?actions={REINDEX}&wait_for_completion=true&timeout=60s"
    waiter = {"X-Opaque-Id": "shutdown-waiter"}

    def wait() -> None:
        try:
            cluster.get(path, timeout=70, headers=waiter)
        except OSError:
            pass  # the server went away under it: expected

    threading.Thread(target=wait, daemon=True).start()
    stalled = socket.create_connection(("127.0.0.1", cluster.port))
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    idle = socket.create_connection(("127.0.0.1", cluster.port))
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.recv(65536)

    def waiting_everywhere() -> bool:
        """The wait's `lists[n]` child waits on every node that runs a reindex."""
        _, body = cluster.get("/_tasks?group_by=none")
        reindexing = {t["node"] for t in body["tasks"] if t["action"] == REINDEX}
        waiting = {
            t["node"]
            for t in body["tasks"]
            if t["action"] == "cluster:monitor/tasks/lists[n]" and t.get("headers") == waiter
        }
        return bool(reindexing) and waiting == reindexing

    deadline = time.monotonic() + 60
    while not waiting_everywhere():
        assert time.monotonic() < deadline, "the wait never reached every node"
        time.sleep(0.05)
    return [stalled, idle]


@pytest.mark.parametrize(
    ("how", "args"),
    [
        ("SIGTERM", ()),
        ("Ctrl-C", ()),  # SIGINT to the whole foreground process group, as a terminal sends it
        ("SIGTERM", ("--security",)),  # mutual TLS on the transport too
    ],
)
def test_stop_within_two_seconds(how: str, args: tuple[str, ...]) -> None:
    cluster = start_cluster("--demo", *args, nodes=3, seed=301, new_session=True)
    sockets: list[socket.socket] = []
    try:
        procs, on = family(cluster), ports(cluster)
        assert len(procs) == 4 and len(on) == 5
        if "--security" not in args:
            sockets = busy(cluster)
        if how == "Ctrl-C":
            os.killpg(cluster.process.pid, signal.SIGINT)
        else:
            cluster.process.send_signal(signal.SIGTERM)
        took = wait_all_gone(procs, on, STOP_WITHIN + LOADED_SLACK)
        print(f"{how} {' '.join(args)}: everything gone in {took:.3f}s")
        assert cluster.process.wait(timeout=5) == 0
        out = "\n".join(cluster.output)
        assert "Traceback" not in out
    finally:
        for s in sockets:
            s.close()
        stop_cluster(cluster.process)


def test_sigkill_of_the_coordinator_leaves_nothing() -> None:
    cluster = start_cluster("--demo", "--transport-tls", nodes=3, seed=302)
    try:
        procs, on = family(cluster), ports(cluster)
        procs[1].suspend()  # a paused node too
        cluster.process.kill()
        took = wait_all_gone(procs, on, 10)
        print(f"SIGKILL: nodes gone by themselves in {took:.3f}s")
    finally:
        for p in alive(family(cluster)):
            p.kill()
        stop_cluster(cluster.process)


def node_command(name: str, seed: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simnode",
        "--id",
        node_id_for(seed, name),
        "--name",
        name,
        "--port",
        "0",
    ]


def read_ready(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("READY "), line
    return int(line.split()[1])


def test_a_node_exits_when_its_stdin_closes() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        node_command("eof", 303), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        port = read_ready(proc)
        assert proc.stdin is not None
        proc.stdin.close()
        took = wait_all_gone([psutil.Process(proc.pid)], {port}, STOP_WITHIN + LOADED_SLACK)
        print(f"stdin EOF: node gone in {took:.3f}s")
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_node_dies_with_its_parent_without_the_pipe() -> None:
    """PR_SET_PDEATHSIG alone: the node's stdin is /dev/null, its parent is SIGKILLed."""
    parent_code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen({node_command('orphan', 304)!r}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, env=env, text=True
    )
    node: psutil.Process | None = None
    try:
        assert parent.stdout is not None
        node = psutil.Process(int(parent.stdout.readline()))
        deadline = time.monotonic() + 30
        while not [c for c in node.net_connections(kind="tcp") if c.status == "LISTEN"]:
            assert time.monotonic() < deadline, "the node never listened"
            time.sleep(0.05)
        port = next(c.laddr.port for c in node.net_connections(kind="tcp") if c.status == "LISTEN")
        parent.kill()
        parent.wait()
        took = wait_all_gone([node], {port}, STOP_WITHIN + LOADED_SLACK)
        print(f"PDEATHSIG: node gone in {took:.3f}s")
    finally:
        parent.kill()
        if node is not None and alive([node]):
            node.kill()
