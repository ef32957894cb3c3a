"""Scenario validation: every mistake is reported with its file, line, column and a clear message,
before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.scenario.loader import LoadError
from coordinator.scenario.schema import collect, load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parent.parent.parent


def errors(text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        load_scenario_text(text, "s.yaml")
    return [str(e) for e in info.value.errors]


def test_every_shipped_scenario_is_valid() -> None:
    files = collect([ROOT / "scenarios"])
    assert len(files) >= 10
    names = [load_scenario(f).name for f in files]
    assert len(set(names)) == len(names)
    assert names == [f.stem for f in files]


def test_a_minimal_scenario() -> None:
    s = load_scenario_text("name: tiny\nsteps:\n  - wait: 10ms\n")
    assert s.cluster.names() == ["coordinator", "node-1", "node-2", "node-3"]
    assert s.steps[0].kind == "wait" and s.steps[0].wait == 0.01
    assert s.default_seed() == load_scenario_text("name: tiny\nsteps: [{wait: 1s}]").default_seed()
    assert s.checks.always == ["nodes_accounted", "no_child_under_ban"]


def test_yaml_errors_duplicates_and_unknown_keys() -> None:
    [yaml_error] = errors("name: x\nsteps: [\n")
    assert yaml_error.startswith("s.yaml:3:1: invalid YAML: ")
    assert errors("name: x\nname: y\nsteps: [{wait: 1s}]\n") == ["s.yaml:2:1: duplicate key 'name'"]
    assert errors("name: x\nsteps: [{wait: 1s}]\nstepz: []\n") == [
        "s.yaml:3:1: stepz: unknown key 'stepz'"
    ]
    assert errors("steps: [{wait: 1s}]\n") == ["s.yaml:1:1: missing key 'name'"]
    assert errors("") == ["s.yaml:1:1: the file is empty"]


def test_bad_durations() -> None:
    assert errors("name: x\nsteps:\n  - wait: 5\n") == [
        "s.yaml:3:5: steps[0].wait: a duration is a string with a unit (micros, ms, s, m, h), e.g. '500ms'; got 5"
    ]
    assert errors(
        "name: x\ncluster: {fault_detection: {interval: soon}}\nsteps: [{wait: 1s}]\n"
    ) == [
        "s.yaml:2:29: cluster.fault_detection.interval: invalid duration 'soon': expected a number and a unit (micros, ms, s, m, h), e.g. '500ms', '1.5s'"
    ]


def test_one_thing_per_step() -> None:
    assert errors("name: x\nsteps:\n  - {wait: 1s, kill: node-1}\n") == [
        "s.yaml:3:5: steps[0]: a step does exactly one of start, request, partition, link, slow, kill, pause, resume, restart, heal, wait, await, wait_until (found: kill, wait)"
    ]
    assert errors("name: x\nsteps:\n  - {kill: node-1, for: 1s}\n") == [
        "s.yaml:3:5: steps[0]: 'for' and 'until' belong to a fault step (partition, link, slow)"
    ]


def test_unknown_nodes_everywhere() -> None:
    text = """name: x
cluster: {nodes: [{name: a}, {name: b, roles: [data]}]}
steps:
  - kill: c
  - link: {from: a, to: [b, z], action: blackhole}
  - partition: {groups: [[a], [q]]}
  - start: {node: a, action: t, children: [{node: y, action: u}, {nodes: "data:true"}]}
  - request: {path: /_tasks}
    expect: {node_failures: {w: x}, nodes: [a, v]}
  - pause: coordinator
