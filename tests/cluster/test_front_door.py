"""The front door as a hostile or unlucky client meets it (issue 14, defects 2 and 8): sockets are
closed on the client's FIN, the open-files limit is raised at start, and every answer — odd
paths, control characters, oversized request lines, HTTP/2 prior knowledge — is OpenSearch's
JSON."""

from __future__ import annotations

import http.client
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from coordinator.testing.cluster import PACKAGE_ROOT, READY, stop_cluster
from tests.harness import RunningCluster, running_cluster

# The idle timeout is far longer than any bound below: a socket closed within the bound was closed
# because of the client's FIN, not because the connection idled out.
IDLE_TIMEOUT = "300s"
BOUND = 20.0  # seconds; a loaded machine closes a socket in milliseconds


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster("-E", f"tasksim.http.idle_timeout={IDLE_TIMEOUT}", nodes=1) as c:
        yield c


def wait_until(condition: Callable[[], bool], timeout: float = BOUND) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def close_wait(cluster: RunningCluster) -> int:
    """Server sockets of the REST port the client closed and the server did not."""
    return sum(
        1
        for c in psutil.Process(cluster.process.pid).net_connections("tcp")
        if c.status == psutil.CONN_CLOSE_WAIT and c.laddr and c.laddr.port == cluster.port
    )


def one_request(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(request)
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def raw(port: int, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        return one_request(s, data)


def envelope(type_: str, reason: str, status: int) -> dict[str, Any]:
    return {
        "error": {
            "root_cause": [{"type": type_, "reason": reason}],
            "type": type_,
            "reason": reason,
        },
        "status": status,
    }


# -- defect 2: descriptors ---------------------------------------------------------------------------


def test_a_client_that_hangs_up_without_connection_close_leaves_no_close_wait(
    cluster: RunningCluster,
) -> None:
    socks: list[socket.socket] = []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", cluster.port), timeout=30)
            socks.append(s)
            # keep-alive, as plain curl sends it: no `Connection: close`
            status, _, _ = one_request(s, b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200
        half = socks[::2]
        for s in half:
            s.shutdown(socket.SHUT_WR)  # half-close: our FIN, still reading
        for s in socks[1::2]:
            s.close()
        assert wait_until(lambda: close_wait(cluster) == 0), (
            f"{close_wait(cluster)} server sockets still in CLOSE_WAIT after {BOUND}s"
        )
        for s in half:  # the server closed its side too: EOF
            assert s.recv(1) == b""
    finally:
        for s in socks:
            s.close()
    assert cluster.get("/_cluster/health")[0] == 200


def test_the_open_files_soft_limit_is_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    if low == hard:
        pytest.skip("the hard limit is too low to lower the soft one")
    # Start `tasksim up` with a low soft limit (an exec'd wrapper sets it; no fork without exec).
    launcher = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({low}, {hard})); "
        "os.execv(sys.executable, [sys.executable, '-m', 'coordinator', *sys.argv[1:]])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, "up", "--port", "0", "--nodes", "1", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PACKAGE_ROOT,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        limit_line = None
        while limit_line is None and (left := deadline - time.monotonic()) > 0:
            line = lines.get(timeout=left)
            assert line is not None, "tasksim exited:\n" + "\n".join(seen)
            seen.append(line)
            if "open files:" in line:
                limit_line = line
        assert limit_line is not None and any(READY.search(s) for s in seen), seen
        shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        assert limit_line.strip().startswith(f"open files: limit {shown}"), limit_line
        assert f"raised from {low}" in limit_line
        coordinator = psutil.Process(proc.pid)
        assert coordinator.rlimit(psutil.RLIMIT_NOFILE) == (hard, hard)
        nodes = coordinator.children(recursive=True)
        assert nodes and all(n.rlimit(psutil.RLIMIT_NOFILE)[0] == hard for n in nodes)
    finally:
        stop_cluster(proc)
