#!/usr/bin/env python3
"""The sim engine's own figures: events per second and `GET _tasks` fan-outs per wall second.

    python bench/sim_engine.py                       # 5, 100, 1 000 and 10 000 nodes
    python bench/sim_engine.py --nodes 5,100 --requests 200

For each node count, in one simulated run (seed 1, fault detection off so that only the measured
work runs): the wall time to start the cluster (every node host up, the first cluster state
published), then `--requests` `GET _tasks` one after the other through the in-process REST front,
timed on the wall clock: fan-outs per wall second, the wall time of one fan-out (median), and
events per second (messages carried by the in-memory network — each request and each answer is one
— per wall second of the fan-outs). Writes `bench/sim_engine.md` and `bench/sim_engine.json`.
Targets (issue 12): ≥ 2 000 fan-outs per wall second at 5 nodes; a 10 000-node `GET _tasks`
answered within 5 s of wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/sim_engine.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.engine.sim import SimEngine, run_sim

ROOT = Path(__file__).resolve().parent.parent


def requests_for(nodes: int, asked: int | None) -> int:
    if asked is not None:
        return asked
    return 1000 if nodes <= 5 else 200 if nodes <= 100 else 10 if nodes <= 1000 else 3


def measure(nodes: int, requests: int) -> dict[str, Any]:
    config = ClusterConfig.with_nodes(nodes, fault_detection=FaultDetection(enabled=False))

    async def main(engine: SimEngine) -> dict[str, Any]:
        t0 = time.perf_counter()
        async with engine.cluster(config) as (_cluster, client):
            started = time.perf_counter() - t0
            answer = await client.request("GET", "/_tasks")  # warm-up
            assert answer.status == 200 and len(answer.body["nodes"]) == nodes + 1
            messages0 = engine.network.messages
            walls: list[float] = []
            virtual: list[float] = []
            for _ in range(requests):
                t = time.perf_counter()
                answer = await client.request("GET", "/_tasks")
                walls.append(time.perf_counter() - t)
                virtual.append(answer.elapsed)
                assert answer.status == 200
            total = sum(walls)
            return {
                "nodes": nodes,
                "requests": requests,
                "start_wall_s": round(started, 3),
                "fanouts_per_wall_s": round(requests / total, 1),
                "fanout_wall_ms_p50": round(statistics.median(walls) * 1000, 2),
                "fanout_wall_ms_max": round(max(walls) * 1000, 2),
                "fanout_virtual_ms_p50": round(statistics.median(virtual) * 1000, 3),
                "events_per_wall_s": round((engine.network.messages - messages0) / total),
            }

    return run_sim(main, seed=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python bench/sim_engine.py", description=__doc__.splitlines()[0]
    )
    p.add_argument("--nodes", default="5,100,1000,10000")
    p.add_argument("--requests", type=int, default=None, help="fan-outs per node count")
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    rows = []
    for n in (int(x) for x in args.nodes.split(",") if x):
        row = measure(n, requests_for(n, args.requests))
        print(json.dumps(row), flush=True)
        rows.append(row)
    load_after = os.getloadavg()
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sim_engine.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# sim engine: fan-outs and events per wall second",
        "",
        f"`python bench/sim_engine.py` — {meta['date']}, Python {meta['python']}, "
        f"{meta['cpus']} CPUs, load average {' '.join(map(str, meta['load_before']))} at the "
        f"start and {' '.join(map(str, meta['load_after']))} at the end. One simulated run per "
        "row (seed 1, fault detection off), sequential `GET _tasks` through the in-process REST "
        "front after one warm-up.",
        "",
        "| nodes | cluster start (wall s) | GET _tasks / wall s | one fan-out p50 (wall ms) | "
        "max (wall ms) | one fan-out (virtual ms) | events / wall s | requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['nodes']} | {r['start_wall_s']} | {r['fanouts_per_wall_s']} | "
            f"{r['fanout_wall_ms_p50']} | {r['fanout_wall_ms_max']} | "
            f"{r['fanout_virtual_ms_p50']} | {r['events_per_wall_s']} | {r['requests']} |"
        )
    (args.out / "sim_engine.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
