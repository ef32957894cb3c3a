"""The scenario loader refuses hostile or broken files with located errors (found by
tests/properties/test_scenario_fuzz.py): unknown tags, values PyYAML cannot build, characters YAML
forbids, recursive aliases, alias bombs, deep nesting, bytes that are not UTF-8."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordinator.scenario.loader import MAX_VALUES, LoadError, load, loads


def errors(text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        loads(text, "s.yaml")
    return [str(e) for e in info.value.errors]


def test_tags_and_values_pyyaml_cannot_build() -> None:
    assert errors("!0") == [
        "s.yaml:1:1: invalid value: could not determine a constructor for the tag '!0'"
    ]
    assert errors("a: !!int abc") == [
        "s.yaml:1:4: a: invalid value: invalid literal for int() with base 10: 'abc'"
    ]
    assert errors("a: 1\nb: !!timestamp 2020-13-45") == [
        "s.yaml:2:4: b: invalid value: month must be in 1..12"
    ]
    assert errors("<<: 5") == [
        "s.yaml:1:1: invalid merge key: expected a mapping or list of mappings for merging, but found scalar"
    ]
    assert errors("{? [a]: b}") == ["s.yaml:1:4: a key must be a plain scalar"]


def test_characters_yaml_forbids_are_located() -> None:
    assert errors("name: x\nsteps: [\x00]") == [
        "s.yaml:2:9: invalid YAML: unacceptable character #x0000: special characters are not allowed"
    ]


def test_recursive_aliases_bombs_and_deep_nesting() -> None:
    assert errors("a: &a [*a]") == [
        "s.yaml:1:4: a[0]: a recursive alias (a value that contains itself)"
    ]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):  # 10^9 values once expanded
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)}" + f", *{chr(96 + i)}" * 9 + "]\n"
    started = time.monotonic()
    [error] = errors(bomb)
    assert time.monotonic() - started < 5
    assert error.endswith(f"the document holds more than {MAX_VALUES} values (aliases included)")
    assert errors("[" * 3000 + "]" * 3000) == [
        "s.yaml:1:1: the document nests deeper than 200 levels"
    ]
    assert errors("a: " + "[" * 300 + "]" * 300) == [
        "s.yaml:1:204: a[0][0]: the document nests deeper than 200 levels"
    ]


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: x\nsteps: [\xff]\n")
    with pytest.raises(LoadError) as info:
        load(path)
    assert [str(e) for e in info.value.errors] == [f"{path}:2:9: not UTF-8: byte 0xff"]
