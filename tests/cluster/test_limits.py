"""Limits with clear answers: request line, headers, task headers, body, concurrent requests, live
tasks per node, and slow clients that must not hold up the others."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import RunningCluster, running_cluster

MAX_LIVE = 12


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(
        "-E",
        "http.max_content_length=1kb",
        "-E",
        "tasksim.http.max_concurrent_requests=4",
        "-E",
        "tasksim.http.body_timeout=2s",
        "-E",
        "tasksim.http.idle_timeout=3s",
        "-E",
        f"tasksim.node.max_live_tasks={MAX_LIVE}",
        nodes=2,
    ) as c:
        yield c


def raw(port: int, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send exactly `data`; parse one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def envelope(type_: str, reason: str, status: int) -> dict[str, Any]:
    return {
        "error": {
            "root_cause": [{"type": type_, "reason": reason}],
            "type": type_,
            "reason": reason,
        },
        "status": status,
    }


def test_request_line_limit(cluster: RunningCluster) -> None:
    def line_of(length: int) -> bytes:
        head = "GET /_tasks?actions="
        tail = " HTTP/1.1"
        return (head + "x" * (length - len(head) - len(tail)) + tail).encode()

    ok = line_of(4095)
    assert len(ok) == 4095
    status, _, body = raw(cluster.port, ok + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and "nodes" in json.loads(body)
    status, headers, body = raw(cluster.port, line_of(4096) + b"\r\nHost: x\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(body) == envelope(
        "too_long_http_line_exception", "An HTTP line is larger than 4096 bytes.", 400
    )


def test_header_size_limit(cluster: RunningCluster) -> None:
    def request(total: int) -> bytes:
        fixed = ["Host: x", "Connection: close"]
        used = sum(len(h) for h in fixed)
        pad = "X-Pad: " + "p" * (total - used - len("X-Pad: "))
        return (
            "GET /_cluster/health HTTP/1.1\r\n" + "\r\n".join([*fixed, pad]) + "\r\n\r\n"
        ).encode()

    status, _, _ = raw(cluster.port, request(8191))
    assert status == 200
    status, _, body = raw(cluster.port, request(8192))
    assert status == 400
    assert json.loads(body) == envelope(
        "too_long_http_header_exception", "HTTP header is larger than 8192 bytes.", 400
    )


def test_task_header_limit(cluster: RunningCluster) -> None:
    # Each kept header costs 2 * (len(key) + len(value)); X-Opaque-Id is 11 characters.
    status, body = cluster.get("/_tasks", headers={"X-Opaque-Id": "o" * (4096 - 11)})
    assert status == 200
    status, body = cluster.get("/_tasks", headers={"X-Opaque-Id": "o" * (4096 - 10)})
    assert (status, body) == (
        400,
        envelope(
            "illegal_argument_exception",
            "Request exceeded the maximum size of task headers 8kb",
            400,
        ),
    )


def test_body_size_limit(cluster: RunningCluster) -> None:
    # At the limit the body reaches the handler (which does not take one) ...
    status, body = cluster.post(
        "/_tasks/_cancel", body=b"x" * 1024, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert (
        body["error"]["reason"] == "request [POST /_tasks/_cancel] does not support having a body"
    )
    # ... past it, Netty's 413 with an empty body, declared or streamed (chunked).
    status, headers, data = raw(
        cluster.port,
        b"POST /_tasks/_cancel HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n" + b"x" * 1025,
    )
    assert (status, data, headers.get("content-length")) == (413, b"", "0")
    chunk = b"x" * 600
    chunked = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    status, _, data = raw(
        cluster.port,
        b"POST /_tasks/_cancel HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked * 2
        + b"0\r\n\r\n",
    )
    assert (status, data) == (413, b"")
    assert cluster.get("/_cluster/health")[0] == 200


def start_tasks(address: str, *, copies: int = 1, millis: int = 60_000) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        spec = pb.TaskSpec(
            action="indices:data/write/reindex", cancellable=True, duration_millis=millis
        )
        answer = pb_grpc.NodeStub(channel).StartTask(
            pb.RunTaskRequest(spec=spec, copies=copies), timeout=30
        )
        return list(answer.task_ids)


def cancel_all(cluster: RunningCluster) -> None:
    status, _ = cluster.post("/_tasks/_cancel?actions=indices:*&wait_for_completion=true")
    assert status == 200


def test_live_tasks_per_node(cluster: RunningCluster) -> None:
    node = cluster.node("node-1")
    try:
        with pytest.raises(grpc.RpcError) as e:
            start_tasks(node.address, copies=MAX_LIVE + 1)
        assert e.value.details() == (
            "rejected_execution_exception: rejected execution of [indices:data/write/reindex] on "
            f"node [node-1]: {MAX_LIVE} tasks are live, the limit is {MAX_LIVE} "
            "(tasksim.node.max_live_tasks)"
        )
        _, body = cluster.get("/_tasks?actions=indices:*&group_by=none")
        assert body["tasks"] == []  # all or nothing
        assert len(start_tasks(node.address, copies=MAX_LIVE)) == MAX_LIVE
        with pytest.raises(grpc.RpcError):
            start_tasks(node.address)
        # A full node stays listable and cancellable.
        _, body = cluster.get("/_tasks?actions=indices:*&group_by=none&nodes=node-1")
        assert len(body["tasks"]) == MAX_LIVE
        cancel_all(cluster)
        assert len(start_tasks(node.address, millis=1)) == 1
    finally:
        cancel_all(cluster)


def test_concurrent_request_limit(cluster: RunningCluster) -> None:
    node = cluster.node("node-1")
    start_tasks(node.address)
    waiting = "/_tasks?actions=indices:*&wait_for_completion=true&timeout=4s"
    results: list[int] = []
    try:
        threads = [
            threading.Thread(target=lambda: results.append(cluster.get(waiting)[0]))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 3
        rejected: tuple[int, Any] | None = None
        while time.monotonic() < deadline:  # until the four waiters hold every slot
            status, body = cluster.get("/_cluster/health")
            if status == 429:
                rejected = (status, body)
                break
            time.sleep(0.05)
        assert rejected is not None, "the fifth request was never refused"
        reason = (
            "rejected execution of [GET /_cluster/health]: 4 requests are in flight on this "
            "node, the limit is 4 (tasksim.http.max_concurrent_requests)"
        )
        assert rejected == (429, envelope("rejected_execution_exception", reason, 429))
        for t in threads:
            t.join(timeout=30)
        assert results == [200] * 4
        assert cluster.get("/_cluster/health")[0] == 200
    finally:
        cancel_all(cluster)


def test_slow_clients_do_not_hold_up_the_others(cluster: RunningCluster) -> None:
    port = cluster.port
    stalled_heads = []
    stalled_bodies = []
    try:
        for _ in range(20):  # slowloris: headers that never end
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"GET /_tasks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            stalled_heads.append(s)
        for _ in range(20):  # a body that never comes (more than the concurrency limit)
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"POST /_tasks/_cancel HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            stalled_bodies.append(s)
        started = time.monotonic()
        for _ in range(10):
            assert cluster.get("/_tasks", timeout=10)[0] == 200
        assert time.monotonic() - started < 10
        # The stalled bodies are answered once tasksim.http.body_timeout (2s) passes ...
        for s in stalled_bodies:
            resp = http.client.HTTPResponse(s)
            resp.begin()
            assert resp.status == 408
            assert json.loads(resp.read()) == envelope(
                "status_exception",
                "the request body was not received within [2s] (tasksim.http.body_timeout)",
                408,
            )
        # ... and the stalled heads are closed after tasksim.http.idle_timeout (3s).
        for s in stalled_heads:
            assert s.recv(1024) == b""
        assert time.monotonic() - started < 20
    finally:
        for s in stalled_heads + stalled_bodies:
            s.close()
