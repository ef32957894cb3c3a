"""Expectations on one REST answer, as plain functions of plain values: `${...}` templates,
dotted JSON paths with `*`, matchers, and the `expect:` block of a request step.

A path is dotted keys; a number indexes a list; `*` takes every key or item (then a matcher
applies to every match, and `count` counts the matches). A matcher is a literal (equality) or a
mapping of operators, all of which must hold:

    eq ne gt gte lt lte   in (a list)   contains   matches (a regex, searched)
    count (a number or a matcher on the length)   exists (true/false)   type (string, number, ...)

Every failure is a sentence that says what was expected and what came back. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from coordinator.scenario.schema import TEMPLATE, Expect, TaskExpect

OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "matches", "count", "exists", "type"}
)
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}
_MISSING: Any = object()


@dataclass
class Answer:
    """What a request step got: the status and parsed body, or a client-side timeout."""

    status: int | None
    body: Any
    elapsed: float
    timed_out: bool = False


@dataclass
class Context:
    """What templates resolve to: node name → id, start step id → its task ids, capture name →
    the value a step captured."""

    node_ids: dict[str, str]
    started: dict[str, list[str]]
    captured: dict[str, str] = field(default_factory=dict)

    def name_of(self, node_id: str) -> str:
        for name, nid in self.node_ids.items():
            if nid == node_id:
                return name
        return node_id


def render(value: Any, ctx: Context) -> Any:
    """`${node-1}` → node-1's id; `${work}` → the first task id start step `work` got,
    `${work.2}` → the third; `${work.count}` → how many; `${model}` → what a step captured."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            ref = m.group(1)
            head, _, rest = ref.partition(".")
            if head in ctx.node_ids and not rest:
                return ctx.node_ids[head]
            if head in ctx.captured and not rest:
                return ctx.captured[head]
            if head in ctx.started:
                ids = ctx.started[head]
                if not rest:
                    return ids[0]
                if rest == "count":
                    return str(len(ids))
                if rest.isdigit() and int(rest) < len(ids):
                    return ids[int(rest)]
            raise KeyError(f"cannot resolve ${{{ref}}}")

        return TEMPLATE.sub(sub, value)
    if isinstance(value, dict):
        return {render(k, ctx): render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, ctx) for v in value]
    return value


def capture(doc: Any, path: str) -> str:
    """The one scalar at `path` (ValueError otherwise), as a string for templates."""
    values, _ = select(doc, path)
    if len(values) != 1 or isinstance(values[0], dict | list) or values[0] is None:
        found = "nothing" if not values else _short(values if len(values) > 1 else values[0])
        raise ValueError(f"expected one value at {path!r}, found {found}")
    value = values[0]
    return json_scalar(value)


def json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select(doc: Any, path: str) -> tuple[list[Any], bool]:
    """The values at `path` and whether the path has a wildcard."""
    current = [doc]
    wild = False
    for part in path.split(".") if path else []:
        nxt: list[Any] = []
        for value in current:
            if part == "*":
                wild = True
                if isinstance(value, dict):
                    nxt.extend(value.values())
                elif isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(value, dict) and part in value:
                nxt.append(value[part])
            elif isinstance(value, list) and re.fullmatch(r"-?\d+", part):
                i = int(part)
                if -len(value) <= i < len(value):
                    nxt.append(value[i])
        current = nxt
    return current, wild


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_matcher(expected: Any) -> bool:
    return isinstance(expected, dict) and bool(expected) and set(expected) <= OPERATORS


def match_value(actual: Any, expected: Any) -> str | None:
    """None when `actual` satisfies `expected`, else why not."""
    if not _is_matcher(expected):
        if actual is _MISSING:
            return f"expected {_short(expected)}, but it is missing"
        return None if actual == expected else f"expected {_short(expected)}, got {_short(actual)}"
    for op, want in expected.items():
        if op == "exists":
            if (actual is not _MISSING) != bool(want):
                return (
                    "expected it to exist" if want else f"expected no value, got {_short(actual)}"
                )
            continue
        if actual is _MISSING:
            return f"expected {op} {_short(want)}, but it is missing"
        problem = _operator(op, actual, want)
        if problem:
            return problem
    return None


def _operator(op: str, actual: Any, want: Any) -> str | None:
    try:
        if op == "eq":
            ok = actual == want
        elif op == "ne":
            ok = actual != want
        elif op == "gt":
            ok = actual > want
        elif op == "gte":
            ok = actual >= want
        elif op == "lt":
            ok = actual < want
        elif op == "lte":
            ok = actual <= want
        elif op == "in":
            ok = actual in want
        elif op == "contains":
            ok = want in actual
        elif op == "matches":
            ok = isinstance(actual, str) and re.search(str(want), actual) is not None
        elif op == "type":
            ok = isinstance(actual, _TYPES[str(want)]) and not (
                want == "number" and isinstance(actual, bool)
            )
        elif op == "count":
            if not isinstance(actual, list | dict | str):
                return f"expected something countable, got {_short(actual)}"
            inner = match_value(len(actual), want)
            return None if inner is None else f"count: {inner}"
        else:
            return f"unknown operator {op!r}"
    except TypeError:
        return f"cannot compare {_short(actual)} with {op} {_short(want)}"
    except KeyError:
        return f"unknown type {want!r}"
    return None if ok else f"expected {op} {_short(want)}, got {_short(actual)}"


