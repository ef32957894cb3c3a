"""How the benchmarks time things: clients, floors, interleaved loops, summaries.

- `HttpClient`: one keep-alive HTTP/1.1 connection (`http.client`), reopened when the server closes
  it; the same client times tasksim and the constant HTTP floor.
- `GrpcFanout`: the bare grpcio floor of a fan-out — `stub.ListTasks.future()` to every node from a
  plain thread, all answers awaited (python-stack.md §1.4's baseline), with one long-lived `Watch`
  call per channel so that grpcio does not start a channel-spin thread per fan-out (the same keeper
  tasksim's coordinator holds). No trio, no coordinator, no HTTP: only the nodes' own work and gRPC.
- `interleaved()`: runs the timed variants in alternating blocks, so that machine drift on a shared
  box hits a figure and its floor alike.
- `throughput()`: requests per second from `conns` concurrent clients, one thread each.

This module imports grpc on purpose (the floor *is* bare grpcio); it never imports the coordinator.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc

CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


@dataclass(frozen=True)
class Summary:
    """Latency of `n` timed calls, in milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: list[float]) -> Summary:
        if not seconds:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        ms = sorted(s * 1000 for s in seconds)
        return cls(
            n=len(ms),
            p50=percentile(ms, 50),
            p99=percentile(ms, 99),
            mean=sum(ms) / len(ms),
            min=ms[0],
            max=ms[-1],
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- HTTP -------------------------------------------------------------------------------------------


class HttpError(RuntimeError):
    pass


class HttpClient:
    """One keep-alive connection; `http.client` reopens it after a `Connection: close`."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 120.0) -> None:
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        try:
            self._conn.request(method, path)
            response = self._conn.getresponse()
            return response.status, response.read()
        except (ConnectionError, http.client.HTTPException):
            self._conn.close()  # a keep-alive connection the server dropped: retry once, fresh
            self._conn.request(method, path)
            response = self._conn.getresponse()
            return response.status, response.read()

    def get_ok(self, path: str) -> bytes:
        status, body = self.request("GET", path)
        if status != 200:
            raise HttpError(f"GET {path} → {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self._conn.close()


# -- the bare grpcio fan-out ------------------------------------------------------------------------


class GrpcFanout:
    """`ListTasks` to every address at once, from the calling (plain) thread."""

    def __init__(self, addresses: list[str], request: pb.TasksRequest | None = None) -> None:
        self._channels = [grpc.insecure_channel(a, options=CHANNEL_OPTIONS) for a in addresses]
        self._stubs = [pb_grpc.NodeStub(ch) for ch in self._channels]
        self._keepers: list[Any] = [stub.Watch(pb.Empty()) for stub in self._stubs]
        self._request = request or pb.TasksRequest()

    def call(self) -> int:
        """One fan-out; the number of tasks the nodes answered with."""
        futures = [stub.ListTasks.future(self._request, timeout=60) for stub in self._stubs]
        return sum(len(f.result().tasks) for f in futures)

    def close(self) -> None:
        for keeper in self._keepers:
            keeper.cancel()
        for ch in self._channels:
            ch.close()


# -- loops ------------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(
    variants: dict[str, Callable[[], object]], *, n: int, warmup: int, block: int = 25
) -> dict[str, Summary]:
    """Time each variant `n` times (after `warmup` untimed calls each), in alternating blocks."""
    for fn in variants.values():
        timed(fn, warmup)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    while any(len(s) < n for s in samples.values()):
        for name, fn in variants.items():
            todo = min(block, n - len(samples[name]))
            samples[name].extend(timed(fn, todo))
    return {name: Summary.of(s) for name, s in samples.items()}


Client = tuple[Callable[[], object], Callable[[], None]]  # (one call, close)


def throughput(make: Callable[[], Client], *, conns: int, total: int) -> float:
    """Calls per second with `conns` concurrent clients (each `make()`s its own), `total` calls."""
    per = max(1, total // conns)
    made = [make() for _ in range(conns)]
    try:
        return _throughput([call for call, _ in made], per)
    finally:
        for _, close in made:
            close()


def _throughput(clients: list[Callable[[], object]], per: int) -> float:
    conns = len(clients)
    for fn in clients:
        fn()  # connect and warm up outside the timed window
    errors: list[BaseException] = []
    barrier = threading.Barrier(conns + 1)

    def worker(fn: Callable[[], object]) -> None:
        barrier.wait()
        try:
            for _ in range(per):
                fn()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(fn,)) for fn in clients]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return per * conns / elapsed
