"""OpenSearch's `Regex.simpleMatch`: `*` is the only wildcard, matching is case-sensitive.

Used for `actions=` filters and node names/hosts in node selectors. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def simple_match(pattern: str | None, value: str | None) -> bool:
    """True when `value` matches `pattern`, where `*` matches any run of characters."""
    if pattern is None or value is None:
        return False
    if "*" not in pattern:
        return pattern == value
    return _compile(pattern).fullmatch(value) is not None


def simple_match_any(patterns: Iterable[str], value: str) -> bool:
    """`Regex.simpleMatch(String[] patterns, String str)`: any of the patterns matches."""
    return any(simple_match(p, value) for p in patterns)
