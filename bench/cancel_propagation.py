"""Cancel propagation: from `POST _tasks/<root>/_cancel?wait_for_completion=true` to every
descendant gone, on a real cluster (node processes, gRPC, HTTP).

Two trees, both rooted on node-1 of a 4-node cluster and started with `POST /_sim/tasks`:

- `fanout16`: 1 parent + 16 children, 4 on each node;
- `tree256`: 1 parent + 16 children (4 per node) + 15 grandchildren under each child, spread over
  the 4 nodes: 256 descendants.

Each iteration starts the tree, waits until every task is registered (one cluster-wide listing),
then times the cancel with `wait_for_completion=true`, which answers only when the parent and every
descendant are done (bans set on the child nodes, recursively). A listing afterwards checks that no
task of the tree is left; an iteration that leaves one counts as `leftovers`.

    python bench/cancel_propagation.py [--iterations 30] [--nodes 4]

`run(...) -> dict` is the entry point for the bench runner.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import RunningCluster, running_cluster  # noqa: E402


def _request(cluster: RunningCluster, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        cluster.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def tree(nodes: int, grandchildren: int) -> dict[str, Any]:
    """1 parent on node-1, 4 children per node, `grandchildren` under each child (round-robin)."""
    children = []
    for i in range(16):
        child: dict[str, Any] = {
            "node": f"node-{i % nodes + 1}",
            "action": "indices:data/read/search",
        }
        if grandchildren:
            child["children"] = [
                {
                    "node": f"node-{(i + k) % nodes + 1}",
                    "action": "indices:data/read/search[phase/query]",
                }
                for k in range(grandchildren)
            ]
        children.append(child)
    return {"node": "node-1", "action": "indices:data/write/reindex", "children": children}


def _live(cluster: RunningCluster) -> set[str]:
    listed = _request(cluster, "GET", "/_tasks?group_by=none&actions=indices:*")["tasks"]
    return {f"{t['node']}:{t['id']}" for t in listed}


def _tree_ids(cluster: RunningCluster, root: str) -> set[str]:
    listed = _request(cluster, "GET", "/_tasks?group_by=none&actions=indices:*")["tasks"]
    by_parent: dict[str, list[str]] = {}
    for t in listed:
        by_parent.setdefault(t.get("parent_task_id", ""), []).append(f"{t['node']}:{t['id']}")
    found, frontier = {root}, [root]
    while frontier:
        for child in by_parent.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def measure(
    cluster: RunningCluster, body: dict[str, Any], size: int, iterations: int
) -> dict[str, Any]:
    samples: list[float] = []
    leftovers = 0
    for _ in range(iterations):
        root = _request(cluster, "POST", "/_sim/tasks", body)["task"]
        deadline = time.monotonic() + 60
        while True:
            members = _tree_ids(cluster, root)
            if len(members) == size + 1:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tree of {size} descendants not registered: {len(members) - 1}")
            time.sleep(0.02)
        started = time.perf_counter()
        _request(cluster, "POST", f"/_tasks/{root}/_cancel?wait_for_completion=true")
        samples.append((time.perf_counter() - started) * 1000)
        if _live(cluster) & members:
            leftovers += 1
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {
        "descendants": size,
        "iterations": iterations,
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(pct(99), 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
        "leftovers": leftovers,
    }


def run(iterations: int = 30, nodes: int = 4, seed: int = 42) -> dict[str, Any]:
    """Start a cluster, measure both trees, stop the cluster. Times in milliseconds."""
    results: dict[str, Any] = {"nodes": nodes, "scenarios": {}}
    with running_cluster(nodes=nodes, seed=seed) as cluster:
        for name, body, size in (
            ("fanout16", tree(nodes, 0), 16),
            ("tree256", tree(nodes, 15), 256),
        ):
            measure(cluster, body, size, 2)  # warm-up: channels, thread caches
            results["scenarios"][name] = measure(cluster, body, size, iterations)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(iterations=args.iterations, nodes=args.nodes)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"cancel propagation, {result['nodes']} nodes (request -> every descendant gone)")
    print(
        f"{'scenario':<10} {'desc.':>6} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'max ms':>9} {'left':>5}"
    )
    for name, r in result["scenarios"].items():
        print(
            f"{name:<10} {r['descendants']:>6} {r['iterations']:>4} {r['p50_ms']:>9.2f} "
            f"{r['p99_ms']:>9.2f} {r['mean_ms']:>9.2f} {r['max_ms']:>9.2f} {r['leftovers']:>5}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
