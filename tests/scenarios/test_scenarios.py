"""Every scenario in scenarios/ runs against its own real cluster and passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from coordinator.scenario.runner import run_scenario
from coordinator.scenario.schema import load_scenario

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_there_are_at_least_ten_scenarios() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_passes(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    result = trio.run(lambda: run_scenario(scenario, path, log_dir=tmp_path))
    report = "\n".join(
        [result.error or "", *result.failures, f"repro: {result.repro}"]
        + [f"{s.status:>7} {s.label} {s.detail}" for s in result.steps]
    )
    assert result.status == "passed", report
    assert result.heal is not None and result.heal["acknowledged"], result.heal
    assert result.faults["active"] == []
    assert set(result.faults["applied"].values()) == {result.faults["version"]}
    assert result.checks["always"]["no_child_under_ban"]["samples"] > 0
    # its own history was recorded and checked (a violation would have failed it above)
    assert result.history == str(tmp_path / scenario.name / "history.jsonl")
    assert result.checks["history"]["task_lifecycle"]["status"] == "passed"
