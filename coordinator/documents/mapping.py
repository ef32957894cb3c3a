"""An index's field types: OpenSearch's dynamic mapping, and explicit `properties`, in small.

What a query does with a value depends on the field's type, as in OpenSearch: a `text` field is
analysed (the standard analyser, in small: lower-cased words), so `term` matches one of its words and
`match` analyses its query; a `keyword` matches exactly; numbers and dates compare as numbers (ISO
dates as text, which orders them); `boolean` takes `true`/`"true"`. Dynamic mapping follows
`DocumentParser`'s defaults: a string is `text` with a `<field>.keyword` sub-field (`ignore_above`
256), unless it looks like a date (`date_detection`, the `strict_date_optional_time` form) → `date`;
an integer is `long`, a fraction `float`, a boolean `boolean`, an object `object` (its fields get
dotted paths). The first value seen decides, as in OpenSearch; objects deeper than
`index.mapping.depth.limit` (20) are refused. Walks are iterative (arrays of any depth).
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from simnode.errors import IllegalArgumentError

TEXT, KEYWORD, LONG, FLOAT, BOOLEAN, DATE, OBJECT = (
    "text",
    "keyword",
    "long",
    "float",
    "boolean",
    "date",
    "object",
)
NUMERIC_TYPES: Final = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
)
KEYWORD_TYPES: Final = frozenset({"keyword", "constant_keyword", "wildcard"})
TEXT_TYPES: Final = frozenset({"text", "match_only_text"})
IGNORE_ABOVE: Final = 256
DEPTH_LIMIT: Final = 20  # `index.mapping.depth.limit`
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def analyze(text: str) -> list[str]:
    """The standard analyser in small: words of letters and digits, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


def field_values(source: Mapping[str, Any], path: str) -> list[Any]:
    """Every non-null leaf value at a dotted `path` (through objects and arrays of objects, arrays
    of arrays flattened, and keys that contain dots themselves), as
    `XContentMapValues.extractRawValues`. Iterative: any depth of arrays."""
    out: list[Any] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(source, tuple(path.split(".")))]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, list):
            stack.extend((item, parts) for item in reversed(node))
            continue
        if not parts:
            if node is not None and not isinstance(node, dict):
                out.append(node)
            continue
        if not isinstance(node, Mapping):
            continue
        found = []
        for i in range(1, len(parts) + 1):
            key = ".".join(parts[:i])
            if key in node:
                found.append((node[key], parts[i:]))
        stack.extend(reversed(found))
    return out


