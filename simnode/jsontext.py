"""JSON text of any depth: reading it within Jackson's nesting limit, writing it without recursion.

Everything that turns JSON text into values or values into JSON text for a user lives here:

- `loads` reads at most `MAX_DEPTH` (1000) levels of nesting, Jackson's
  `StreamReadConstraints.getMaxNestingDepth()` default that OpenSearch keeps
  (`opensearch.xcontent.depth.max`); deeper text raises `NestingTooDeep` with Jackson's words,
  never a `RecursionError`. Python's own parser recurses once per level and, on a loop already
  ~100 frames deep, gives up short of 1000: `loads` makes room for the levels it accepts.
- `dumps` writes compact JSON (the C encoder when the value is shallow enough for it, an explicit
  stack when not) or Jackson's pretty form (`DefaultPrettyPrinter` as OpenSearch configures it:
  `"key" : value`, `{ }`, `[ ]`), always iteratively: a task tree rendered with
  `group_by=parents` is as deep as the longest parent chain a registry holds, which has no limit.
  A lone surrogate (`"\\ud800"` in a request body is valid JSON) is written as Jackson's
  `UTF8JsonGenerator` writes it, the escape `\\uD800`, so that the text always encodes as UTF-8.

Pure: no I/O, neither trio nor grpc.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import chain
from typing import Any

MAX_DEPTH = 1000
_ROOM = 100  # frames json.loads may use beyond one per level, and margin

_SURROGATE = re.compile("[\ud800-\udfff]")


class NestingTooDeep(ValueError):
    """Jackson's `StreamConstraintsException` for nesting deeper than `MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(
            f"Document nesting depth ({MAX_DEPTH + 1}) exceeds the maximum allowed "
            f"({MAX_DEPTH}, from `StreamReadConstraints.getMaxNestingDepth()`)"
        )


_CONTAINERS = frozenset({dict, list, tuple})


def depth(value: Any, *, limit: int | None = None) -> int:
    """Levels of nesting: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2 (parsed JSON: exact
    dicts, lists and tuples). Level by level, with no recursion and one C-level pass per level;
    with `limit`, it stops as soon as the depth is known to exceed it."""
    level = [value] if type(value) in _CONTAINERS else []
    found = 0
    while level:
        found += 1
        if limit is not None and found > limit:
            return found
        objects = [n for n in level if type(n) is dict]
        arrays = [n for n in level if type(n) is not dict]
        children = chain(
            chain.from_iterable(map(dict.values, objects)), chain.from_iterable(arrays)
        )
        level = [c for c in children if type(c) in _CONTAINERS]
    return found


def _stack_depth() -> int:
    frame = sys._getframe()
    count = 0
    while frame is not None:
        count += 1
        frame = frame.f_back  # type: ignore[assignment]
    return count


def loads(text: str | bytes) -> Any:
    """`json.loads`, with at most `MAX_DEPTH` levels of nesting (`NestingTooDeep` beyond)."""
    needed = _stack_depth() + MAX_DEPTH + _ROOM
    if sys.getrecursionlimit() < needed:
        # Only ever raised, never lowered: another thread may be reading JSON at the same time.
        sys.setrecursionlimit(needed)
    try:
        value = json.loads(text)
    except RecursionError:
        raise NestingTooDeep() from None
    if (
        isinstance(value, dict | list)
        and _openings(text) > MAX_DEPTH
        and depth(value, limit=MAX_DEPTH) > MAX_DEPTH
    ):
        raise NestingTooDeep()
    return value


def _openings(text: str | bytes) -> int:
    """How many `[` and `{` the text holds (strings included): a bound on its depth, counted at C
    speed, so that the walk over the value is only made for text that could be too deep."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04X}"


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return json.dumps(key, ensure_ascii=False)
    # what json.dumps makes of a non-string key: 1 → "1", True → "true", None → "null"
    return json.dumps({key: 0}, ensure_ascii=False, separators=(",", ":"))[1:-3]


def weight(value: Any, budget: int) -> int:
    """How many values `value` holds (itself, containers and scalars), counted up to just past
    `budget`: the cost of counting is bounded by the budget, whatever the value."""
    count = 0
    stack = [value]
    while stack:
        node = stack.pop()
        count += 1
        if count > budget:
            return count
        if type(node) is dict:
            stack.extend(node.values())
        elif type(node) in (list, tuple):
            stack.extend(node)
    return count


CHUNK = 2_000  # values per C-encoded piece of a chunked answer


def _iterative(value: Any, pretty: bool, *, chunked: bool = False) -> str:
    out: list[str] = []
    # frames: [items iterator, is an object, indent, first item still to come]
    stack: list[list[Any]] = []
    colon = " : " if pretty else ":"

    def begin(node: Any, indent: int) -> None:
        if chunked and type(node) in _CONTAINERS and weight(node, CHUNK) <= CHUNK:
            try:  # a small piece: the C encoder, one short call
                out.append(json.dumps(node, ensure_ascii=False, separators=(",", ":")))
                return
            except RecursionError:
                pass
        if isinstance(node, dict):
            if not node:
                out.append("{ }" if pretty else "{}")
                return
            out.append("{")
            stack.append([iter(node.items()), True, indent, True])
        elif isinstance(node, list | tuple):
            if not node:
                out.append("[ ]" if pretty else "[]")
                return
            out.append("[")
            stack.append([iter(node), False, indent, True])
        else:
            out.append(_scalar(node))

    begin(value, 0)
    end: Any = object()
    while stack:
        frame = stack[-1]
        item: Any = next(frame[0], end)
        indent = frame[2]
        if item is end:
            stack.pop()
            close = "}" if frame[1] else "]"
            out.append("\n" + "  " * indent + close if pretty else close)
            continue
        if not frame[3]:
            out.append(",")
        frame[3] = False
        if pretty:
            out.append("\n" + "  " * (indent + 1))
        if frame[1]:
            key, item = item
            out.append(_key(key) + colon)
        begin(item, indent + 1)
    return "".join(out)


def dumps_in_pieces(value: Any) -> str:
    """Compact JSON, as `dumps` writes it, made of many short C-encoder calls instead of one long
    one: a thread writing a large answer this way lets the event loop run between the pieces."""
    return _SURROGATE.sub(_escape_surrogate, _iterative(value, False, chunked=True))


def dumps(value: Any, *, pretty: bool = False) -> str:
    """Compact JSON, or Jackson's pretty form (no final line feed); any depth; UTF-8-safe."""
    text: str | None = None
    if not pretty:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            text = None
    if text is None:
        text = _iterative(value, pretty)
    return _SURROGATE.sub(_escape_surrogate, text)
