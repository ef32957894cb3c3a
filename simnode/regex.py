"""OpenSearch's `Regex.simpleMatch`: `*` is the only wildcard, matching is case-sensitive.

Used for `actions=` filters, node names/hosts in node selectors, `filter_path` segments, `_cat`
column headers and index names. Pure; no I/O.

Every match is linear in its input: a pattern is cut at its `*`s into literal parts; the first part
must be a prefix, the last a suffix, and each part in between is looked for left to right, each
search starting where the previous part ended (the leftmost place of a part is never worse than a
later one, so no choice is ever revisited). The work is one pass over the value plus one over the
pattern, whatever the pattern: `**********Z` against a long action name costs what `*Z` costs.
A regex translation (`.*` per `*`) backtracks exponentially in the number of `*`s and once froze
the coordinator's loop for 12.7 s on one `GET _tasks?actions=**********Z` (issue 14). OpenSearch
collapses runs of `*` first (`Regex.removeDuplicates`) and then matches recursively; the set of
strings matched is the same.
"""

from __future__ import annotations

from collections.abc import Iterable


def simple_match(pattern: str | None, value: str | None) -> bool:
    """True when `value` matches `pattern`, where `*` matches any run of characters."""
    if pattern is None or value is None:
        return False
    if "*" not in pattern:
        return pattern == value
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    if len(first) + len(last) > len(value):
        return False
    if not value.startswith(first) or not value.endswith(last):
        return False
    position, end = len(first), len(value) - len(last)
    for part in parts[1:-1]:
        if not part:
            continue  # `**`: the same as one `*`
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def simple_match_any(patterns: Iterable[str], value: str) -> bool:
    """`Regex.simpleMatch(String[] patterns, String str)`: any of the patterns matches.

    A tuple of patterns (what a request's `actions=` becomes, matched against every distinct
    action of a node) is split once into a set of exact names and the wildcard patterns, so that
    a thousand plain names in one request cost a set lookup per action, not a thousand compares."""
    if isinstance(patterns, tuple):
        exact, wild = _split(patterns)
        return value in exact or any(simple_match(p, value) for p in wild)
    return any(simple_match(p, value) for p in patterns)


# By the identity of the tuple (hashing a tuple of a thousand names costs what matching does);
# each entry keeps its tuple alive, so an id is never reused while it is cached.
_SPLITS: dict[int, tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]] = {}


def _split(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    entry = _SPLITS.get(id(patterns))
    if entry is None or entry[0] is not patterns:
        if len(_SPLITS) >= 256:
            _SPLITS.clear()
        exact = frozenset(p for p in patterns if "*" not in p)
        wild = tuple(dict.fromkeys(p for p in patterns if "*" in p))
        entry = _SPLITS[id(patterns)] = (patterns, exact, wild)
    return entry[1], entry[2]
