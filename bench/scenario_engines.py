#!/usr/bin/env python3
"""The shipped scenarios on both engines, wall time side by side, and a 10 000-node cluster on sim.

    python bench/scenario_engines.py                     # every scenario, both engines (minutes)
    python bench/scenario_engines.py -k partition        # some of them (results are merged)
    python bench/scenario_engines.py --large 10000 --no-scenarios   # the large cluster only

Per scenario, in the same process and run: the wall time of the real engine (what `tasksim run`
pays: the cluster's processes started, the steps on real time, the cluster stopped) and of the sim
engine (`tasksim run --engine sim`: a fresh simulated world), the sim run after a warm-up run of
the same scenario (imports and first-use costs are not the engine's). `--large N`: a simulated
cluster of N nodes — its start-up, one `GET _tasks` over every node, and the large scenario
(scenarios/large/) at N nodes. Results merge into `scenario_engines.json` (by scenario, so a run in
parts adds up) and `scenario_engines.md` is written from it, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/scenario_engines.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from coordinator.cluster import ClusterConfig
from coordinator.engine.sim import SimEngine, run_sim
from coordinator.scenario.runner import ScenarioRun, run_on_sim
from coordinator.scenario.schema import load_scenario

ROOT = Path(__file__).resolve().parent.parent
LARGE = ROOT / "scenarios" / "large" / "cancel-across-1000-nodes.yaml"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def scenario_walls(path: Path, logs: Path) -> dict[str, Any]:
    scenario = load_scenario(path)
    run_on_sim(scenario, path)  # warm-up
    t = time.perf_counter()
    sim, _ = run_on_sim(scenario, path)
    sim_wall = time.perf_counter() - t
    t = time.perf_counter()
    real = trio.run(ScenarioRun(scenario, path, log_dir=logs).run)
    real_wall = time.perf_counter() - t
    return {
        "sim_wall": round(sim_wall, 3),
        "sim_virtual": round(sim.duration, 3),
        "sim_status": sim.status,
        "real_wall": round(real_wall, 3),
        "real_status": real.status,
        "speedup": round(real_wall / sim_wall, 1),
        "load": load(),
    }


def large_scenario(nodes: int, directory: Path) -> Path:
    """The large scenario (scenarios/large/) at `nodes` nodes, written into `directory`."""
    text = LARGE.read_text()
    path = directory / f"cancel-across-{nodes}-nodes.yaml"
    names = "[" + ", ".join(f"node-{i}" for i in range(nodes - 9, nodes + 1)) + "]"
    fails = ", ".join(
        f"node-{i}: receive_timeout_transport_exception" for i in range(nodes - 9, nodes + 1)
    )
    # `POST /_sim/tasks` starts at most 10 000 tasks: at that size node-1 (the root) is not
    # a data node, so the tree is the root and a child on each of the other nodes.
    members = ", ".join(
        ["{name: node-1, roles: [cluster_manager]}"]
        + [f"{{name: node-{i}}}" for i in range(2, nodes + 1)]
    )
    text = (
        text.replace("name: cancel-across-1000-nodes", f"name: cancel-across-{nodes}-nodes")
        .replace("nodes: 1000", f"nodes: [{members}]")
        .replace("count: 1000", f"count: {nodes - 1}")
        .replace("count: 990", f"count: {nodes - 11}")
    )
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("partition: {groups: [["):
            lines[i] = f"    partition: {{groups: [{names}]}}"
        elif line.strip().startswith("node_failures: {node-991"):
            lines[i] = f"      node_failures: {{{fails}}}"
    path.write_text("\n".join(lines) + "\n")
    return path


def large_cluster(nodes: int, *, scenario: bool = True) -> dict[str, Any]:
    marks: dict[str, Any] = {"nodes": nodes, "load_before": load()}

    async def main(engine: SimEngine) -> None:
        t = time.perf_counter()
        async with engine.cluster(ClusterConfig.with_nodes(nodes)) as (_cluster, client):
            marks["start_wall"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            resp = await client.request("GET", "/_tasks")
            marks["list_wall"] = round(time.perf_counter() - t, 3)
            marks["list_virtual"] = round(resp.elapsed, 6)
            marks["list_nodes"] = len(resp.body["nodes"])

    t = time.perf_counter()
    run_sim(main, seed=7)
    marks["total_wall"] = round(time.perf_counter() - t, 3)
    marks["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if not scenario:
        marks["load_after"] = load()
        return marks
    with tempfile.TemporaryDirectory() as tmp:
        path = large_scenario(nodes, Path(tmp))
        t = time.perf_counter()
        result, _ = run_on_sim(load_scenario(path), path)
        marks["scenario_wall"] = round(time.perf_counter() - t, 3)
        marks["scenario_virtual"] = round(result.duration, 3)
        marks["scenario_status"] = result.status
        marks["scenario_problem"] = result.error or (result.failures[:1] or [""])[0]
        marks["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    marks["load_after"] = load()
    return marks


def render(data: dict[str, Any]) -> str:
    out = [
        "# The shipped scenarios: sim engine vs real engine",
        "",
        f"`python bench/scenario_engines.py` — {platform.node()}, {os.cpu_count()} CPUs. Wall "
        "seconds per scenario, both engines in the same process and run (sim after a warm-up). "
        "Load average (1, 5, 15 min) when each scenario was measured.",
        "",
        "| scenario | real wall s | sim wall s | speed-up | sim virtual s | status real / sim | load |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = data.get("scenarios", {})
    for name in sorted(rows):
        r = rows[name]
        out.append(
            f"| {name} | {r['real_wall']:.2f} | {r['sim_wall']:.3f} | {r['speedup']:.0f}× | "
            f"{r['sim_virtual']:.2f} | {r['real_status']} / {r['sim_status']} | {r['load']} |"
        )
    if rows:
        real = sum(r["real_wall"] for r in rows.values())
        sim = sum(r["sim_wall"] for r in rows.values())
        out += [
            f"| **all {len(rows)}** | **{real:.1f}** | **{sim:.2f}** | **{real / sim:.0f}×** | | | |",
            "",
        ]
    for nodes, m in sorted(data.get("large", {}).items(), key=lambda kv: int(kv[0])):
        out += [
            f"## {int(nodes):,} simulated nodes",
            "",
            f"- cluster start-up: {m['start_wall']:.1f} s wall",
            f"- one `GET _tasks` over {m['list_nodes']:,} nodes: {m['list_wall']:.1f} s wall "
            f"({m['list_virtual'] * 1000:.2f} ms virtual)",
            *(
                [
                    f"- the large scenario (cancel across every node, ten cut off): "
                    f"{m['scenario_status']} in {m['scenario_wall']:.1f} s wall "
                    f"({m['scenario_virtual']:.2f} s virtual) {m['scenario_problem']}"
                ]
                if "scenario_wall" in m
                else []
            ),
            f"- peak RSS of the process: {m['max_rss_mib']} MiB",
            f"- load average before {m['load_before']}, after {m['load_after']}",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", dest="match", default="", help="only scenarios whose file contains this")
    p.add_argument("--no-scenarios", action="store_true")
    p.add_argument("--large", type=int, default=0, help="a simulated cluster of this many nodes")
    p.add_argument(
        "--no-large-scenario", action="store_true", help="--large: start-up and list only"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    args = p.parse_args(argv)
    json_path = args.out / "scenario_engines.json"
    data: dict[str, Any] = json.loads(json_path.read_text()) if json_path.exists() else {}
    if not args.no_scenarios:
        with tempfile.TemporaryDirectory() as logs:
            for path in sorted((ROOT / "scenarios").glob("*.yaml")):
                if args.match not in path.name:
                    continue
                row = scenario_walls(path, Path(logs))
                print(path.stem, row, flush=True)
                data.setdefault("scenarios", {})[path.stem] = row
                json_path.write_text(json.dumps(data, indent=1) + "\n")
    if args.large:
        row = large_cluster(args.large, scenario=not args.no_large_scenario)
        print(row, flush=True)
        data.setdefault("large", {})[str(args.large)] = row
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    (args.out / "scenario_engines.md").write_text(render(data) + "\n")


if __name__ == "__main__":
    main()
