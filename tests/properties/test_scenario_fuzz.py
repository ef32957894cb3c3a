"""Fuzzing the scenario loader (coordinator/scenario/loader.py + schema.py): whatever a file holds —
malformed YAML, wrong types, unknown keys, hostile YAML (tags, recursive aliases, deep nesting,
bad timestamps, merge keys), random mutations of the shipped scenarios, bytes that are not UTF-8 —
loading it either gives a Scenario or raises `LoadError`, whose every error names the file, a line
and column inside it, and a message. Never another exception, never a hang.

`tasksim up --config` reads the same files through `load_cluster_section`: same property.
"""

from __future__ import annotations

import datetime
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.scenario.loader import LoadError, ScenarioError
from coordinator.scenario.schema import (
    Scenario,
    load_cluster_section,
    load_scenario,
    load_scenario_text,
)
from tests.harness import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
TEXTS = [p.read_text() for p in SCENARIOS]
FILE = "fuzz.yaml"

# Characters that mean something to YAML, and snippets that are hard on a loader.
YAML_CHARS = ":-{}[],'\"&*!|>#%@`?\t\n ~\\"
HOSTILE = [
    "&a [*a]",  # a recursive alias
    "&a {x: *a}",
    "[" * 200 + "]" * 200,  # deep nesting
    "{a: " * 200 + "1" + "}" * 200,
    "!!python/object:os.system ls",
    "!!python/name:os.system",
    "!!binary not-base64!",
    "!!int abc",
    "!!float x",
    "!!timestamp 2020-13-45",
    "2020-13-45",
    "2001-02-29 25:61:61",
    "<<: 5",
    "<<: [1, 2]",
    "<<: *missing",
    "? [a, b]\n: c",
    "? {a: b}\n: c",
    "!custom tag",
    "%YAML 9.9\n---\na: 1",
    "--- a\n--- b",
    ".nan",
    "-.inf",
    "0x_",
    "99999999999999999999999999999999",
    "1e999",
    "\ufeffname: x",
    "\x00",
    "\x85",
    "'unterminated",
    '"\\xzz"',
    "a: b: c",
    "- a\nb: c",
    "\t- tab",
]


def check_load_error(e: LoadError, text: str) -> None:
    assert e.errors, "a LoadError without errors"
    lines = text.count("\n") + 2
    for error in e.errors:
        assert isinstance(error, ScenarioError)
        assert error.file == FILE
        assert isinstance(error.message, str) and error.message.strip(), error
        assert error.line is not None and error.column is not None, f"not located: {error}"
        assert 1 <= error.line <= lines, f"line {error.line} outside the file: {error}"
        assert error.column >= 1, error
        assert str(error).startswith(f"{FILE}:{error.line}:{error.column}:"), str(error)


def loads_cleanly(text: str) -> None:
    try:
        scenario = load_scenario_text(text, FILE)
    except LoadError as e:
        check_load_error(e, text)
    else:
        assert isinstance(scenario, Scenario)
        for i, step in enumerate(scenario.steps):
            assert step.label(i)


# -- strategies -------------------------------------------------------------------------------


