"""The front door's limits: what a request may weigh, and the answer when it weighs more.

Everything that decides a limit lives here, as pure functions of plain values; the HTTP layer
(coordinator/http.py) measures and asks. The limits and their answers are OpenSearch's where
OpenSearch has one (its settings names, defaults and wording, from Netty's decoder and aggregator
as OpenSearch configures them):

| limit                                 | default | answer                                                   |
|---------------------------------------|---------|----------------------------------------------------------|
| `http.max_initial_line_length`        | 4kb     | 400 `too_long_http_line_exception` `An HTTP line is larger than 4096 bytes.` |
| `http.max_header_size`                | 8kb     | 400 `too_long_http_header_exception` `HTTP header is larger than 8192 bytes.` |
| `http.max_content_length`             | 100mb   | 413, empty body, `Connection: close` (Netty's `TOO_LARGE_CLOSE`) |
| task headers (`X-Opaque-Id`)          | 8kb     | 400 `Request exceeded the maximum size of task headers 8kb` (simnode/registry.py) |
| `tasksim.http.max_concurrent_requests`| 512     | 429 `rejected_execution_exception`                        |
| `tasksim.http.body_timeout`           | 30s     | 408 `status_exception`, `Connection: close`               |
| `tasksim.http.idle_timeout`           | 30s     | the connection is closed (also a client that stalls mid-headers) |
| `tasksim.node.max_live_tasks`         | 10000   | 429 `rejected_execution_exception` for new simulated work |

Sizes are measured as Netty counts them: the request line without its CRLF (`len >= max` fails,
the CR counts), header lines `name: value` without CRLF summed over the request. hypercorn hands
the application the parsed request, so the header count is `len(name) + 2 + len(value)` per
header: optional whitespace a client put around values is not counted.

Settings are given as `-E key=value` on `tasksim up`, like OpenSearch's `-E`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from simnode.errors import OpenSearchError, RejectedExecutionError, StatusError

KB = 1024
MB = 1024 * KB


class SettingsError(ValueError):
    """A `-E key=value` that tasksim does not know or cannot parse (a clear, one-line message)."""


_BYTE_UNITS = {"b": 1, "kb": KB, "k": KB, "mb": MB, "m": MB, "gb": 1024 * MB, "g": 1024 * MB}
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_byte_size(key: str, text: str) -> int:
    """`ByteSizeValue.parseBytesSizeValue`: `4kb`, `100mb`, `512b`, `1024` (bytes)."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = (m.group(2) if m else "").lower() or "b"
    if m is None or unit not in _BYTE_UNITS:
        raise SettingsError(
            f"failed to parse setting [{key}] with value [{text}] as a size in bytes: "
            "unit is missing or unrecognized"
        )
    return int(m.group(1)) * _BYTE_UNITS[unit]


def parse_seconds(key: str, text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*", text)
    if m is None:
        raise SettingsError(
            f"failed to parse setting [{key}] with value [{text}] as a time value: "
            "unit is missing or unrecognized"
        )
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_count(key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise SettingsError(f"failed to parse setting [{key}] with value [{text}]: must be >= 1")
    return value


@dataclass(frozen=True)
class Limits:
    max_initial_line_length: int = 4 * KB
    max_header_size: int = 8 * KB
    max_content_length: int = 100 * MB
    max_concurrent_requests: int = 512
    body_timeout: float = 30.0
    idle_timeout: float = 30.0
    max_live_tasks: int = 10_000

    # setting key -> (field, parser)
    KEYS: ClassVar[dict[str, tuple[str, Callable[[str, str], Any]]]] = {
        "http.max_initial_line_length": ("max_initial_line_length", parse_byte_size),
        "http.max_header_size": ("max_header_size", parse_byte_size),
        "http.max_content_length": ("max_content_length", parse_byte_size),
        "tasksim.http.max_concurrent_requests": ("max_concurrent_requests", parse_count),
        "tasksim.http.body_timeout": ("body_timeout", parse_seconds),
        "tasksim.http.idle_timeout": ("idle_timeout", parse_seconds),
        "tasksim.node.max_live_tasks": ("max_live_tasks", parse_count),
    }

    @classmethod
    def from_settings(cls, settings: Iterable[str]) -> Limits:
        """`-E key=value` strings → Limits; unknown keys and bad values fail clearly."""
        limits = cls()
        for item in settings:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep:
                raise SettingsError(f"setting [{item}] must be given as KEY=VALUE")
            if key not in cls.KEYS:
                known = ", ".join(sorted(cls.KEYS))
                raise SettingsError(f"unknown setting [{key}]; tasksim knows: {known}")
            name, parser = cls.KEYS[key]
            limits = replace(limits, **{name: parser(key, value.strip())})
        return limits

    def describe(self) -> dict[str, str | int | float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the checks -------------------------------------------------------------------------------------


class TooLongHttpLineError(OpenSearchError):
    """Netty's `TooLongHttpLineException`, answered by `RestController.dispatchBadRequest`."""

    type = "too_long_http_line_exception"
    status = 400


class TooLongHttpHeaderError(OpenSearchError):
    type = "too_long_http_header_exception"
    status = 400


def initial_line_length(method: str, raw_path: bytes, query_string: bytes, version: str) -> int:
    """`GET /_tasks?x=y HTTP/1.1` as sent, without CRLF."""
    target = len(raw_path) + (1 + len(query_string) if query_string else 0)
    return len(method) + 1 + target + 1 + len("HTTP/") + len(version)


def header_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    return sum(len(name) + 2 + len(value) for name, value in headers)


def check_request_head(limits: Limits, line_length: int, headers_size: int) -> None:
    """Netty's line and header parsers (the CR before LF counts while a line is read)."""
    if line_length + 1 > limits.max_initial_line_length:
        raise TooLongHttpLineError(
            f"An HTTP line is larger than {limits.max_initial_line_length} bytes."
        )
    if headers_size + 1 > limits.max_header_size:
        raise TooLongHttpHeaderError(f"HTTP header is larger than {limits.max_header_size} bytes.")


def content_too_large(limits: Limits, length: int) -> bool:
    return length > limits.max_content_length


def rejected_request(limits: Limits, method: str, path: str, in_flight: int) -> OpenSearchError:
    return RejectedExecutionError(
        f"rejected execution of [{method} {path}]: {in_flight} requests are in flight on this "
        f"node, the limit is {limits.max_concurrent_requests} "
        "(tasksim.http.max_concurrent_requests)"
    )


def body_timeout(limits: Limits) -> OpenSearchError:
    return StatusError(
        f"the request body was not received within [{limits.body_timeout:g}s] "
        "(tasksim.http.body_timeout)",
        408,
    )


class ConcurrencyGate:
    """Counts requests in flight; `enter()` is False when the limit is reached. Trio-thread only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self.rejected = 0

    def enter(self) -> bool:
        if self.in_flight >= self.limit:
            self.rejected += 1
            return False
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight -= 1
