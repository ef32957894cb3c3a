"""`capture` in scenarios: a request or wait_until step keeps a value of its answer (an ML task id,
a model id) for the templates of later steps; misuse is a located validation error."""

from __future__ import annotations

import pytest

from coordinator.scenario.expect import Context, capture, render
from coordinator.scenario.loader import LoadError
from coordinator.scenario.schema import load_scenario_text

REGISTER = """name: x
steps:
  - request: {method: POST, path: /_plugins/_ml/models/_register, body: {name: m}}
    capture: {register: task_id}
  - wait_until:
      request: {path: "/_plugins/_ml/tasks/${register}"}
      expect: {json: {state: COMPLETED}}
      within: 5s
    capture: {model: model_id}
  - request: {method: POST, path: "/_plugins/_ml/models/${model}/_deploy"}
"""


def errors(text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        load_scenario_text(text, "s.yaml")
    return [str(e) for e in info.value.errors]


def test_captured_values_feed_later_templates() -> None:
    s = load_scenario_text(REGISTER)
    assert s.steps[0].capture == {"register": "task_id"}
    assert s.steps[1].capture == {"model": "model_id"}
    ctx = Context({"node-1": "abc"}, {}, {"register": "T1", "model": "M1"})
    assert render("/_plugins/_ml/tasks/${register}", ctx) == "/_plugins/_ml/tasks/T1"
    assert render({"node_ids": ["${node-1}"], "m": "${model}"}, ctx) == {
        "node_ids": ["abc"],
        "m": "M1",
    }


def test_a_capture_used_before_it_is_made() -> None:
    text = REGISTER.replace('path: "/_plugins/_ml/tasks/${register}"', 'path: "/x/${model}"')
    assert errors(text) == [
        "s.yaml:6:17: steps[1].wait_until.request.path: ${model} is captured by a step that "
        "comes later"
    ]


def test_capture_belongs_to_requests_and_wait_until() -> None:
    [error] = errors("name: x\nsteps:\n  - wait: 1s\n    capture: {a: b}\n")
    assert error.startswith("s.yaml:3:5: steps[0]: 'capture' belongs to a 'request'")
    [error] = errors(
        "name: x\nsteps:\n  - request: {path: /}\n    background: true\n    capture: {a: b}\n"
    )
    assert "'capture' belongs to a 'request' (not in the background)" in error


def test_capture_names() -> None:
    twice = "name: x\nsteps:\n" + "  - request: {path: /}\n    capture: {a: b}\n" * 2
    assert errors(twice) == ["s.yaml:6:15: steps[1].capture.a: 'a' is captured by step 1 already"]
    [error] = errors("name: x\nsteps:\n  - request: {path: /}\n    capture: {node-1: b}\n")
    assert "capture name 'node-1' is a node name or a step id" in error
    [error] = errors("name: x\nsteps:\n  - request: {path: /}\n    capture: {Bad Name: b}\n")
    assert error.startswith("s.yaml:4:15: steps[0].capture.Bad Name: String should match pattern")


def test_capture_takes_one_scalar() -> None:
    body = {"task_id": "T1", "n": 3, "ok": True, "list": [1, 2], "obj": {"a": 1}}
    assert capture(body, "task_id") == "T1"
    assert capture(body, "n") == "3"
    assert capture(body, "ok") == "true"
    assert capture(body, "list.1") == "2"
    for path in ("missing", "list", "obj", "list.*"):
        with pytest.raises(ValueError, match="expected one value at"):
            capture(body, path)