def text_mutation(text: str, rnd: random.Random) -> str:
    lines = text.split("\n")
    kind = rnd.randrange(8)
    i = rnd.randrange(len(lines))
    if kind == 0:  # delete a span of characters
        a = rnd.randrange(len(text) + 1)
        return text[:a] + text[a + rnd.randrange(1, 20) :]
    if kind == 1:  # insert YAML-significant characters
        a = rnd.randrange(len(text) + 1)
        return (
            text[:a]
            + "".join(rnd.choice(YAML_CHARS) for _ in range(rnd.randrange(1, 5)))
            + text[a:]
        )
    if kind == 2:  # duplicate a line
        return "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    if kind == 3:  # swap two lines
        j = rnd.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind == 4:  # change a line's indentation
        lines[i] = " " * rnd.randrange(0, 9) + lines[i].lstrip()
        return "\n".join(lines)
    if kind == 5:  # truncate
        return text[: rnd.randrange(len(text) + 1)]
    if kind == 6:  # a hostile snippet in the place of a value
        line = lines[i]
        head, sep, _ = line.partition(": ")
        lines[i] = (
            head + ": " + rnd.choice(HOSTILE).replace("\n", " ") if sep else rnd.choice(HOSTILE)
        )
        return "\n".join(lines)
    lines.insert(i, rnd.choice(HOSTILE))  # a hostile line
    return "\n".join(lines)


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 4))):
        text = text_mutation(text, rnd)
    return text


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1s", "-1s", "5 seconds", "node-9", "coordinator", "${nope}", "${node-1}"]),
    st.dates(),
    st.datetimes(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def mutate_data(doc: Any, rnd: random.Random, value: Any, key: str) -> Any:
    """Replace a random node of `doc` with `value`, add `key`, or delete a key."""
    if isinstance(doc, dict) and doc:
        k = rnd.choice(list(doc))
        action = rnd.randrange(4)
        if action == 0:
            doc[k] = value
        elif action == 1:
            doc[key] = value
        elif action == 2:
            del doc[k]
        else:
            doc[k] = mutate_data(doc[k], rnd, value, key)
        return doc
    if isinstance(doc, list) and doc:
        i = rnd.randrange(len(doc))
        if rnd.randrange(3) == 0:
            doc[i] = value
        else:
            doc[i] = mutate_data(doc[i], rnd, value, key)
        return doc
    return value


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    doc = yaml.safe_load(draw(st.sampled_from(TEXTS)))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 3))):
        doc = mutate_data(doc, rnd, draw(VALUES), draw(st.text(min_size=1, max_size=10)))
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# -- properties -------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(YAML_CHARS + "abcnst019 "), max_size=200))
def test_arbitrary_text_gives_only_located_errors(text: str) -> None:
    loads_cleanly(text)


@FUZZ
@given(text=mutated_texts())
def test_mutated_scenarios_give_only_located_errors(text: str) -> None:
    loads_cleanly(text)


@FUZZ
@given(text=mutated_documents())
def test_wrong_types_and_unknown_keys_give_only_located_errors(text: str) -> None:
    loads_cleanly(text)


@settings(deadline=None, max_examples=len(HOSTILE) * 3)
@given(
    snippet=st.sampled_from(HOSTILE),
    where=st.sampled_from(["{}", "name: {}\nsteps: [{{wait: 1s}}]", "name: x\nsteps:\n  - {}"]),
)
def test_hostile_yaml_gives_only_located_errors(snippet: str, where: str) -> None:
    loads_cleanly(where.format(snippet))


def test_an_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)}" + f", *{chr(96 + i)}" * 9 + "]\n"
    started = datetime.datetime.now()
    loads_cleanly("name: x\nsteps: [{wait: 1s}]\n" + bomb)
    assert (datetime.datetime.now() - started).total_seconds() < 5


@settings(deadline=None, max_examples=50)
@given(data=st.binary(max_size=200), keep=st.sampled_from(TEXTS))
def test_files_that_are_not_utf8_give_located_errors(
    tmp_path_factory: Any, data: bytes, keep: str
) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / FILE
    path.write_bytes(keep.encode()[:100] + data)
    for load in (load_scenario, load_cluster_section):
        try:
            load(path)
        except LoadError as e:
            for error in e.errors:
                assert error.file == str(path)
                assert error.message.strip()
                assert error.line is not None, f"not located: {error}"


@FUZZ
@given(text=mutated_texts() | mutated_documents())
def test_cluster_sections_give_only_located_errors(tmp_path_factory: Any, text: str) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / FILE
    path.write_text(text)
    try:
        load_cluster_section(path)
    except LoadError as e:
        for error in e.errors:
            assert error.file == str(path) and error.message.strip()
            assert error.line is not None, f"not located: {error}"