"""
    assert errors(text) == [
        "s.yaml:4:5: steps[0].kill: unknown node 'c' (nodes: a, b)",
        "s.yaml:5:21: steps[1].link.to: unknown node 'z' (nodes: coordinator, a, b)",
        "s.yaml:6:31: steps[2].partition.groups[1]: unknown node 'q' (nodes: coordinator, a, b)",
        "s.yaml:7:33: steps[3].start.children: unknown node 'y' (nodes: coordinator, a, b)",
        "s.yaml:9:30: steps[4].expect.node_failures.w: unknown node 'w' (nodes: coordinator, a, b)",
        "s.yaml:9:48: steps[4].expect.nodes[1]: unknown node 'v' (nodes: coordinator, a, b)",
        "s.yaml:10:5: steps[5].pause: the coordinating node runs the scenario's REST API: it cannot be killed, paused or restarted",
    ]


def test_references_between_steps() -> None:
    text = """name: x
steps:
  - {id: cut, partition: {groups: [[node-1]]}, until: later}
  - {id: bg, request: {path: /_tasks}, background: true}
  - {await: cut}
  - {heal: bg}
  - {request: {path: "/_tasks/${work}"}}
  - {id: work, start: {node: node-1, action: t}}
  - {request: {path: "/_tasks/${nope.1}"}}
  - {id: bg, wait: 1s}
"""
    assert errors(text) == [
        "s.yaml:3:48: steps[0].until: no step with id 'later'",
        "s.yaml:5:6: steps[2].await: 'cut' is not the id of an earlier background request",
        "s.yaml:6:6: steps[3].heal: 'bg' is not the id of an earlier fault step",
        "s.yaml:7:16: steps[4].request.path: ${work} refers to a start step that comes later",
        "s.yaml:9:16: steps[6].request.path: ${nope.1}: no node or earlier start step named 'nope'",
        "s.yaml:10:6: steps[7].id: step id 'bg' is used by step 2 already",
    ]


def test_fault_specs_are_checked_too() -> None:
    assert errors("name: x\nsteps:\n  - link: {action: delay}\n") == [
        "s.yaml:3:5: steps[0].link: a 'delay' fault needs 'latency'"
    ]
    assert errors("name: x\nsteps:\n  - link: {action: loss, p: 2}\n") == [
        "s.yaml:3:26: steps[0].link.p: Input should be less than or equal to 1"
    ]
    [problem] = errors("name: x\nsteps:\n  - link: {action: blackhole, methods: [Nope]}\n")
    assert problem.startswith(
        "s.yaml:3:31: steps[0].link.methods: unknown method 'Nope': expected one of ListTasks, "
        "CancelTasks, GetTask, RunTask, StartTask, BanParent,"
    )
    assert "DeployModel" in problem and "(or the OpenSearch action they carry" in problem


def test_hosts_loopback_by_default_netns_on_request_and_never_on_the_sim_engine() -> None:
    assert load_scenario_text("name: x\nsteps: [{wait: 1s}]\n").cluster.hosts == "loopback"
    netns = load_scenario_text("name: x\ncluster: {hosts: netns}\nsteps: [{wait: 1s}]\n")
    assert netns.cluster.hosts == "netns"
    [bad] = errors("name: x\ncluster: {hosts: pods}\nsteps: [{wait: 1s}]\n")
    assert bad.startswith("s.yaml:2:11: cluster.hosts: Input should be 'loopback' or 'netns'")
    assert errors(
        "name: x\ndescription: why\nengine: sim\ncluster: {hosts: netns}\nsteps: [{wait: 1s}]\n"
    ) == [
        "s.yaml:3:1: engine: 'hosts: netns' runs node processes: it needs the real engine, not 'sim'"
    ]


def test_a_net_level_fault_needs_netns_hosts() -> None:
    text = "name: x\ncluster: {hosts: HOSTS}\nsteps:\n  - partition: {groups: [[node-1]], level: net}\n"
    assert errors(text.replace("HOSTS", "loopback")) == [
        "s.yaml:4:37: steps[0].partition.level: 'level: net' cuts packets between network "
        "namespaces: it needs 'cluster: {hosts: netns}'"
    ]
    step = load_scenario_text(text.replace("HOSTS", "netns")).steps[0]
    assert step.partition is not None and step.partition.level == "net"
