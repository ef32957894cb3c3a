"""Read a scenario file: PyYAML safe loading that keeps where every key and value came from, so
that every validation error names its file, line and column.

`load(path)` returns the plain data and a `Marks` map from a path (`("steps", 3, "kill")`) to the
position of that key (or list item) in the file. Duplicate keys are an error here, not a silent
"last one wins". Whatever the file holds — bytes that are not UTF-8, unknown tags, values PyYAML
cannot build, recursive aliases, alias bombs, deep nesting — the answer is a `LoadError` whose
errors are located, never another exception. Nothing is validated beyond YAML itself: that is
schema.py's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class Marks:
    file: str
    at: dict[Path_, Position] = field(default_factory=dict)

    def find(self, path: Sequence[str | int]) -> Position | None:
        """The position of `path`, or of its closest ancestor that has one."""
        p = tuple(path)
        while True:
            if p in self.at:
                return self.at[p]
            if not p:
                return None
            p = p[:-1]


@dataclass(frozen=True)
class ScenarioError:
    """One problem with a scenario file, located."""

    file: str
    line: int | None
    column: int | None
    where: str  # the dotted path inside the document
    message: str

    def __str__(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}:{self.column}"
        where = f" {self.where}:" if self.where else ""
        return f"{loc}:{where} {self.message}"


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def error_at(marks: Marks, path: Sequence[str | int], message: str) -> ScenarioError:
    pos = marks.find(path)
    return ScenarioError(
        marks.file,
        pos.line if pos else None,
        pos.column if pos else None,
        dotted(path),
        message,
    )


class LoadError(Exception):
    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


# Beyond these a document is refused rather than built: aliases can make a small file expand
# exponentially ("billion laughs"), and deep nesting exhausts the interpreter's stack.
MAX_VALUES = 100_000
MAX_DEPTH = 200

# What building a value out of a YAML node may raise besides YAMLError: `!!int abc`,
# `!!timestamp 2020-13-45` and their kind are ValueErrors inside PyYAML's constructors.
_CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError)
_INVALID: Any = object()


def _offset_position(text: str, offset: int) -> Position:
    before = text[: max(0, offset)]
    return Position(before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _yaml_error(e: yaml.YAMLError, file: str, text: str) -> ScenarioError:
    """A located error for anything PyYAML raises (a reader error has an offset, not a mark)."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is not None:
        pos = _pos(mark)
    elif isinstance(getattr(e, "position", None), int):
        pos = _offset_position(text, e.position)  # type: ignore[attr-defined]
    else:
        pos = Position(1, 1)
    problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
    if isinstance(e, yaml.reader.ReaderError):
        problem = f"unacceptable character #x{e.character:04x}: special characters are not allowed"
    return ScenarioError(file, pos.line, pos.column, "", f"invalid YAML: {problem}")


def loads(text: str, file: str) -> tuple[Any, Marks]:
    marks = Marks(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise LoadError([_yaml_error(e, file, text)]) from None
    except RecursionError:
        raise LoadError(
            [ScenarioError(file, 1, 1, "", f"the document nests deeper than {MAX_DEPTH} levels")]
        ) from None
    if root is None:
        raise LoadError([ScenarioError(file, 1, 1, "", "the file is empty")])
    constructor = yaml.SafeLoader("")
    errors: list[ScenarioError] = []
    built = [0]
    active: set[int] = set()  # the nodes being built: one seen again is a recursive alias

    class _Refused(Exception):
        pass

    def refuse(node: yaml.Node, path: Path_, message: str) -> _Refused:
        errors.append(ScenarioError(file, *_astuple(_pos(node.start_mark)), dotted(path), message))
        return _Refused()

    def construct(node: yaml.Node, path: Path_) -> Any:
        """The scalar's value; `_INVALID` (and an error) when PyYAML cannot build it."""
        try:
            return constructor.construct_object(node, deep=True)
        except _CONSTRUCT_ERRORS as e:
            problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
            errors.append(
                ScenarioError(
                    file,
                    *_astuple(_pos(node.start_mark)),
                    dotted(path),
                    f"invalid value: {problem}",
                )
            )
            return _INVALID

    def build(node: yaml.Node, path: Path_) -> Any:
        built[0] += 1
        if built[0] > MAX_VALUES:
            raise refuse(
                node, path, f"the document holds more than {MAX_VALUES} values (aliases included)"
            )
        if len(path) > MAX_DEPTH:
            raise refuse(node, path[:3], f"the document nests deeper than {MAX_DEPTH} levels")
        if id(node) in active:
            raise refuse(node, path, "a recursive alias (a value that contains itself)")
        if isinstance(node, yaml.MappingNode):
            try:
                constructor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
            except _CONSTRUCT_ERRORS as e:
                problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
                raise refuse(node, path, f"invalid merge key: {problem}") from None
            active.add(id(node))
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    errors.append(
                        ScenarioError(
                            file,
                            *_astuple(_pos(key_node.start_mark)),
                            dotted(path),
                            "a key must be a plain scalar",
                        )
                    )
                    continue
                key = construct(key_node, path)
                if key is _INVALID:
                    continue
                if not isinstance(key, str | int | float | bool) or key is None:
                    errors.append(
                        ScenarioError(
                            file,
                            *_astuple(_pos(key_node.start_mark)),
                            dotted(path),
                            "a key must be a plain scalar",
                        )
                    )
                    continue
                key_path = (*path, key if isinstance(key, str) else str(key))
                if key in out:
                    errors.append(
                        ScenarioError(
                            file,
                            *_astuple(_pos(key_node.start_mark)),
                            dotted(path),
                            f"duplicate key {key!r}",
                        )
                    )
                    continue
                marks.at[key_path] = _pos(key_node.start_mark)
                out[key] = build(value_node, key_path)
            active.discard(id(node))
            return out
        if isinstance(node, yaml.SequenceNode):
            active.add(id(node))
            items = []
            for i, item in enumerate(node.value):
                marks.at[(*path, i)] = _pos(item.start_mark)
                items.append(build(item, (*path, i)))
            active.discard(id(node))
            return items
        return construct(node, path)

    marks.at[()] = _pos(root.start_mark)
    try:
        data = build(root, ())
    except _Refused:
        data = None
    if errors:
        raise LoadError(errors)
    return data, marks


def _astuple(pos: Position) -> tuple[int, int]:
    return pos.line, pos.column


def load(path: Path) -> tuple[Any, Marks]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LoadError(
            [ScenarioError(str(path), None, None, "", f"cannot read: {e.strerror}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise LoadError(
            [ScenarioError(str(path), line, column, "", f"not UTF-8: byte 0x{raw[e.start]:02x}")]
        ) from None
    return loads(text, str(path))
