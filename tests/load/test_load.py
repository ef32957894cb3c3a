"""Load: 50 concurrent clients mixing list, get, cancel and new work against 5 nodes — no errors,
memory flat, nothing left behind. CI runs it for TASKSIM_LOAD_SECONDS (default 10) and prints its
figures; `TASKSIM_LOAD_SECONDS=60` is the issue's full run, longer is a soak."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from tests.harness import running_cluster
from tests.load.driver import run_load

SECONDS = float(os.environ.get("TASKSIM_LOAD_SECONDS", "10"))
LIST = "cluster:monitor/tasks/lists"


@pytest.mark.timeout(SECONDS + 240)
def test_fifty_clients_against_five_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    with running_cluster(nodes=5, seed=501) as cluster:
        report = run_load(cluster, seconds=SECONDS, clients=50)
        summary = report.summary()
        with capsys.disabled():
            print(f"\nload figures: {json.dumps(summary)}")
        assert report.errors == [], (Counter(e[:60] for e in report.errors), cluster.output[-60:])
        assert all(report.counts[op] > 0 for op in ("list", "get", "cancel", "start"))
        # Memory flat: after the first seconds of warm-up, tasksim's processes (coordinator and
        # five nodes together) grow by less than 25% — a leak of per-request state would not.
        warm = report.rss_mb[min(3, len(report.rss_mb) - 1)]
        assert report.rss_mb[-1] < warm * 1.25, report.rss_mb
        # Nothing left: once the started trees are done or cancelled, only the list's own tasks.
        status, _ = cluster.post("/_tasks/_cancel?actions=indices:*&wait_for_completion=true")
        assert status == 200
        deadline = time.monotonic() + 30
        while True:
            _, body = cluster.get("/_tasks?group_by=none")
            left = [t["action"] for t in body["tasks"] if not t["action"].startswith(LIST)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert left == []
        assert sorted(t["action"] for t in body["tasks"]) == sorted([LIST] + [LIST + "[n]"] * 6)
