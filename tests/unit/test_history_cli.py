"""`tasksim check` and `tasksim timeline` as a user runs them on a history file: exit 0 when no
checker failed, 1 with a table of violations and their witnesses, 2 when the file cannot be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from simnode.history import header

ROOT = Path(__file__).resolve().parent.parent.parent
HEAD = header(engine="real", seed=3, nodes=[{"name": "node-1", "id": "n1"}])


def tasksim(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def write(path: Path, *events: dict[str, object]) -> Path:
    path.write_text("\n".join(json.dumps(x) for x in [HEAD, *events]) + "\n")
    return path


def reg(t: float, task: str) -> dict[str, object]:
    return {
        "t": t,
        "type": "task_registered",
        "node": "node-1",
        "task": task,
        "action": "indices:data/read/search",
        "parent": None,
        "cancellable": True,
    }


def test_check_passes_fails_and_refuses(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", reg(0.1, "n1:1"))
    done = tasksim("check", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed  task_lifecycle (checked 1)" in done.stdout
    assert "vacuous no_orphans (checked 0)" in done.stdout

    bad = write(tmp_path / "bad.jsonl", reg(0.1, "n1:1"), reg(0.2, "n1:1"))
    done = tasksim("check", str(bad))
    assert done.returncode == 1
    assert "FAILED  task_lifecycle" in done.stdout
    assert "node-1: task n1:1 registered while registered" in done.stdout
    assert "2: " in done.stdout and "3: " in done.stdout  # the witnesses' line numbers

    as_json = json.loads(tasksim("check", "--json", "-c", "task_lifecycle", str(bad)).stdout)
    assert list(as_json) == ["task_lifecycle"]
    assert as_json["task_lifecycle"]["violations"][0]["events"] == [0, 1]

    (tmp_path / "nope.jsonl").write_text('{"type":"kill"}\n')
    done = tasksim("check", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2 and "first line must be the tasksim-history header" in done.stdout
    assert tasksim("check", "-c", "no_such", str(good)).returncode == 2


def test_timeline_writes_one_self_contained_page(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", reg(0.1, "n1:1"))
    done = tasksim("timeline", str(source))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "run.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>run — tasksim timeline</title>" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
