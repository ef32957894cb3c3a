"""A load driver: N client threads mixing list, get, cancel and new work against a running
cluster for a while, sampling the memory of every tasksim process once a second.

New work is started through the front door too, with `POST /_sim/tasks`: trees of 0.1-3 s with a
cancellable root and, half of the time, a child on another node. Each client holds one keep-alive HTTP
connection, as a real client does. An error is an exception, a 5xx, or a status the operation
never gives (list 200; get and cancel 200 or 404 — the task may have finished).

Run it by hand for a soak: `python -m tests.load.driver --seconds 600 --clients 50 --nodes 5`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil

from tests.harness import RunningCluster, running_cluster

OK = {"list": {200}, "get": {200, 404}, "cancel": {200, 404}, "start": {200}}
MIX = [("list", 40), ("get", 25), ("cancel", 15), ("start", 20)]
LISTS = [
    "/_tasks",
    "/_tasks?detailed=true&actions=indices:*",
    "/_tasks?group_by=parents",
    "/_tasks?group_by=none&nodes=node-1,node-2",
]


@dataclass
class Report:
    seconds: float
    clients: int
    nodes: int
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rss_mb: list[float] = field(default_factory=list)  # all tasksim processes, once a second
    started_tasks: int = 0

    def summary(self) -> dict[str, Any]:
        total = sum(self.counts.values())
        lat = {
            op: {
                "p50_ms": round(statistics.median(v) * 1000, 1),
                "p99_ms": round(sorted(v)[int(len(v) * 0.99) - 1] * 1000, 1),
            }
            for op, v in self.latencies.items()
            if v
        }
        return {
            "seconds": round(self.seconds, 1),
            "clients": self.clients,
            "nodes": self.nodes,
            "requests": total,
            "per_second": round(total / self.seconds, 1) if self.seconds else 0,
            "by_operation": dict(self.counts),
            "trees_started": self.started_tasks,
            "errors": len(self.errors),
            "latency": lat,
            "rss_mb_over_time": [round(x) for x in self.rss_mb[:: max(1, len(self.rss_mb) // 6)]],
            "rss_mb_first_last_max": [
                round(self.rss_mb[0], 1) if self.rss_mb else None,
                round(self.rss_mb[-1], 1) if self.rss_mb else None,
                round(max(self.rss_mb), 1) if self.rss_mb else None,
            ],
        }


def tasksim_rss_mb(cluster: RunningCluster) -> float:
    root = psutil.Process(cluster.process.pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / (1024 * 1024)


def run_load(cluster: RunningCluster, *, seconds: float, clients: int) -> Report:
    data_nodes = [n for n in cluster.nodes if n.name != "coordinator"]
    report = Report(seconds=seconds, clients=clients, nodes=len(data_nodes))
    known: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    ops = [op for op, weight in MIX for _ in range(weight)]

    def start_tree(rng: random.Random, call: Any) -> int:
        node, other = rng.sample(data_nodes, 2)
        tree: dict[str, Any] = {
            "node": node.name,
            "action": rng.choice(["indices:data/write/reindex", "indices:data/read/search"]),
            "cancellable": True,
            "duration": f"{rng.randint(100, 3000)}ms",
        }
        if rng.random() < 0.5:
            tree["children"] = [
                {
                    "node": other.name,
                    "action": "indices:data/read/search[phase/query]",
                    "cancellable": True,
                    "duration": f"{rng.randint(100, 3000)}ms",
                }
            ]
        status, body = call("POST", "/_sim/tasks", json.dumps(tree).encode())
        if status == 200:
            with lock:
                known.append(body["task"])
                del known[:-500]
                report.started_tasks += 1
        return int(status)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=60)

        def call(method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            parsed = json.loads(data) if resp.status == 200 else None
            if resp.status >= 500:
                with lock:
                    report.errors.append(f"{method} {path}: {resp.status} {data[:300]!r}")
            return resp.status, parsed

        while not stop.is_set():
            op = rng.choice(ops)
            with lock:
                target = rng.choice(known) if known else None
            began = time.monotonic()
            try:
                if op == "list":
                    status = call("GET", rng.choice(LISTS))[0]
                elif op == "get" and target:
                    status = call("GET", f"/_tasks/{target}")[0]
                elif op == "cancel" and target:
                    status = call("POST", f"/_tasks/{target}/_cancel")[0]
                elif op == "start":
                    status = start_tree(rng, call)
                else:
                    continue
            except Exception as e:
                with lock:
                    report.errors.append(f"{op}: {type(e).__name__}: {e}")
                continue
            elapsed = time.monotonic() - began
            with lock:
                report.counts[op] += 1
                report.latencies[op].append(elapsed)
                if status not in OK[op]:
                    report.errors.append(f"{op}: HTTP {status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - began < seconds:
        report.rss_mb.append(tasksim_rss_mb(cluster))
        time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    report.seconds = time.monotonic() - began
    report.rss_mb.append(tasksim_rss_mb(cluster))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--nodes", type=int, default=5)
    args = p.parse_args()
    with running_cluster(nodes=args.nodes, seed=501) as cluster:
        report = run_load(cluster, seconds=args.seconds, clients=args.clients)
    print(json.dumps(report.summary(), indent=2))
    for e in report.errors[:20]:
        print("error:", e)


if __name__ == "__main__":
    main()
