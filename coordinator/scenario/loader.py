"""Read a scenario file: PyYAML safe loading that keeps where every key and value came from, so
that every validation error names its file, line and column.

`load(path)` returns the plain data and a `Marks` map from a path (`("steps", 3, "kill")`) to the
position of that key (or list item) in the file. Duplicate keys are an error here, not a silent
"last one wins". Nothing is validated beyond YAML itself: that is schema.py's job.
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


def loads(text: str, file: str) -> tuple[Any, Marks]:
    marks = Marks(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise LoadError(
            [
                ScenarioError(
                    file,
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                    "",
                    f"invalid YAML: {problem}",
                )
            ]
        ) from None
    if root is None:
        raise LoadError([ScenarioError(file, 1, 1, "", "the file is empty")])
    constructor = yaml.SafeLoader("")
    errors: list[ScenarioError] = []

    def build(node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            constructor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
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
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                marks.at[(*path, i)] = _pos(item.start_mark)
                items.append(build(item, (*path, i)))
            return items
        return constructor.construct_object(node, deep=True)

    marks.at[()] = _pos(root.start_mark)
    data = build(root, ())
    if errors:
        raise LoadError(errors)
    return data, marks


def _astuple(pos: Position) -> tuple[int, int]:
    return pos.line, pos.column


def load(path: Path) -> tuple[Any, Marks]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise LoadError(
            [ScenarioError(str(path), None, None, "", f"cannot read: {e.strerror}")]
        ) from None
    return loads(text, str(path))