def first_leaf(value: Any) -> Any:
    """The first non-null value of a (possibly nested) array, or the value itself."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif item is not None:
            return item
    return None


@dataclass
class FieldMapping:
    """One mapped field: its type, and whether it has a `.keyword` sub-field."""

    type: str
    keyword_subfield: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # as given: `enabled`, `format`, ...

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, **self.params}
        if self.keyword_subfield:
            out["fields"] = {"keyword": {"type": "keyword", "ignore_above": IGNORE_ABOVE}}
        return out


def _leaves(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _dynamic_type(value: Any) -> FieldMapping | None:
    if isinstance(value, bool):
        return FieldMapping(BOOLEAN)
    if isinstance(value, int):
        return FieldMapping(LONG)
    if isinstance(value, float):
        return FieldMapping(FLOAT)
    if isinstance(value, str):
        if _DATE.match(value):
            return FieldMapping(DATE)
        return FieldMapping(TEXT, keyword_subfield=True)
    if isinstance(value, dict):
        return FieldMapping(OBJECT)
    return None


@dataclass
class IndexMapping:
    """The fields of one index, by dotted path (`object` fields included)."""

    fields: dict[str, FieldMapping] = field(default_factory=dict)
    dynamic: bool = True
    root: dict[str, Any] = field(default_factory=dict)  # `_meta`, `dynamic` as given

    @classmethod
    def of(cls, types: Mapping[str, str]) -> IndexMapping:
        """A fixed mapping, path → type (`text` without a keyword sub-field)."""
        return cls({path: FieldMapping(kind) for path, kind in types.items()}, dynamic=False)

    @classmethod
    def from_body(cls, body: Any) -> IndexMapping:
        """`mappings` of a create-index body: `properties` (nested), `dynamic`."""
        mapping = cls()
        if not isinstance(body, dict):
            return mapping
        if body.get("dynamic") in (False, "false", "strict"):
            mapping.dynamic = False
        mapping.root = {k: body[k] for k in ("_meta", "dynamic") if k in body}

        def walk(props: Any, prefix: str) -> None:
            if not isinstance(props, dict):
                return
            for name, spec in props.items():
                if not isinstance(spec, dict):
                    continue
                path = f"{prefix}{name}"
                kind = str(spec.get("type", OBJECT))
                subfields = spec.get("fields")
                keyword = isinstance(subfields, dict) and "keyword" in subfields
                params = {
                    k: v for k, v in spec.items() if k not in ("type", "fields", "properties")
                }
                if kind == OBJECT and "type" not in spec:
                    params = {"__implicit": True, **params}
                mapping.fields[path] = FieldMapping(kind, keyword, params)
                if "properties" in spec:
                    walk(spec["properties"], f"{path}.")

        walk(body.get("properties"), "")
        return mapping

    def learn(self, source: Mapping[str, Any]) -> None:
        """Dynamic mapping: add the fields of `source` that are not mapped yet. An object deeper
        than `index.mapping.depth.limit` (20) is refused before anything is added."""
        if not self.dynamic:
            return
        found: list[tuple[str, FieldMapping]] = []
        stack: list[tuple[str, int, Mapping[str, Any]]] = [("", 1, source)]
        while stack:
            prefix, depth, node = stack.pop()
            for key, value in node.items():
                path = f"{prefix}{key}"
                sample = first_leaf(value)
                if sample is None:
                    continue
                known = self.fields.get(path)
                kind = known if known is not None else _dynamic_type(sample)
                if kind is None:
                    continue
                if known is None:
                    found.append((path, kind))
                if kind.type == OBJECT and isinstance(sample, dict):
                    if depth + 1 > DEPTH_LIMIT:
                        raise IllegalArgumentError(
                            f"Limit of mapping depth [{DEPTH_LIMIT}] has been exceeded due to "
                            f"object field [{path}]"
                        )
                    items = value if isinstance(value, list) else [value]
                    stack.extend(
                        (f"{path}.", depth + 1, item)
                        for item in _leaves(items)
                        if isinstance(item, dict)
                    )
        for path, kind in found:
            self.fields.setdefault(path, kind)

    def copy(self) -> IndexMapping:
        """The mapping as it is now (fields are only ever added, never changed)."""
        return IndexMapping(dict(self.fields), self.dynamic, self.root)

    def type_of(self, path: str) -> str | None:
        """The type a query sees at `path` (`x.keyword` of a text field is a keyword)."""
        found = self.fields.get(path)
        if found is not None:
            return found.type
        if path.endswith(".keyword"):
            parent = self.fields.get(path[: -len(".keyword")])
            if parent is not None and parent.keyword_subfield:
                return KEYWORD
        return None

    def source_path(self, path: str) -> str:
        """Where the values of `path` live in `_source` (a sub-field reads its parent)."""
        if path not in self.fields and path.endswith(".keyword"):
            parent = self.fields.get(path[: -len(".keyword")])
            if parent is not None and parent.keyword_subfield:
                return path[: -len(".keyword")]
        return path

    def values(self, source: Mapping[str, Any], path: str) -> list[Any]:
        values = field_values(source, self.source_path(path))
        if path != self.source_path(path):  # a keyword sub-field skips long strings
            values = [v for v in values if len(str(v)) <= IGNORE_ABOVE]
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def body(self) -> dict[str, Any]:
        """`GET /{index}/_mapping`'s `mappings`: nested `properties`."""
        root: dict[str, Any] = {}
        for path in sorted(self.fields):
            node = root
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {"properties": {}}).setdefault("properties", {})
            spec = self.fields[path]
            if spec.type == OBJECT and (not spec.params or "__implicit" in spec.params):
                node.setdefault(leaf, {"properties": {}})
            else:
                node[leaf] = spec.body()
        out: dict[str, Any] = dict(self.root)
        if root:
            out["properties"] = root
        return out
