"""Listing on one node that holds many live tasks (100 000 by default).

One bare node process gets `tasks - 10` long-running leaves of one action and 10 of another, all in
one `StartTask` (`copies`); a second, empty node is the floor. Timed over gRPC, straight to the node
(`cluster:monitor/tasks/lists[n]`, no coordinator): `actions=` matching the 10 (an exact name and a
wildcard pattern) and the unfiltered list, each beside the same call to the empty node. The
difference is what the node spends on its tasks; the loaded call itself is an upper bound of the
server-side time. The pure core's `Registry.matching` is timed in this process too, with the same
tasks, so a regression can be told apart from transport cost.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from bench import procs
from bench.measure import CHANNEL_OPTIONS, Summary, interleaved, timed
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from simnode.registry import Registry, TaskFilter

HAYSTACK = "bench:idle/haystack"
NEEDLE = "bench:idle/needle"
NEEDLES = 10
ONE_HOUR_MS = 3_600_000


def _leaf(action: str) -> pb.TaskSpec:
    return pb.TaskSpec(
        action=action, cancellable=True, duration_millis=ONE_HOUR_MS, on_cancel="immediate"
    )


def _in_process(tasks: int, reps: int) -> dict[str, Any]:
    registry = Registry("bench")
    for i in range(tasks):
        action = NEEDLE if i >= tasks - NEEDLES else HAYSTACK
        registry.register(action=action, now_millis=0, now_nanos=0, cancellable=True)
    out: dict[str, Any] = {}
    filters = {
        "exact": TaskFilter(actions=(NEEDLE,)),
        "wildcard": TaskFilter(actions=("*/needle",)),
        "unfiltered": TaskFilter(),
    }
    for name, task_filter in filters.items():

        def call(f: TaskFilter = task_filter) -> object:
            return registry.matching(f)

        out[name] = Summary.of(timed(call, reps)).as_dict()
    return out


def run(*, tasks: int = 100_000, reps: int = 50, unfiltered_reps: int = 5) -> dict[str, Any]:
    with procs.node("loaded") as loaded, procs.node("empty") as empty:
        channels = [
            grpc.insecure_channel(n.address, options=CHANNEL_OPTIONS) for n in (loaded, empty)
        ]
        try:
            loaded_stub, empty_stub = (pb_grpc.NodeStub(ch) for ch in channels)
            t0 = time.perf_counter()
            loaded_stub.StartTask(pb.RunTaskRequest(spec=_leaf(HAYSTACK), copies=tasks - NEEDLES))
            loaded_stub.StartTask(pb.RunTaskRequest(spec=_leaf(NEEDLE), copies=NEEDLES))
            start_seconds = time.perf_counter() - t0
            # The floor node holds the 10 needles only: same answer, none of the haystack.
            empty_stub.StartTask(pb.RunTaskRequest(spec=_leaf(NEEDLE), copies=NEEDLES))
            live = loaded_stub.Status(pb.Empty()).live_tasks

            def lister(stub: pb_grpc.NodeStub, *actions: str) -> Any:
                request = pb.TasksRequest(actions=list(actions))

                def call() -> int:
                    return len(stub.ListTasks(request, timeout=300).tasks)

                return call

            exact = lister(loaded_stub, NEEDLE)
            assert exact() == NEEDLES, "the exact filter must match the 10 needles"
            filtered = interleaved(
                {
                    "exact": exact,
                    "exact_floor": lister(empty_stub, NEEDLE),
                    "wildcard": lister(loaded_stub, "*/needle"),
                    "wildcard_floor": lister(empty_stub, "*/needle"),
                },
                n=reps,
                warmup=3,
                block=5,
            )
            unfiltered = interleaved(
                {"unfiltered": lister(loaded_stub), "unfiltered_floor": lister(empty_stub)},
                n=unfiltered_reps,
                warmup=1,
                block=1,
            )
            rss = loaded.rss_mib()
        finally:
            for ch in channels:
                ch.close()
    results = {**filtered, **unfiltered}
    return {
        "tasks": tasks,
        "live_tasks": live,
        "start_seconds": round(start_seconds, 3),
        "node_rss_mib": round(rss, 1),
        "grpc": {k: v.as_dict() for k, v in results.items()},
        "server_side_ms": {
            k: round(results[k].p50 - results[f"{k}_floor"].p50, 3)
            for k in ("exact", "wildcard", "unfiltered")
        },
        "in_process_matching": _in_process(tasks, max(5, reps // 5)),
    }
