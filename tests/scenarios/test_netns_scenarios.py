"""The `hosts: netns` scenarios (scenarios/netns/) as files: valid, each with a `level: net` fault
and a description that says what differs from the transport level; skipped, with a one-line reason,
on the sim engine and where namespaces cannot be made. Running them is tests/netns/test_scenarios.py
(root only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from coordinator.engine import netns
from coordinator.scenario.runner import netns_unavailable, run_on_sim, run_scenario
from coordinator.scenario.schema import collect, load_scenario

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = collect([ROOT / "scenarios" / "netns"])


def test_there_are_at_least_four_netns_scenarios_and_each_says_what_differs() -> None:
    assert len(SCENARIOS) >= 4
    for path in SCENARIOS:
        scenario = load_scenario(path)
        assert scenario.name == f"netns-{path.stem}"
        assert scenario.cluster.hosts == "netns"
        assert scenario.cluster.to_config(1).hosts == "netns"  # what `tasksim up --config` runs
        levels = [getattr(s.fault, "level", None) for s in scenario.steps if s.fault is not None]
        assert "net" in levels, path
        assert re.search(r"transport[- ]level", " ".join(scenario.description.split())), path


def test_on_the_sim_engine_a_netns_scenario_is_skipped_with_its_reason() -> None:
    result, _ = run_on_sim(load_scenario(SCENARIOS[0]), SCENARIOS[0])
    assert result.status == "skipped"
    assert result.reason == (
        "needs hosts: netns (node processes in network namespaces), not the sim engine"
    )
    assert {s.status for s in result.steps} == {"skipped"}


def test_where_namespaces_cannot_be_made_it_is_skipped_and_nothing_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = "--hosts netns needs the 'nft' command (Debian package nftables)"
    monkeypatch.setattr(netns, "netns_problem", lambda: problem)
    assert netns_unavailable() == "hosts: netns needs the 'nft' command (Debian package nftables)"
    result = trio.run(lambda: run_scenario(load_scenario(SCENARIOS[0]), SCENARIOS[0]))
    assert result.status == "skipped" and result.reason == netns_unavailable()
    assert result.pids == [] and result.url == ""  # no cluster was started
