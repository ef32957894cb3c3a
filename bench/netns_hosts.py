"""`GET _tasks` over veth hosts (`tasksim up --hosts netns`) beside loopback hosts, same run.

For each size (5 and 32 nodes by default) two clusters run side by side: one with every node on
127.0.0.1 (`--hosts loopback`), one with every node in its own network namespace behind a veth
pair and a bridge (`--hosts netns`). The same client code times both: one keep-alive HTTP
connection per cluster for latency, in interleaved blocks (`measure.interleaved`, so that drift on
a shared machine hits both alike), then `conns` concurrent clients per cluster in turn for
throughput. The REST API is on 127.0.0.1 in both; only the coordinator's fan-out to its nodes
crosses the veths. The load average (`os.getloadavg`, what `uptime` prints) is recorded before and
after each size.

    python -m bench.netns_hosts                 # root; writes bench/netns_hosts.json and .md

Without root (or `nft`/`ip`) it says so in one line and exits 2, having started nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.measure import HttpClient, interleaved, throughput

HERE = Path(__file__).resolve().parent
TASKS_PATH = "/_tasks"
HOSTS = ("loopback", "netns")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _lister(client: HttpClient) -> Callable[[], object]:
    return lambda: client.get_ok(TASKS_PATH)


def measure_size(nodes: int, *, n: int, warmup: int, conns: int, total: int) -> dict[str, Any]:
    before = load()
    with (
        procs.cluster(nodes, seed=7, extra=("--hosts", "loopback")) as loop,
        procs.cluster(nodes, seed=7, extra=("--hosts", "netns")) as veth,
    ):
        clusters = {"loopback": loop, "netns": veth}
        clients = {name: HttpClient(c.port) for name, c in clusters.items()}
        try:
            answering = {
                name: len(json.loads(client.get_ok(TASKS_PATH))["nodes"])
                for name, client in clients.items()
            }
            latency = interleaved(
                {name: _lister(client) for name, client in clients.items()}, n=n, warmup=warmup
            )
        finally:
            for client in clients.values():
                client.close()

        def maker(port: int) -> Any:
            def make() -> tuple[Any, Any]:
                client = HttpClient(port)
                return (lambda: client.get_ok(TASKS_PATH)), client.close

            return make

        rates = {
            name: throughput(maker(c.port), conns=conns, total=total)
            for name, c in clusters.items()
        }
        addresses = {name: c.data_nodes[0].address for name, c in clusters.items()}
        ready = {name: round(c.ready_seconds, 2) for name, c in clusters.items()}
    after = load()
    p50 = {name: latency[name].p50 for name in HOSTS}
    return {
        "nodes": nodes,
        "nodes_answering": answering,
        "first_node_address": addresses,
        "ready_seconds": ready,
        "latency_ms": {name: latency[name].as_dict() for name in HOSTS},
        "p50_netns_over_loopback": round(p50["netns"] / p50["loopback"], 3),
        "throughput_per_s": {name: round(rates[name], 1) for name in HOSTS},
        "throughput_conns": conns,
        "load_before": before,
        "load_after": after,
    }


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    )
    return done.stdout.strip() or "?"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# `GET _tasks` over veth hosts vs loopback",
        "",
        f"`python -m bench.netns_hosts` on {result['date']} (commit `{result['commit']}`, "
        f"{result['cpus']} CPUs). Each size runs a `--hosts loopback` and a `--hosts netns` "
        "cluster side by side; one keep-alive HTTP client per cluster, "
        f"{result['n']} timed calls each in interleaved blocks after {result['warmup']} warm-up "
        f"calls; throughput with {result['conns']} concurrent clients, {result['total']} calls. "
        "Load average (1, 5, 15 min) before → after each size.",
        "",
        "| nodes | hosts | p50 ms | p99 ms | mean ms | req/s | netns / loopback p50 | load before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        for name in HOSTS:
            lat = size["latency_ms"][name]
            ratio = f"{size['p50_netns_over_loopback']:.2f}×" if name == "netns" else ""
            loads = f"{size['load_before']} → {size['load_after']}" if name == "loopback" else ""
            lines.append(
                f"| {size['nodes']} | {name} (`{size['first_node_address'][name]}`…) | "
                f"{lat['p50']:.2f} | {lat['p99']:.2f} | {lat['mean']:.2f} | "
                f"{size['throughput_per_s'][name]:.0f} | {ratio} | {loads} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.netns_hosts", description=__doc__)
    parser.add_argument("--sizes", default="5,32", help="node counts, comma-separated")
    parser.add_argument("-n", type=int, default=200, help="timed calls per cluster and size")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--conns", type=int, default=4, help="concurrent clients (throughput)")
    parser.add_argument("--total", type=int, default=400, help="calls per throughput run")
    parser.add_argument("--out", type=Path, default=HERE / "netns_hosts.json")
    args = parser.parse_args(argv)
    from coordinator.engine.netns import netns_problem

    problem = netns_problem()
    if problem is not None:
        print(f"bench.netns_hosts: {problem}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    sizes = [
        measure_size(int(s), n=args.n, warmup=args.warmup, conns=args.conns, total=args.total)
        for s in args.sizes.split(",")
    ]
    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "cpus": os.cpu_count(),
        "n": args.n,
        "warmup": args.warmup,
        "conns": args.conns,
        "total": args.total,
        "seconds": round(time.perf_counter() - started, 1),
        "sizes": sizes,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
