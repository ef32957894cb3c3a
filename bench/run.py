#!/usr/bin/env python3
"""Run every tasksim benchmark and write `results.md`, `results.json` and `latency.png`.

    python bench/run.py            # the full run (several minutes; wants a quiet machine)
    python bench/run.py --quick    # small counts: checks the runner end to end

For each node count it starts a real cluster (`tasksim up`) and measures, in the same run and in
interleaved blocks, `GET _tasks` beside a bare grpcio fan-out to the same node processes and beside
the HTTP stack answering a constant; start-up (spawn → `GET _tasks` answering with every node) and
RSS per node; Hypothesis examples per second on the property cluster. Then cancel propagation
(`bench/cancel_propagation.py`, on a cluster of its own) and listing on one node holding 100 000 live
tasks. Results are written after each
cluster, so an interrupted run still leaves what it measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cancel_propagation, fanout, listing, procs, properties, recording, report

SECTIONS = ("latency", "startup", "cancel", "listing", "hypothesis", "recording")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts (a check of the runner)")
    p.add_argument("--out", type=Path, default=procs.ROOT / "bench", help="where results go")
    p.add_argument("--nodes", type=_ints, default=[1, 4, 5, 16, 32], help="GET _tasks node counts")
    p.add_argument("--startup-nodes", type=_ints, default=[5, 32], help="start-up repeated at")
    p.add_argument("--startup-reps", type=int, help="starts per start-up node count (3; quick 1)")
    p.add_argument("--requests", type=int, help="timed calls per variant (1000; quick 100)")
    p.add_argument("--warmup", type=int, help="untimed calls per variant first (100; quick 10)")
    p.add_argument("--conns", type=int, default=4, help="concurrent clients for throughput")
    p.add_argument("--throughput-requests", type=int, help="calls per throughput figure (1000)")
    p.add_argument("--cancel-nodes", type=int, default=4, help="cluster for cancel propagation")
    p.add_argument("--cancel-reps", type=int, help="cancels per tree (30; quick 2)")
    p.add_argument("--tasks", type=int, default=100_000, help="live tasks for the listing test")
    p.add_argument("--listing-reps", type=int, help="filtered listings timed (50; quick 10)")
    p.add_argument("--hypothesis-nodes", type=int, default=5)
    p.add_argument("--examples", type=int, help="hypothesis examples (300; quick 30)")
    p.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    args = p.parse_args(argv)
    defaults = {
        "startup_reps": (3, 1),
        "requests": (1000, 100),
        "warmup": (100, 10),
        "throughput_requests": (1000, 100),
        "cancel_reps": (30, 2),
        "listing_reps": (50, 10),
        "examples": (300, 30),
    }
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    return args


def _commit() -> str:
    def git(*cmd: str) -> str:
        return subprocess.run(
            ["git", *cmd], cwd=procs.ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss(c: procs.Cluster, n: int) -> dict[str, float]:
    """Max and mean RSS of the node processes and the coordinator's, in MiB; every node alive."""
    rss = c.rss_mib()
    nodes_rss = [v for k, v in rss.items() if k != "coordinator"]
    if len(nodes_rss) != n:
        raise procs.BenchProcessError(f"{n - len(nodes_rss)} of {n} node processes died")
    return {
        "node_max": round(max(nodes_rss), 1),
        "node_mean": round(statistics.fmean(nodes_rss), 1),
        "coordinator": round(rss.get("coordinator", float("nan")), 1),
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skip = set(args.skip)
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "commit": _commit(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": _load(),
            "loadavg_end": None,
            "quick": args.quick,
            "counts": {
                k: getattr(args, k)
                for k in (
                    "requests",
                    "warmup",
                    "conns",
                    "throughput_requests",
                    "startup_reps",
                    "cancel_reps",
                    "listing_reps",
                    "examples",
                    "tasks",
                )
            },
        },
        "latency": [],
        "startup": [],
        "cancel": None,
        "listing": None,
        "hypothesis": None,
        "recording": None,
    }

    def save() -> None:
        results["meta"]["loadavg_end"] = _load()
        report.write(results, args.out)

    latency_nodes = set() if "latency" in skip else set(args.nodes)
    if latency_nodes and "cancel" not in skip:
        latency_nodes.add(args.cancel_nodes)  # the list fan-out a cancel is compared with
    startup_nodes = set() if "startup" in skip else set(args.startup_nodes)
    counts = set(latency_nodes) | startup_nodes
    if "hypothesis" not in skip:
        counts.add(args.hypothesis_nodes)
    with procs.http_floor() as floor_port:
        for n in sorted(counts):
            runs = []
            for _ in range(args.startup_reps - 1 if n in startup_nodes else 0):
                with procs.cluster(n) as c:
                    runs.append(c.ready_seconds)
            with procs.cluster(n) as c:
                runs.append(c.ready_seconds)
                log(f"{n} nodes ready in {c.ready_seconds:.2f}s (load {_load()})")
                steady = _rss(c, n)
                if n in latency_nodes:
                    row = fanout.run(
                        c,
                        floor_port,
                        n=args.requests,
                        warmup=args.warmup,
                        conns=args.conns,
                        total=args.throughput_requests,
                    )
                    results["latency"].append(row)
                    lat = row["latency_ms"]
                    log(
                        f"  GET _tasks p50 {lat['tasks_http']['p50']:.2f} ms, gRPC floor "
                        f"{lat['grpc_floor']['p50']:.2f} ms, HTTP floor {lat['http_floor']['p50']:.2f} ms"
                    )
                steady = _rss(c, n)  # ready, and after the GET _tasks load if there was one
                if n == args.hypothesis_nodes and "hypothesis" not in skip:
                    results["hypothesis"] = properties.run(c, examples=args.examples)
                    log(f"  hypothesis: {results['hypothesis']['examples_per_s']} examples/s")
                results["startup"].append(
                    {
                        "nodes": n,
                        "ready_s": {"runs": runs, "median": statistics.median(runs)},
                        "reported_s": c.reported_seconds,
                        "rss_mib": steady,
                        "rss_mib_after_all": _rss(c, n),  # after the property run, if any
                    }
                )
            save()
    if "cancel" not in skip:
        log(f"cancel propagation on {args.cancel_nodes} nodes")
        results["cancel"] = cancel_propagation.run(
            iterations=args.cancel_reps, nodes=args.cancel_nodes
        )
        for name, row in results["cancel"]["scenarios"].items():
            log(f"  {name}: p50 {row['p50_ms']:.1f} ms")
        save()
    if "listing" not in skip:
        log(f"listing over {args.tasks} live tasks")
        results["listing"] = listing.run(
            tasks=args.tasks,
            reps=args.listing_reps,
            unfiltered_reps=max(2, args.listing_reps // 10),
        )
        log(f"  filtered p50 {results['listing']['grpc']['exact']['p50']:.2f} ms")
    if "recording" not in skip:
        log(f"GET _tasks with and without recording a history ({args.cancel_nodes} nodes)")
        results["recording"] = recording.run(
            nodes=args.cancel_nodes, n=args.requests, warmup=args.warmup
        )
        log(f"  p50 ratio {results['recording']['ratio_p50']:.3f}")
    save()
    for t in results["targets"]:
        log(f"{'met ' if t['met'] else 'MISS'} {t['target']}: {t['measured']} (limit {t['limit']})")
    log(f"wrote {args.out}/results.md, results.json, latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
