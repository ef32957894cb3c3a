"""The front door as a hostile or unlucky client meets it (issue 14, defects 2 and 8): sockets are
closed on the client's FIN, the open-files limit is raised at start, and every answer — odd
paths, control characters, oversized request lines, HTTP/2 prior knowledge — is OpenSearch's
JSON."""

from __future__ import annotations

import http.client
import json
import os
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
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
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


# -- defect 8: every answer is OpenSearch's JSON -----------------------------------------------------


def answers(port: int, data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `data` on one connection, read until the server closes it, and parse every HTTP/1.1
    answer in what came back (each has a Content-Length)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        while chunk := s.recv(65536):
            received += chunk
    out = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines)}
        length = int(headers["content-length"])
        out.append((int(status_line.split()[1]), headers, rest[:length]))
        received = rest[length:]
    return out


JSON = "application/json; charset=UTF-8"


@pytest.mark.parametrize("escape", ["%0A", "%0D", "%09", "%0D%0A"])
@pytest.mark.parametrize("where", ["end", "middle"])
def test_control_characters_in_the_path_get_opensearch_json(
    cluster: RunningCluster, escape: str, where: str
) -> None:
    path = f"/_tasks{escape}" if where == "end" else f"/_ta{escape}sks"
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    status, headers, body = raw(cluster.port, request)
    assert headers["content-type"] == JSON, (status, body)
    answer = json.loads(body)
    assert "nodes" not in answer  # never served as `GET /_tasks`
    decoded = path.replace("%0A", "\n").replace("%0D", "\r").replace("%09", "\t")
    assert status == 404 and answer["error"]["type"] == "index_not_found_exception"
    assert answer["error"]["index"] == decoded[1:]  # GET /{index}, the name as sent


@pytest.mark.parametrize("size", [70_000, 200_000, 1_000_000])
def test_a_request_line_past_the_servers_buffer_is_the_json_400(
    cluster: RunningCluster, size: int
) -> None:
    line = b"GET /_tasks?actions=" + b"x" * size + b" HTTP/1.1\r\n"
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=30) as s:
        # in pieces, as a slow client sends it: the server's parser gives up before the end
        for i in range(0, len(line), 16_384):
            try:
                s.sendall(line[i : i + 16_384])
            except (BrokenPipeError, ConnectionResetError):
                break  # answered and closed already: read the answer
        resp = http.client.HTTPResponse(s)
        resp.begin()
        status, headers, body = resp.status, dict(resp.getheaders()), resp.read()
    assert (status, headers["content-type"]) == (400, JSON)
    assert json.loads(body) == envelope(
        "too_long_http_line_exception", "An HTTP line is larger than 4096 bytes.", 400
    )


def test_headers_past_the_servers_buffer_are_the_json_400(cluster: RunningCluster) -> None:
    head = b"GET /_tasks HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 100 + b"\r\n" * 1
    status, headers, body = raw(cluster.port, head * 1 + b"X-More: m\r\n" * 20_000 + b"\r\n")
    assert (status, headers["content-type"]) == (400, JSON)
    assert json.loads(body) == envelope(
        "too_long_http_header_exception", "HTTP header is larger than 8192 bytes.", 400
    )


def test_a_malformed_request_is_the_json_400(cluster: RunningCluster) -> None:
    for request in (
        b"hello there\r\n\r\n",
        b"GET /_tasks HTTP/1.1\r\n\r\n",  # no Host
        b"POST /_tasks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /_sim/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    ):
        status, headers, body = raw(cluster.port, request)
        assert (status, headers["content-type"]) == (400, JSON), request
        assert json.loads(body)["error"]["type"] == "illegal_argument_exception"


def test_http2_prior_knowledge_is_refused_in_http11(cluster: RunningCluster) -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    # OpenSearch's HTTP/1.1 decoder: `PRI *` is a request with an unknown method, `SM` a bad one.
    [(s1, h1, b1), (s2, h2, b2)] = answers(cluster.port, preface)
    assert (s1, h1["content-type"]) == (405, JSON)
    body = json.loads(b1)
    assert body["status"] == 405 and body["error"].startswith("Unexpected HTTP method")
    assert (s2, h2["content-type"]) == (400, JSON)
    assert json.loads(b2)["error"]["type"] == "illegal_argument_exception"


def test_a_websocket_upgrade_is_served_as_the_plain_get(cluster: RunningCluster) -> None:
    status, headers, body = raw(
        cluster.port,
        b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    assert (status, headers["content-type"]) == (200, JSON)
    assert json.loads(body)["cluster_name"] == "tasksim"
