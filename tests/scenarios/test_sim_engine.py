"""The scenarios on the sim engine: every shipped scenario passes in a simulated world, a seed replays
byte for byte (in this process and across processes), sweeps report each failing seed with the
command that replays it, and a scenario that needs one engine is skipped on the other."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from coordinator.scenario import cli as scenario_cli
from coordinator.scenario import sweep
from coordinator.scenario.report import Terminal
from coordinator.scenario.runner import ScenarioResult, run_on_sim
from coordinator.scenario.schema import load_scenario

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
LARGE = ROOT / "scenarios" / "large" / "cancel-across-1000-nodes.yaml"
HUNG = ROOT / "scenarios" / "hung-node-list-timeout.yaml"
LOSSY = ROOT / "scenarios" / "lossy-links-seeded.yaml"


def tasksim(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    environment = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT), COLUMNS="250")
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=timeout,
    )


def explain(result: ScenarioResult) -> str:
    return "\n".join(
        [result.error or "", *result.failures, f"repro: {result.repro}"]
        + [f"{s.status:>7} {s.label} {s.detail}" for s in result.steps]
    )


def assert_clean_pass(result: ScenarioResult) -> None:
    assert result.status == "passed", explain(result)
    assert result.engine == "sim"
    assert result.heal is not None and result.heal["acknowledged"], result.heal
    assert result.faults["active"] == []
    assert set(result.faults["applied"].values()) == {result.faults["version"]}
    assert result.checks["always"]["no_child_under_ban"]["samples"] > 0
    assert result.pids == []  # no process of its own


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_passes_on_the_sim_engine(path: Path) -> None:
    result, _ = run_on_sim(load_scenario(path), path)
    assert_clean_pass(result)
    assert result.repro == f"tasksim run --engine sim --seed {result.seed} {path}"


def test_a_1000_node_scenario_runs_on_the_sim_engine() -> None:
    scenario = load_scenario(LARGE)
    assert len(scenario.cluster.node_names()) == 1000
    result, _ = run_on_sim(scenario, LARGE)
    assert_clean_pass(result)
    listed = result.steps[3]
    assert "node-991=receive_timeout_transport_exception" in listed.detail


def test_durations_are_virtual_and_a_seed_replays_byte_for_byte_in_one_process() -> None:
    scenario = load_scenario(HUNG)
    first, trace_a = run_on_sim(scenario, HUNG, record=True)
    second, trace_b = run_on_sim(scenario, HUNG, record=True)
    assert_clean_pass(first)
    assert trace_a is not None and trace_a == trace_b
    assert first == second  # every duration, to the last bit: virtual time
    # the list with `timeout=1s` against the paused node answers after exactly its timeout
    timed = next(s for s in first.steps if "timeout=1s" in s.label)
    assert timed.detail.startswith("HTTP 200 in 1.00"), timed.detail
    # the trace holds the REST exchanges and the network's messages, in order
    lines = trace_a.splitlines()
    assert any(" rest > GET /_tasks?timeout=1s" in line for line in lines)
    assert any(" net request coordinator->node-2 ListTasks" in line for line in lines)
    other, trace_c = run_on_sim(scenario, HUNG, seed=first.seed + 1, record=True)
    assert other.status == "passed" and trace_c != trace_a  # another seed, another run


def test_a_sweep_checks_determinism_across_worker_processes(tmp_path: Path) -> None:
    done = tasksim(
        "run",
        "--engine",
        "sim",
        "--seeds",
        "3",
        "-j",
        "2",
        "--check-determinism",
        "--report-dir",
        str(tmp_path),
        str(HUNG),
        str(ROOT / "scenarios" / "partition-during-cancel.yaml"),
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "2 scenario(s) × 3 seed(s) × 2 runs (determinism check) on 2 worker process(es)" in out
    assert "6 (scenario, seed) pair(s), 0 failing, 12 run(s)" in out
    assert out.count("3/3") == 2, out  # the replays column
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["engine"] == "sim" and report["python_hash_seed"] == "0"
    seeds = sorted(s["seed"] for s in report["scenarios"] if s["name"] == "hung-node-list-timeout")
    assert seeds == [101, 102, 103]
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    assert "hung-node-list-timeout[seed=102]" in {c.get("name") for c in cases}


def test_a_failing_seed_is_reported_with_the_command_that_replays_it(tmp_path: Path) -> None:
    # lossy-links-seeded names the nodes whose requests seed 1313 loses: other seeds lose others,
    # which is why it says `sweep: false`; without it a sweep finds the seeds it fails under
    anyseed = tmp_path / "lossy-any-seed.yaml"
    anyseed.write_text(LOSSY.read_text().replace("sweep: false\n", ""))
    done = tasksim(
        "run", "--engine", "sim", "--seeds", "2", "--report-dir", str(tmp_path), str(anyseed)
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "seed 1313" in out and "seed 1314:" in out
    replay = f"replay: tasksim run --engine sim --seed 1314 {anyseed}"
    assert replay in out, out
    # The failing seed ran once more with its history: the failure's own timeline is on disk.
    replayed = tmp_path / "lossy-links-seeded" / "seed-1314"
    assert f"seed 1314 replayed with its history (failed): {replayed / 'timeline.html'}" in out
    assert (replayed / "history.jsonl").is_file() and (replayed / "timeline.html").is_file()
    assert not (tmp_path / "lossy-links-seeded" / "seed-1313").exists()  # passing: no history
    line = next(x for x in out.splitlines() if "seed 1314:" in x)
    problem = line.split("seed 1314:", 1)[1].strip()
    command = shlex.split(replay.removeprefix("replay: "))[1:]
    for _ in range(2):  # the replay fails, the same way, every time
        again = tasksim(*command, "--report-dir", str(tmp_path / "replay"))
        assert again.returncode == 1, again.stdout + again.stderr
        failures = json.loads((tmp_path / "replay" / "report.json").read_text())["scenarios"]
        assert failures[0]["seed"] == 1314
        assert failures[0]["failures"][0] == problem


def test_a_scenario_of_one_seed_runs_once_in_a_sweep(tmp_path: Path) -> None:
    done = tasksim(
        "run",
        "--engine",
        "sim",
        "--seeds",
        "3",
        "--report-dir",
        str(tmp_path),
        str(LOSSY),
        str(HUNG),
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    seeds = {
        (s["name"], s["seed"])
        for s in json.loads((tmp_path / "report.json").read_text())["scenarios"]
    }
    assert seeds == {
        ("lossy-links-seeded", 1313),
        ("hung-node-list-timeout", 101),
        ("hung-node-list-timeout", 102),
        ("hung-node-list-timeout", 103),
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(LOSSY.read_text().replace("seed: 1313\n", ""))
    done = tasksim("run", "--engine", "sim", str(bad))
    assert done.returncode == 2
    assert "'sweep: false' is for expectations of one seed: give the 'seed'" in done.stdout


def test_the_determinism_check_prints_the_first_difference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = iter(range(100))
    real = sweep.run_on_sim

    def leaky(*args: Any, **kwargs: Any) -> tuple[ScenarioResult, str | None]:
        result, trace = real(*args, **kwargs)  # a run that leaks something outside the seed
        return result, (trace or "") + f"a wall-clock reading {next(runs)}\n"

    monkeypatch.setattr(sweep, "run_on_sim", leaky)
    loaded = [(HUNG, load_scenario(HUNG))]
    code = scenario_cli.run_sweep(
        loaded,
        seed=None,
        seeds=1,
        jobs=1,
        check_determinism=True,
        report_dir=tmp_path,
        terminal=Terminal(),
    )
    out = capsys.readouterr().out
    assert code == scenario_cli.EXIT_FAILED
    assert "not deterministic: the two runs' traces differ" in out
    assert "the traces differ at line" in out
    assert "-a wall-clock reading 0" in out and "+a wall-clock reading 1" in out
    assert f"replay: tasksim run --engine sim --seed 101 {HUNG}" in out


def test_the_trace_is_the_same_in_two_fresh_processes(tmp_path: Path) -> None:
    program = (
        "import sys; from coordinator.scenario.sweep import Job, run_job; "
        f"done = run_job(Job({str(HUNG)!r}, 105, 0), True); sys.stdout.write(done.trace)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    traces = [
        subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert traces[0] and traces[0] == traces[1]


def needs(engine: str, tmp_path: Path) -> Path:
    text = HUNG.read_text().replace(
        "name: hung-node-list-timeout",
        f"name: needs-{engine}\nengine: {engine}",
    )
    path = tmp_path / f"needs-{engine}.yaml"
    path.write_text(text)
    return path


def test_a_scenario_that_needs_the_real_engine_is_skipped_on_sim(tmp_path: Path) -> None:
    path = needs("real", tmp_path)
    reason = load_scenario(path).description.split(".")[0]
    done = tasksim("run", "--engine", "sim", "--report-dir", str(tmp_path / "r"), str(path))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "SKIP" in out and "needs the real engine: " + reason in out
    assert "0 passed, 0 failed, 0 error(s), 1 skipped" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (only,) = report["scenarios"]
    assert only["status"] == "skipped" and only["reason"].startswith("needs the real engine")
    assert report["summary"]["skipped"] == 1
    skipped = ET.parse(tmp_path / "r" / "junit.xml").getroot().find("testsuite/testcase/skipped")
    assert skipped is not None and "needs the real engine" in (skipped.get("message") or "")


def test_a_scenario_that_needs_the_sim_engine_is_skipped_on_real(tmp_path: Path) -> None:
    done = tasksim("run", "--report-dir", str(tmp_path), str(LARGE))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "SKIP" in out and "needs the sim engine: A reindex on node-1" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scenarios"][0]["pids"] == []  # no cluster was started


def test_the_node_limit_depends_on_the_engine(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(HUNG.read_text().replace("nodes: 3", "nodes: 17"))
    done = tasksim("run", "--engine", "sim", str(big))
    assert done.returncode == 2, done.stdout
    expected = "1 to 16 nodes on the real engine, not 17 (up to 10000 with 'engine: sim')"
    assert expected in done.stdout
    big.write_text(big.read_text().replace("tags:", "engine: sim\ntags:"))
    assert load_scenario(big).cluster.node_names()[-1] == "node-17"
    huge = tmp_path / "huge.yaml"
    huge.write_text(big.read_text().replace("nodes: 17", "nodes: 10001"))
    done = tasksim("run", "--engine", "sim", str(huge))
    assert done.returncode == 2, done.stdout
    assert "(up to 10000 on the sim engine), not 10001" in done.stdout


def test_an_engine_needs_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "why.yaml"
    text = HUNG.read_text()
    head, _, rest = text.partition("tags:")
    name_line = head.splitlines()[0]
    path.write_text(f"{name_line}\nengine: real\ntags:{rest}")
    done = tasksim("run", "--engine", "sim", str(path))
    assert done.returncode == 2, done.stdout
    assert "engine: a scenario that needs one engine says why in its 'description'" in done.stdout


def test_sweep_options_need_the_sim_engine() -> None:
    done = tasksim("run", "--seeds", "3", str(HUNG))
    assert done.returncode == 2
    assert "--seeds, -j and --check-determinism need --engine sim" in done.stderr


def test_the_cli_fixes_the_hash_seed_for_the_sim_engine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["PYTHONHASHSEED"] = "random"
    done = tasksim("run", "--engine", "sim", "--report-dir", str(tmp_path), str(HUNG), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["python_hash_seed"] == "0"


def test_a_crash_under_a_seed_is_an_error_with_its_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    from coordinator.scenario import runner

    async def crash(self: runner.ScenarioRun) -> None:
        raise RuntimeError("a bug that only this seed finds")

    monkeypatch.setattr(runner.ScenarioRun, "_run_on_cluster", crash)
    result, trace = run_on_sim(load_scenario(HUNG), HUNG, seed=7, record=True)
    assert result.status == "error"
    assert (
        result.error == "the simulated run crashed: RuntimeError('a bug that only this seed finds')"
    )
    assert "a bug that only this seed finds" in result.failures[-1]
    assert result.repro == f"tasksim run --engine sim --seed 7 {HUNG}"
    assert trace is not None and '"status": "error"' in trace


def test_a_sim_run_writes_the_history_a_real_run_writes_and_a_killed_node_says_nothing(
    tmp_path: Path,
) -> None:
    """`tasksim run --engine sim` records the cluster's history, checks it and draws its timeline,
    as a real run does. A killed node records nothing after its `record_end` (on the sim engine its
    tasks' cleanup still runs in-process: before the fix, the lifecycle checker saw tasks
    unregistered by a dead node and failed this scenario)."""
    from simnode.history import read

    file = ROOT / "scenarios" / "node-killed-during-list.yaml"
    result, _ = run_on_sim(load_scenario(file), file, history_dir=tmp_path)
    assert result.status == "passed", (result.error, result.failures)
    assert result.history == str(tmp_path / "history.jsonl")
    assert (tmp_path / "timeline.html").stat().st_size > 0
    history = read(tmp_path / "history.jsonl")
    assert history.head["engine"] == "sim" and history.head["seed"] == result.seed
    checks = result.checks["history"]
    assert checks["task_lifecycle"]["status"] == "passed", checks
    gone = False
    for event in history.events:
        if event.get("node") != "node-2":
            continue
        if event["type"] == "record_end":
            gone = True
        elif event["type"] == "record_start":
            gone = False
        elif event["type"].startswith(("task_", "ban_")):  # what the node itself records
            assert not gone, f"node-2 recorded {event['type']} while killed: {event}"
    assert any(e["type"] == "record_end" and e.get("node") == "node-2" for e in history.events)
