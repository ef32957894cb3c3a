"""What recording a history costs: `GET _tasks` p50 on a cluster that records (`tasksim up
--record`) beside the same cluster that does not (target: at most 10 % more).

Two clusters of the same size run at once (so that both see the same machine load), and their
`GET _tasks` calls are timed in interleaved blocks after a warm-up. Recording means: the request's
`invoke`/`ok` with the answer's summary, the coordinating node's and every node's task lifecycle for
the fan-out (shipped over the control channel), and every RPC's send and delivery.

    python -m bench.recording [--nodes 4] [--requests 500] [--warmup 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.measure import HttpClient, interleaved

TARGET = 1.10


def _get_tasks(client: HttpClient) -> Callable[[], object]:
    return lambda: client.get_ok("/_tasks")


def run(*, nodes: int = 4, n: int = 500, warmup: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tasksim-bench-record-") as tmp:
        record = Path(tmp) / "history.jsonl"
        with (
            procs.cluster(nodes) as plain,
            procs.cluster(nodes, seed=8, extra=("--record", str(record))) as recorded,
        ):
            clients = {"plain": HttpClient(plain.port), "recording": HttpClient(recorded.port)}
            try:
                summary = interleaved(
                    {name: _get_tasks(c) for name, c in clients.items()}, n=n, warmup=warmup
                )
            finally:
                for client in clients.values():
                    client.close()
        events = sum(1 for _ in record.open()) - 1 if record.exists() else 0
    p50 = {name: s.p50 for name, s in summary.items()}
    ratio = p50["recording"] / p50["plain"]
    return {
        "nodes": nodes,
        "requests": n,
        "warmup": warmup,
        "latency_ms": {name: s.as_dict() for name, s in summary.items()},
        "ratio_p50": round(ratio, 3),
        "target": TARGET,
        "met": ratio <= TARGET,
        "events_recorded": events,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.recording", description=__doc__.splitlines()[0]
    )
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    args = p.parse_args()
    print(json.dumps(run(nodes=args.nodes, n=args.requests, warmup=args.warmup), indent=2))


if __name__ == "__main__":
    main()
