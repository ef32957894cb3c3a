"""The timeline in a real headless browser (Debian's `chromium`): what a person sees — a lane per
node, a parent → child arrow from one lane to another, a fault band over the cut-off node, a
violation marker — is drawn by the page's own script, from a file with no network access.

`.ci/run` installs chromium and sets TASKSIM_REQUIRE_BROWSER=1, so CI never skips this test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from coordinator.history.checkers import check_all
from coordinator.history.timeline import write_timeline
from simnode.history import header, parse

BROWSER_TIMEOUT = 120.0
N1, N2 = "id-node-1", "id-node-2"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("TASKSIM_REQUIRE_BROWSER") == "1":
        pytest.fail("no chromium on PATH (apt-get install chromium)")
    pytest.skip("no chromium on PATH (CI installs it)")


def _run_browser(args: list[str], profile: Path) -> str:
    """Run chromium headless in its own session; kill the whole group whatever happens."""
    cmd = [
        _browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=BROWSER_TIMEOUT)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return out


class _Svg(HTMLParser):
    """Every element of the rendered DOM, as (tag, attributes, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, **{k: v or "" for k, v in attrs}, "text": ""}
        self.elements.append(element)
        self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1]["text"] += data


def _history() -> str:
    head = header(
        engine="real",
        seed=5,
        nodes=[
            {"name": "coordinator", "id": "id-c"},
            {"name": "node-1", "id": N1},
            {"name": "node-2", "id": N2},
        ],
    )
    events: list[dict[str, Any]] = [
        {
            "t": 0.1,
            "type": "task_registered",
            "node": "node-1",
            "task": f"{N1}:1",
            "action": "indices:data/write/reindex",
            "parent": None,
            "cancellable": True,
        },
        {
            "t": 0.2,
            "type": "task_registered",
            "node": "node-2",
            "task": f"{N2}:1",
            "action": "indices:data/read/search",
            "parent": f"{N1}:1",
            "cancellable": True,
        },
        {
            "t": 0.5,
            "type": "fault_start",
            "fault": "split",
            "kind": "partition",
            "nodes": ["node-2"],
        },
        {
            "t": 1.0,
            "type": "invoke",
            "op": 1,
            "method": "POST",
            "path": f"/_tasks/{N1}:1/_cancel?wait_for_completion=true",
        },
        {
            "t": 1.2,
            "type": "task_cancelled",
            "node": "node-1",
            "task": f"{N1}:1",
            "reason": "by user request",
        },
        {"t": 1.5, "type": "fault_end", "fault": "split"},
        {"t": 1.5, "type": "heal", "resumed": [], "restarted": []},
        {"t": 1.6, "type": "task_unregistered", "node": "node-1", "task": f"{N1}:1"},
        {
            "t": 1.7,
            "type": "ok",
            "op": 1,
            "method": "POST",
            "path": f"/_tasks/{N1}:1/_cancel?wait_for_completion=true",
            "status": 200,
            "digest": "0" * 16,
            "summary": {"tasks": [f"{N1}:1"]},
        },
        {
            "t": 1.8,
            "type": "rpc_send",
            "node": "node-1",
            "to": "node-2",
            "method": "BanParent",
            "call": 7,
            "verdict": "drop_request",
        },
        {
            "t": 1.9,
            "type": "rpc_drop",
            "node": "node-1",
            "to": "node-2",
            "method": "BanParent",
            "call": 7,
            "verdict": "drop_request",
        },
        # the child outlives the heal by far: no_orphans must flag it
        {"t": 9.0, "type": "task_unregistered", "node": "node-2", "task": f"{N2}:1"},
    ]
    return "\n".join(json.dumps(x) for x in [head, *events]) + "\n"


