"""`Regex.simpleMatch` (simnode/regex.py): the strings it matches, and the work it does.

Issue 14: a regex translation of `**********Z` backtracked exponentially and one
`GET _tasks?actions=**********Z` held the coordinator's loop for 12.7 s. The work bound here is
counted, not timed: every search the matcher makes goes through the value's own methods, and a
`str` subclass counts the characters each one spans.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.testing.model import simple_match as model_match
from simnode.regex import simple_match, simple_match_any


def regex_oracle(pattern: str, value: str) -> bool:
    """The old translation: right, but exponential; only for small inputs."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("cluster:monitor/tasks/lists", "cluster:monitor/tasks/lists", True),
        ("cluster:monitor/tasks/lists", "cluster:monitor/tasks/lists[n]", False),
        ("cluster:*", "cluster:monitor/tasks/lists", True),
        ("*lists", "cluster:monitor/tasks/lists", True),
        ("*tasks*", "cluster:monitor/tasks/lists", True),
        ("cluster:*/lists", "cluster:monitor/tasks/lists", True),
        ("*", "", True),
        ("**", "x", True),
        ("", "", True),
        ("", "x", False),
        ("a*a", "a", False),  # prefix and suffix must not overlap
        ("ab*ba", "aba", False),
        ("ab*ba", "abba", True),
        ("*a*b*c*", "xxaxxbxxcxx", True),
        ("*a*b*c*", "xxcxxbxxaxx", False),
        ("Cluster:*", "cluster:monitor", False),  # case-sensitive
        ("indices:*[s]", "indices:data/write/bulk[s]", True),  # nothing but `*` is special
        ("*.*", "a.b", True),
        ("*.*", "ab", False),
    ],
)
def test_examples(pattern: str, value: str, expected: bool) -> None:
    assert simple_match(pattern, value) is expected


def test_none_never_matches() -> None:
    assert not simple_match(None, "x")
    assert not simple_match("*", None)
    assert simple_match_any(["nope", "cluster:*"], "cluster:monitor")
    assert not simple_match_any([], "cluster:monitor")


def test_every_small_pattern_agrees_with_the_regex_translation() -> None:
    for plen in range(6):
        for pattern in map("".join, itertools.product("ab*", repeat=plen)):
            for vlen in range(6):
                for value in map("".join, itertools.product("ab", repeat=vlen)):
                    assert simple_match(pattern, value) is regex_oracle(pattern, value), (
                        pattern,
                        value,
                    )


@given(st.text("ab*:/", max_size=10), st.text("ab:/", max_size=14))
def test_agrees_with_the_regex_translation_and_the_model(pattern: str, value: str) -> None:
    expected = regex_oracle(pattern, value)
    assert simple_match(pattern, value) is expected
    assert model_match(pattern, value) is expected


class CountingStr(str):
    """A value that counts the characters the matcher's searches span."""

    scanned: int

    def startswith(self, prefix: object, *args: object) -> bool:  # type: ignore[override]
        assert isinstance(prefix, str) and not args
        self.scanned += len(prefix)
        return str.startswith(self, prefix)

    def endswith(self, suffix: object, *args: object) -> bool:  # type: ignore[override]
        assert isinstance(suffix, str) and not args
        self.scanned += len(suffix)
        return str.endswith(self, suffix)

    def find(self, sub: str, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        stop = len(self) if end is None else end
        found = str.find(self, sub, start, stop)
        self.scanned += (found + len(sub) if found >= 0 else stop) - start
        return found


def counted(pattern: str, value: str) -> tuple[bool, int]:
    v = CountingStr(value)
    v.scanned = 0
    return simple_match(pattern, v), v.scanned


ACTION = "cluster:monitor/tasks/lists[n]"


@pytest.mark.parametrize(
    "pattern",
    [
        "*" * 10 + "Z",  # the request of issue 14
        "*" * 10 + "Z*",
        "*a" * 10 + "*Z*",
        "*" + "s*" * 40 + "Z*",
        "cluster:*" + "*/*" * 20 + "*lists[x]",
        "*" * 200,
    ],
)
def test_the_work_is_linear_in_the_value_whatever_the_pattern(pattern: str) -> None:
    """Each character of the value is spanned at most once, plus the pattern's own length: the
    work of `*Z*` (one scan), however many `*`s the pattern has."""
    value = ACTION * 2000  # 60 000 characters, no `Z`
    _, scanned = counted(pattern, value)
    assert scanned <= len(value) + len(pattern)
    _, baseline = counted("*Z*", value)
    assert scanned <= baseline + len(pattern)


def test_a_pathological_pattern_over_a_long_name_is_answered_correctly() -> None:
    value = ACTION * 2000
    assert not simple_match("*" * 10 + "Z", value)
    assert simple_match("*" * 10 + "]", value)
    assert simple_match("*lists[n]" * 3 + "*", value)
    assert not simple_match("*" + "lists[n]*" * 2001, value)
    assert simple_match("*" + "lists[n]*" * 2000, value)


def test_simple_match_any_over_a_tuple_and_other_iterables() -> None:
    patterns = ("a", "b*", "*c", "b*")
    for value, expected in [("a", True), ("bx", True), ("xc", True), ("x", False), ("", False)]:
        assert simple_match_any(patterns, value) is expected
        assert simple_match_any(list(patterns), value) is expected
        assert simple_match_any(iter(patterns), value) is expected
