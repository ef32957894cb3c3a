"""Scroll contexts: `_search?scroll=<keep_alive>`, `POST /_search/scroll`, `DELETE /_search/scroll`.

A scroll keeps the point-in-time view of its first search (the `Target` snapshots, immutable
tuples later writes never change) and its position; each `next` answers the following page with
the first search's `size`, until a page comes back empty. A context lives for its `keep_alive`,
renewed by each `next` (`SearchService`'s keep-alive); an expired or cleared id is
`search_context_missing_exception` (404). At most `search.max_open_scroll_context` (500) are open
at once, as OpenSearch rejects more (429). This is what opensearch-py's `helpers.scan` and
`helpers.reindex` read with. Pure: no I/O (times are arguments, in seconds).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from coordinator.documents import Target
from coordinator.documents.search import SearchRequest, search
from coordinator.params import parse_time_value
from simnode.errors import IllegalArgumentError, OpenSearchError, RejectedExecutionError

MAX_OPEN_SCROLL_CONTEXT = 500


class SearchContextMissingError(OpenSearchError):
    type = "search_context_missing_exception"
    status = 404


def parse_keep_alive(text: str, name: str = "scroll") -> float:
    """`TimeValue.parseTimeValue` of a keep-alive (coordinator/params.py's), in seconds."""
    return parse_time_value(text, name)


@dataclass
class _Context:
    targets: Sequence[Target]
    request: SearchRequest
    position: int
    keep_alive: float
    expires_at: float


class Scrolls:
    """The open scroll contexts of the cluster, by id."""

    def __init__(self, limit: int = MAX_OPEN_SCROLL_CONTEXT) -> None:
        self.limit = limit
        self._contexts: dict[int, _Context] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._contexts)

    def _expire(self, now: float) -> None:
        for key in [k for k, c in self._contexts.items() if c.expires_at <= now]:
            del self._contexts[key]

    def open(
        self, targets: Sequence[Target], request: SearchRequest, keep_alive: float, now: float
    ) -> str:
        """A context after the first page (`request.size` hits from `request.from_`)."""
        self._expire(now)
        if len(self._contexts) >= self.limit:
            raise RejectedExecutionError(
                "Trying to create too many scroll contexts. Must be less than or equal to: "
                f"[{self.limit}]. This limit can be set by changing the "
                "[search.max_open_scroll_context] setting."
            )
        self._next += 1
        self._contexts[self._next] = _Context(
            tuple(targets),
            request,
            request.from_ + request.size,
            keep_alive,
            now + keep_alive,
        )
        return scroll_id(self._next)

    def next(
        self, scroll: str, keep_alive: float | None, now: float, took: int = 0
    ) -> dict[str, Any]:
        """The next page of `scroll` (empty hits at the end), with its `_scroll_id` first."""
        self._expire(now)
        key = _key(scroll)
        if key is None:
            raise IllegalArgumentError("Cannot parse scroll id")
        context = self._contexts.get(key)
        if context is None:
            raise SearchContextMissingError(f"No search context found for id [{key}]")
        if keep_alive is not None:
            context.keep_alive = keep_alive
        context.expires_at = now + context.keep_alive
        page = replace(context.request, from_=context.position)
        context.position += context.request.size
        body = search(context.targets, page, took=took)
        return {"_scroll_id": scroll, **body}

    def clear(self, ids: Sequence[str] | None) -> int:
        """`DELETE /_search/scroll`: the given ids (None or `_all`: every one); how many were
        open."""
        if ids is None or "_all" in ids:
            freed = len(self._contexts)
            self._contexts.clear()
            return freed
        freed = 0
        for scroll in ids:
            key = _key(scroll)
            if key is None:
                raise IllegalArgumentError("Cannot parse scroll id")
            if self._contexts.pop(key, None) is not None:
                freed += 1
        return freed


def scroll_id(key: int) -> str:
    raw = f"tasksim-scroll:{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _key(scroll: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(scroll + "=" * (-len(scroll) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = raw.partition(":")
    if prefix != "tasksim-scroll" or not number.isdigit():
        return None
    return int(number)
