"""Hypothesis examples per second against a live cluster.

One simple property, the kind a user of tasksim writes: for random `GET _tasks` parameters
(`actions` patterns, `detailed`, `group_by`, `nodes` selectors), the cluster answers 200 and every
task it lists has an action one of the patterns matches. Examples run over one keep-alive HTTP
connection; the rate is examples run divided by the wall time of the whole `@given` call (data
generation, shrinking bookkeeping and the requests together).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import procs
from bench.measure import HttpClient
from simnode.regex import simple_match_any

PATTERNS = [
    "*",
    "cluster:*",
    "cluster:monitor/tasks/lists",
    "cluster:monitor/tasks/lists[n]",
    "*lists*",
    "indices:*",
    "internal:*",
]


def _tasks_of(body: Any, group_by: str) -> list[dict[str, Any]]:
    if group_by == "none":
        return list(body["tasks"])
    if group_by == "parents":
        out: list[dict[str, Any]] = []
        stack = list(body["tasks"].values())
        while stack:
            task = stack.pop()
            out.append(task)
            stack.extend(task.get("children", []))
        return out
    return [t for node in body["nodes"].values() for t in node["tasks"].values()]


def run(cluster: procs.Cluster, *, examples: int) -> dict[str, Any]:
    http = HttpClient(cluster.port)
    names = [n.name for n in cluster.nodes]
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        actions=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        detailed=st.booleans(),
        group_by=st.sampled_from(["nodes", "parents", "none"]),
        nodes=st.lists(st.sampled_from([*names, "_all", "_local", "data:true"]), max_size=2),
    )
    def listing_matches_actions(
        actions: list[str], detailed: bool, group_by: str, nodes: list[str]
    ) -> None:
        nonlocal ran
        ran += 1
        query: dict[str, str] = {"actions": ",".join(actions), "group_by": group_by}
        if detailed:
            query["detailed"] = "true"
        if nodes:
            query["nodes"] = ",".join(nodes)
        status, raw = http.request("GET", "/_tasks?" + urlencode(query, safe=",*:/[]"))
        assert status == 200, raw[:300]
        for task in _tasks_of(json.loads(raw), group_by):
            assert simple_match_any(actions, task["action"]), task

    t0 = time.perf_counter()
    try:
        listing_matches_actions()
        failure = None
    except Exception as e:  # report it; a failing property still has a rate
        failure = f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        http.close()
    elapsed = time.perf_counter() - t0
    return {
        "nodes": len(cluster.data_nodes),
        "examples": ran,
        "seconds": round(elapsed, 3),
        "examples_per_s": round(ran / elapsed, 1) if elapsed else None,
        "failure": failure,
    }
