"""`python bench/run.py` end to end with tiny counts: every section runs against real processes and
the three result files come out. Figures are not checked here (speed belongs in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.cluster


@pytest.mark.timeout(300)
def test_runner_writes_every_section(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "bench/run.py",
        "--quick",
        "--out",
        str(tmp_path),
        "--nodes",
        "1,2",
        "--startup-nodes",
        "2",
        "--startup-reps",
        "2",
        "--requests",
        "20",
        "--warmup",
        "2",
        "--throughput-requests",
        "20",
        "--cancel-nodes",
        "2",
        "--cancel-reps",
        "1",
        "--tasks",
        "500",
        "--listing-reps",
        "3",
        "--hypothesis-nodes",
        "2",
        "--examples",
        "10",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    recording = results["recording"]
    assert recording["nodes"] == 2 and recording["events_recorded"] > 0
    assert {k: v["n"] for k, v in recording["latency_ms"].items()} == {"plain": 20, "recording": 20}
    assert [row["nodes"] for row in results["latency"]] == [1, 2]
    for row in results["latency"]:
        assert row["nodes_answering"] == row["nodes"] + 1  # the coordinating node answers too
        for key in ("tasks_http", "grpc_floor", "http_floor"):
            assert row["latency_ms"][key]["n"] == 20
            assert row["throughput_per_s"][key] > 0
    startup = {row["nodes"]: row for row in results["startup"]}
    assert len(startup[2]["ready_s"]["runs"]) == 2
    assert all(0 < row["rss_mib"]["node_max"] < 1024 for row in startup.values())
    assert results["cancel"]["nodes"] == 2
    scenarios = results["cancel"]["scenarios"]
    assert [(k, v["descendants"], v["leftovers"]) for k, v in scenarios.items()] == [
        ("fanout16", 16, 0),
        ("tree256", 256, 0),
    ]
    assert results["listing"]["live_tasks"] == 500
    assert results["listing"]["grpc"]["exact"]["n"] == 3
    assert results["hypothesis"]["examples"] == 10
    assert results["hypothesis"]["failure"] is None
    names = {t["target"].split(",")[0] for t in results["targets"]}
    assert "GET _tasks p50 / gRPC fan-out floor p50" in names
    assert any(t["target"].startswith("cancel of 16 descendants") for t in results["targets"])

    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("# tasksim benchmark results")
    assert "## Cancel propagation" in markdown
    assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