def test_timeline_in_a_headless_browser(tmp_path: Path) -> None:
    history = parse(_history().splitlines())
    results = check_all(history)
    assert results["no_orphans"].status == "failed"
    page = write_timeline(history, results, tmp_path / "timeline.html", title="browser test")
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text  # self-contained
    dom = _run_browser(
        ["--virtual-time-budget=5000", "--window-size=1400,700", "--dump-dom", page.as_uri()],
        tmp_path / "profile",
    )
    parser = _Svg()
    parser.feed(dom)
    elements = parser.elements
    body = next(e for e in elements if e["tag"] == "body")
    assert body.get("data-ready") == "1", "the page's script did not finish"

    def of_class(tag: str, cls: str) -> list[dict[str, Any]]:
        return [e for e in elements if e["tag"] == tag and cls in e.get("class", "").split()]

    # the lanes: the clients lane, then one per node, in the header's order
    labels = [e["text"] for e in of_class("text", "lane-label")]
    assert labels == ["clients", "coordinator", "node-1", "node-2"]
    lane_y = {e["data-lane"]: float(e["y"]) for e in of_class("text", "lane-label")}
    # the reindex on node-1 points at its child on node-2
    [arrow] = of_class("line", "arrow")
    assert (arrow["data-from"], arrow["data-to"]) == (f"{N1}:1", f"{N2}:1")
    assert abs(float(arrow["y1"]) - lane_y["node-1"]) < 30
    assert abs(float(arrow["y2"]) - lane_y["node-2"]) < 30
    assert float(arrow["x2"]) > float(arrow["x1"])
    # the partition is a band over node-2 only, from 0.5s to 1.5s
    [band] = of_class("rect", "fault")
    assert band["data-why"] == "fault split (partition)"
    assert float(band["y"]) < lane_y["node-2"] < float(band["y"]) + float(band["height"])
    spans = {e["data-task"]: e for e in of_class("rect", "span") if "cancelled" not in e["class"]}
    root = spans[f"{N1}:1"]
    assert float(root["x"]) < float(band["x"]) < float(root["x"]) + float(root["width"])
    # the cancelled part of the root is hatched
    assert [e["data-task"] for e in of_class("rect", "cancelled")] == [f"{N1}:1"]
    # the dropped ban is a dashed red arrow with a cross
    [rpc] = of_class("line", "rpc")
    assert "dropped" in rpc["class"] and rpc["data-method"] == "BanParent"
    assert of_class("path", "drop-x")
    # the orphan is marked where no_orphans found it, with its explanation
    markers = of_class("path", "violation")
    assert [m["data-checker"] for m in markers] == ["no_orphans"]
    title = elements[elements.index(markers[0]) + 1]  # its tooltip
    assert title["tag"] == "title" and "5s after the last heal" in title["text"]
    # the summary names every checker's outcome
    assert "no_orphans" in dom and "st-failed" in dom and "st-vacuous" in dom


def test_a_long_run_is_summed_up_until_zoomed(tmp_path: Path) -> None:
    """Thousands of tasks in view are drawn as live-task counts per lane, not cut off."""
    head = header(engine="real", seed=1, nodes=[{"name": "node-1", "id": N1}])
    events = []
    for k in range(6000):
        task = f"{N1}:{k}"
        events.append(
            {
                "t": k * 0.001,
                "type": "task_registered",
                "node": "node-1",
                "task": task,
                "action": "a",
                "parent": None,
                "cancellable": True,
            }
        )
        events.append(
            {"t": k * 0.001 + 0.05, "type": "task_unregistered", "node": "node-1", "task": task}
        )
    history = parse(
        [json.dumps(head), *(json.dumps(e) for e in sorted(events, key=lambda e: e["t"]))]
    )
    page = write_timeline(history, check_all(history), tmp_path / "long.html")
    dom = _run_browser(
        ["--virtual-time-budget=5000", "--window-size=1400,700", "--dump-dom", page.as_uri()],
        tmp_path / "profile",
    )
    parser = _Svg()
    parser.feed(dom)
    density = [e for e in parser.elements if e["tag"] == "rect" and "density" in e.get("class", "")]
    spans = [
        e for e in parser.elements if e["tag"] == "rect" and e.get("class", "").startswith("span")
    ]
    assert density and not spans
    xs = sorted(float(e["x"]) for e in density)
    assert xs[-1] - xs[0] > 1000  # the whole run, not its first seconds
    assert "6000 tasks in view" in dom and "zoom in" in dom
