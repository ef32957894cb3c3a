"""`python -m bench.netns_hosts` end to end with tiny counts (figures are not checked here: speed
belongs in bench/), and its one-line refusal where namespaces cannot be made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import netns_hosts
from coordinator.engine import netns

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_bench_times_both_hosts_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "nh.json"
    tiny = ["--sizes", "2", "-n", "6", "--warmup", "1", "--total", "8", "--conns", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.netns_hosts", *tiny, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    [size] = result["sizes"]
    assert size["nodes"] == 2 and size["nodes_answering"] == {"loopback": 3, "netns": 3}
    assert size["first_node_address"]["loopback"].startswith("127.0.0.1:")
    assert not size["first_node_address"]["netns"].startswith("127.")
    assert {k: v["n"] for k, v in size["latency_ms"].items()} == {"loopback": 6, "netns": 6}
    table = out.with_suffix(".md").read_text()
    assert table.startswith("# `GET _tasks` over veth hosts vs loopback")
    assert "| 2 | netns (`" in table


def test_without_namespaces_it_says_why_in_one_line_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(netns, "netns_problem", lambda: "--hosts netns needs root (...)")
    assert netns_hosts.main(["--out", str(tmp_path / "x.json")]) == 2
    assert capsys.readouterr().err == "bench.netns_hosts: --hosts netns needs root (...)\n"
    assert not (tmp_path / "x.json").exists()
