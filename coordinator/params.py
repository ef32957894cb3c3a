"""REST parameters the way OpenSearch's `RestRequest` and `BaseRestHandler` read them.

A handler *consumes* parameters as it reads them (reading an absent one consumes it too); what is
left unconsumed afterwards is an `unrecognized parameter` error, with Levenshtein "did you mean"
suggestions. Booleans (`paramAsBoolean`), time values (`TimeValue.parseTimeValue`), comma lists
(`Strings.splitStringByCommaToArray`: no trimming, trailing empties dropped) and task ids parse with
OpenSearch's exact messages. The `parse_*` functions build one typed request per endpoint in
OpenSearch's order of checks (reference §4, last paragraph). Pure; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from simnode.errors import ActionRequestValidationError, IllegalArgumentError, NumberFormatError
from simnode.taskid import EMPTY_TASK_ID, TaskId, parse_java_long

# Read by the REST channel (`AbstractRestChannel`: format, filter_path, pretty, human) and the
# controller (`error_trace`) for every request, so they are always consumed. `source` is not: only
# handlers that read a body from it consume it, so `GET _tasks?source=x` is an unrecognized parameter.
CHANNEL_PARAMS = ("format", "filter_path", "pretty", "human", "error_trace")
GROUP_BY_VALUES = ("nodes", "parents", "none")


class Params:
    """Query parameters with OpenSearch's consumed-parameter bookkeeping.

    Reading a parameter consumes it, also when it is absent (`RestRequest.param`); `has()` does not.
    """

    def __init__(self, items: list[tuple[str, str]], path: str) -> None:
        self._values: dict[str, str] = {}
        for key, value in items:
            self._values[key] = value  # the last occurrence wins, as RestUtils.decodeQueryString
        self.path = path
        self._consumed: set[str] = set()

    def add_path_params(self, path_params: dict[str, str]) -> None:
        """Path parameters (`{task_id}`) join the query parameters, as `PathTrie` puts them.
        Every OpenSearch handler reads its path parameters, so they count as consumed (and as
        "did you mean" candidates) whether or not a handler here reads them through `param()`."""
        self._values.update(path_params)
        self._consumed.update(path_params)

    def has(self, key: str) -> bool:
        return key in self._values

    def param(self, key: str, default: str | None = None) -> str | None:
        self._consumed.add(key)
        return self._values.get(key, default)

    def param_bool(self, key: str, default: bool) -> bool:
        """`paramAsBoolean`: empty → true (`?detailed` turns it on); absent or blank → default;
        else exactly `true`/`false`."""
        value = self.param(key)
        if value == "":
            return True
        return parse_boolean(value, default=default)

    def param_time(self, key: str) -> float | None:
        """`paramAsTime(key, null)` in seconds; `-1` means no limit and gives None."""
        value = self.param(key)
        if value is None:
            return None
        seconds = parse_time_value(value, key)
        return None if seconds < 0 else seconds

    def param_list(self, key: str) -> tuple[str, ...]:
        return split_comma(self.param(key))

    def param_str_list(self, key: str) -> tuple[str, ...] | None:
        """`paramAsStringArray(key, null)`: None when absent, else the comma list."""
        value = self.param(key)
        return None if value is None else split_comma(value)

    def check_unrecognized(self, response_params: frozenset[str] = frozenset()) -> None:
        """`BaseRestHandler.handleRequest`: what is neither consumed nor a response parameter of
        the handler is an error; suggestions come from both sets."""
        unconsumed = sorted(
            k for k in self._values if k not in self._consumed and k not in response_params
        )
        if unconsumed:
            raise IllegalArgumentError(
                unrecognized(self.path, unconsumed, self._consumed | response_params)
            )

    def peek(self, key: str) -> str | None:
        """The raw value without consuming it (for response formatting after the checks)."""
        return self._values.get(key)


def parse_boolean(value: str | None, *, default: bool) -> bool:
    """`Booleans.parseBoolean(value, default)`: null, empty or blank → default; `true`/`false`;
    anything else is a 400."""
    if value is None or value.strip(_JAVA_WHITESPACE) == "":
        return default
    if value == "true":
        return True
    if value == "false":
        return False
    raise IllegalArgumentError(
        f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    )


# `Character.isWhitespace` (Booleans.hasText) and `String.trim` (<= U+0020), near enough.
_JAVA_WHITESPACE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))

_TIME_UNITS = (
    ("nanos", 1e-9),
    ("micros", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
)
# `TimeValue.nanos()` saturates at Long.MAX_VALUE nanoseconds (~292 years): the longest a time
# value can mean. `timeout=100000d` parses (a long of days) and means "longer than any run".
MAX_SECONDS = (2**63 - 1) / 1e9
_JAVA_DOUBLE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?")


def parse_time_value(value: str, setting: str) -> float:
    """`TimeValue.parseTimeValue`: seconds (-1.0 for the magic -1), with OpenSearch's messages."""
    normalized = value.lower().strip(_JAVA_TRIM)
    for suffix, scale in _TIME_UNITS:
        # `m` is matched against the raw value (case-sensitive), every other unit case-insensitively.
        matched = value.endswith("m") if suffix == "m" else normalized.endswith(suffix)
        if not matched:
            continue
        number = normalized[: len(normalized) - len(suffix)].strip(_JAVA_TRIM)
        try:
            amount = parse_java_long(number)
        except NumberFormatError as e:
            if _JAVA_DOUBLE.fullmatch(number):
                raise IllegalArgumentError(
                    f"failed to parse [{value}], fractional time values are not supported", cause=e
                ) from e
            raise IllegalArgumentError(f"failed to parse [{value}]", cause=e) from e
        if amount < -1:
            raise IllegalArgumentError(
                f"failed to parse setting [{setting}] with value [{value}] as a time value: "
                "negative durations are not supported"
            )
        return -1.0 if amount == -1 else min(amount * scale, MAX_SECONDS)
    if re.fullmatch(r"-0*1", normalized):
        return -1.0
    if re.fullmatch(r"0+", normalized):
        return 0.0
    raise IllegalArgumentError(
        f"failed to parse setting [{setting}] with value [{value}] as a time value: "
        "unit is missing or unrecognized"
    )


