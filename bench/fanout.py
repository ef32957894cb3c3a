"""`GET _tasks` over HTTP against a running cluster, beside its two floors, in one interleaved loop.

- `tasks_http`: `GET /_tasks` to the coordinator (HTTP, coordinating task, fan-out to every node
  over gRPC, aggregation, rendering).
- `grpc_floor`: a bare grpcio fan-out of an empty `ListTasks` to the same node processes
  (`measure.GrpcFanout`): what the fan-out costs with no coordinator at all.
- `http_floor`: the same HTTP stack answering a constant (`bench.http_floor`).

Latency is sequential on one keep-alive connection per variant; throughput uses `conns` concurrent
clients of each variant in turn.
"""

from __future__ import annotations

import json
from typing import Any

from bench import procs
from bench.measure import GrpcFanout, HttpClient, interleaved, throughput

TASKS_PATH = "/_tasks"


def run(
    cluster: procs.Cluster, floor_port: int, *, n: int, warmup: int, conns: int, total: int
) -> dict[str, Any]:
    addresses = [node.address for node in cluster.data_nodes]
    http = HttpClient(cluster.port)
    const = HttpClient(floor_port)
    grpc_fanout = GrpcFanout(addresses)
    try:
        body = json.loads(http.get_ok(TASKS_PATH))
        answered = len(body["nodes"])
        size = len(http.get_ok(TASKS_PATH))
        latency = interleaved(
            {
                "tasks_http": lambda: http.get_ok(TASKS_PATH),
                "grpc_floor": grpc_fanout.call,
                "http_floor": lambda: const.get_ok(TASKS_PATH),
            },
            n=n,
            warmup=warmup,
        )
    finally:
        http.close()
        const.close()
        grpc_fanout.close()

    def http_client(port: int) -> Any:
        def make() -> tuple[Any, Any]:
            client = HttpClient(port)
            return (lambda: client.get_ok(TASKS_PATH)), client.close

        return make

    def grpc_client() -> tuple[Any, Any]:
        fan = GrpcFanout(addresses)
        return fan.call, fan.close

    rates = {
        "tasks_http": throughput(http_client(cluster.port), conns=conns, total=total),
        "grpc_floor": throughput(grpc_client, conns=conns, total=total),
        "http_floor": throughput(http_client(floor_port), conns=conns, total=total),
    }
    tasks, grpc, const_p50 = (latency[k].p50 for k in ("tasks_http", "grpc_floor", "http_floor"))
    return {
        "nodes": len(addresses),
        "nodes_answering": answered,
        "response_bytes": size,
        "latency_ms": {k: v.as_dict() for k, v in latency.items()},
        "p50_over_grpc_floor": round(tasks / grpc, 3),
        "p50_over_grpc_plus_http_floor": round(tasks / (grpc + const_p50), 3),
        "throughput_per_s": {k: round(v, 1) for k, v in rates.items()},
        "throughput_conns": conns,
    }