def check_path(doc: Any, path: str, expected: Any) -> str | None:
    values, wild = select(doc, path)
    if not wild:
        actual = values[0] if values else _MISSING
        problem = match_value(actual, expected)
        return None if problem is None else f"{path}: {problem}"
    if _is_matcher(expected) and "count" in expected:
        problem = match_value(len(values), expected["count"])
        if problem is not None:
            return f"{path}: count: {problem}"
        expected = {k: v for k, v in expected.items() if k != "count"}
        if not expected:
            return None
    for value in values:
        problem = match_value(value, expected)
        if problem is not None:
            return f"{path}: one of {len(values)} matches: {problem}"
    return None


def all_tasks(body: Any) -> list[dict[str, Any]]:
    """Every task of a list/cancel response, whatever its `group_by`."""
    out: list[dict[str, Any]] = []

    def walk(tasks: Any) -> None:
        items = (
            tasks.values() if isinstance(tasks, dict) else tasks if isinstance(tasks, list) else []
        )
        for task in items:
            if isinstance(task, dict):
                out.append(task)
                walk(task.get("children", []))

    if isinstance(body, dict):
        for node in (body.get("nodes") or {}).values():
            if isinstance(node, dict):
                walk(node.get("tasks", {}))
        walk(body.get("tasks", []))
    return out


def answering_nodes(body: Any) -> list[str]:
    """Node ids that answered a list request (its `nodes` keys, or its tasks' `node`)."""
    if isinstance(body, dict) and isinstance(body.get("nodes"), dict):
        return list(body["nodes"])
    return sorted({t["node"] for t in all_tasks(body) if "node" in t})


def failed_nodes(body: Any) -> dict[str, str]:
    """`node_failures`: node id → the cause's type."""
    out: dict[str, str] = {}
    if not isinstance(body, dict):
        return out
    for failure in body.get("node_failures", []) or []:
        if not isinstance(failure, dict):
            continue
        node_id = failure.get("node_id", "?")
        cause = failure.get("caused_by") if failure.get("type") == "failed_node_exception" else None
        out[node_id] = (cause or failure).get("type", "?")
    return out


def value_at(doc: Any, path: str) -> Any:
    values, _ = select(doc, path)
    return values[0] if values else _MISSING


def check_tasks(body: Any, spec: TaskExpect, ctx: Context) -> list[str]:
    where = render(spec.where, ctx)
    chosen = [
        t
        for t in all_tasks(body)
        if all(match_value(value_at(t, k), v) is None for k, v in where.items())
    ]
    label = f"tasks where {where}" if where else "tasks"
    problems = []
    if spec.count is not None:
        problem = match_value(len(chosen), render(spec.count, ctx))
        if problem:
            problems.append(f"{label}: count: {problem}")
    for key, want in render(spec.all, ctx).items():
        for task in chosen:
            problem = match_value(value_at(task, key), want)
            if problem:
                problems.append(
                    f"{label}: task {task.get('node')}:{task.get('id')} {key}: {problem}"
                )
                break
    return problems


def check(expect: Expect, answer: Answer, ctx: Context, *, client_timeout: float) -> list[str]:
    """Every way `answer` misses `expect` (empty: it meets it)."""
    if answer.timed_out:
        if expect.timeout:
            return []
        return [f"no answer within the client timeout ({client_timeout:g}s)"]
    if expect.timeout:
        return [
            f"expected no answer within {client_timeout:g}s, got HTTP {answer.status} after {answer.elapsed:.2f}s"
        ]
    problems: list[str] = []
    if expect.status is not None and answer.status != expect.status:
        problems.append(
            f"status: expected {expect.status}, got {answer.status}: {_short(answer.body)}"
        )
    if expect.took is not None:
        if expect.took.min is not None and answer.elapsed < expect.took.min:
            problems.append(
                f"took: expected at least {expect.took.min:g}s, got {answer.elapsed:.3f}s"
            )
        if expect.took.max is not None and answer.elapsed > expect.took.max:
            problems.append(
                f"took: expected at most {expect.took.max:g}s, got {answer.elapsed:.3f}s"
            )
    if expect.node_failures is not None:
        actual = {ctx.name_of(k): v for k, v in failed_nodes(answer.body).items()}
        wanted = expect.node_failures
        ok = set(actual) == set(wanted) and all(
            w == "*" or actual[n] == w for n, w in wanted.items()
        )
        if not ok:
            problems.append(
                f"node_failures: expected {dict(sorted(wanted.items()))}, got {dict(sorted(actual.items()))}"
            )
    if expect.nodes is not None:
        actual_nodes = sorted(ctx.name_of(n) for n in answering_nodes(answer.body))
        if actual_nodes != sorted(expect.nodes):
            problems.append(f"nodes: expected {sorted(expect.nodes)}, got {actual_nodes}")
    for path, wanted in render(expect.json_, ctx).items():
        problem = check_path(answer.body, path, wanted)
        if problem:
            problems.append(problem)
    for spec in expect.tasks:
        problems.extend(check_tasks(answer.body, spec, ctx))
    return problems