def tokenize_comma(value: str | None) -> tuple[str, ...]:
    """`Strings.tokenizeByCommaToSet` (as `filter_path` is read): trimmed, empty tokens dropped,
    duplicates removed (first occurrence kept)."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for token in value.split(","):
        token = token.strip(_JAVA_TRIM)
        if token:
            seen.setdefault(token, None)
    return tuple(seen)


def split_comma(value: str | None) -> tuple[str, ...]:
    """`Strings.splitStringByCommaToArray`: Java `split(",")` — no trim, trailing empties dropped."""
    if not value:
        return ()
    parts = value.split(",")
    while parts and parts[-1] == "":
        parts.pop()
    return tuple(parts)


def _levenshtein_similarity(a: str, b: str) -> float:
    """Lucene's `LevenshteinDistance.getDistance`: 1 - edits / max(len)."""
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def unrecognized(path: str, invalids: list[str], candidates: set[str]) -> str:
    """`BaseRestHandler.unrecognized` for parameters."""
    plural = "s" if len(invalids) > 1 else ""
    parts = []
    for invalid in sorted(invalids):
        # The distance is at least the difference of the lengths: a candidate that differs in
        # length by half or more can never score above 0.5 (skipping it keeps a 4 kB name from
        # costing the loop 16 000 steps per candidate).
        scored = [
            (s, c)
            for c in candidates
            if 2 * abs(len(invalid) - len(c)) < max(len(invalid), len(c))
            and (s := _levenshtein_similarity(invalid, c)) > 0.5
        ]
        scored.sort(key=lambda sc: (-sc[0], sc[1]))
        keys = [c for _, c in scored]
        text = f"[{invalid}]"
        if len(keys) == 1:
            text += f" -> did you mean [{keys[0]}]?"
        elif keys:
            text += f" -> did you mean any of [{', '.join(keys)}]?"
        parts.append(text)
    return f"request [{path}] contains unrecognized parameter{plural}: " + ", ".join(parts)


# -- typed requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TasksRequest:
    """`ListTasksRequest` / `CancelTasksRequest` (OpenSearch's BaseTasksRequest and friends)."""

    nodes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    task_id: TaskId = EMPTY_TASK_ID
    parent_task_id: TaskId = EMPTY_TASK_ID
    detailed: bool = False
    wait_for_completion: bool = False
    timeout: float | None = None
    group_by: str = "nodes"

    def validate(self) -> None:
        if self.task_id.is_set() and self.nodes:
            raise ActionRequestValidationError.of("task id cannot be used together with node ids")


@dataclass(frozen=True, slots=True)
class GetTaskRequest:
    task_id: TaskId
    wait_for_completion: bool = False
    timeout: float | None = None

    def validate(self) -> None:
        if not self.task_id.is_set():
            raise ActionRequestValidationError.of("task id is required")


def check_group_by(group_by: str) -> None:
    if group_by not in GROUP_BY_VALUES:
        raise IllegalArgumentError(
            f"[group_by] must be one of [nodes], [parents] or [none] but was [{group_by}]"
        )


def parse_list_request(params: Params) -> TasksRequest:
    """`RestListTasksAction.generateListTasksRequest` (also what `_cat/tasks` reads)."""
    detailed = params.param_bool("detailed", False)
    nodes = params.param_list("nodes")
    actions = params.param_list("actions")
    parent = TaskId.parse(params.param("parent_task_id"))
    wait = params.param_bool("wait_for_completion", False)
    timeout = params.param_time("timeout")
    return TasksRequest(
        nodes=nodes,
        actions=actions,
        parent_task_id=parent,
        detailed=detailed,
        wait_for_completion=wait,
        timeout=timeout,
    )


def parse_list(params: Params) -> TasksRequest:
    """`RestListTasksAction.prepareRequest`: the list request, then `group_by` (default `nodes`;
    an empty value stays empty and is rejected by `check_group_by` after the parameter checks)."""
    req = parse_list_request(params)
    return replace(req, group_by=params.param("group_by", "nodes") or "")


def parse_cancel(params: Params) -> TasksRequest:
    """`RestCancelTasksAction.prepareRequest`: no `timeout` on cancel."""
    nodes = params.param_list("nodes")
    tid = TaskId.parse(params.param("task_id"))
    actions = params.param_list("actions")
    parent = TaskId.parse(params.param("parent_task_id"))
    group_by = params.param("group_by", "nodes") or ""
    wait = params.param_bool("wait_for_completion", False)
    return TasksRequest(
        nodes=nodes,
        actions=actions,
        task_id=tid,
        parent_task_id=parent,
        wait_for_completion=wait,
        group_by=group_by,
    )


def parse_get(params: Params) -> GetTaskRequest:
    """`RestGetTaskAction.prepareRequest` (`task_id` is a path parameter)."""
    tid = TaskId.parse(params.param("task_id"))
    wait = params.param_bool("wait_for_completion", False)
    timeout = params.param_time("timeout")
    return GetTaskRequest(task_id=tid, wait_for_completion=wait, timeout=timeout)
