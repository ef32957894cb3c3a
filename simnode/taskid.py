"""Task ids exactly as OpenSearch's `org.opensearch.core.tasks.TaskId`.

A task id is `"<nodeId>:<id>"`. Parsing splits at the *first* `:` (`Strings.split`), parses the rest
with Java's `Long.parseLong`, and raises `malformed task id <s>` otherwise. `""`, `None` and
`"unset"` are the unset id; an id of -1 (`"n:-1"`) parses but is not set. Pure; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simnode.errors import IllegalArgumentError, NumberFormatError

_JAVA_LONG = re.compile(r"[+-]?[0-9]+")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def parse_java_long(text: str) -> int:
    """`Long.parseLong(text)`: optional sign, ASCII digits, 64-bit range, else NumberFormatError."""
    if _JAVA_LONG.fullmatch(text) and text not in ("+", "-"):
        value = int(text)
        if _LONG_MIN <= value <= _LONG_MAX:
            return value
    raise NumberFormatError(f'For input string: "{text}"')


@dataclass(frozen=True, slots=True)
class TaskId:
    node_id: str
    id: int

    @classmethod
    def parse(cls, text: str | None) -> TaskId:
        if not text or text == "unset":
            return EMPTY_TASK_ID
        node_id, sep, rest = text.partition(":")
        if not sep:
            raise IllegalArgumentError(f"malformed task id {text}")
        try:
            number = parse_java_long(rest)
        except NumberFormatError as e:
            raise IllegalArgumentError(f"malformed task id {text}", cause=e) from e
        return cls(node_id, number)

    def is_set(self) -> bool:
        return self.id != -1

    def __str__(self) -> str:
        return f"{self.node_id}:{self.id}" if self.is_set() else "unset"


EMPTY_TASK_ID = TaskId("", -1)
