"""Scroll contexts (coordinator/scroll.py): pages over the first search's snapshot, keep-alive,
clearing, the limit and the errors OpenSearch gives."""

from __future__ import annotations

import pytest

from coordinator.documents import DocumentStore
from coordinator.documents.search import parse_search
from coordinator.scroll import Scrolls, SearchContextMissingError, parse_keep_alive, scroll_id
from simnode.errors import IllegalArgumentError, RejectedExecutionError


def store_of(n: int) -> DocumentStore:
    store = DocumentStore()
    docs = store.open("s")
    for i in range(n):
        docs.index(str(i), {"n": i})
    docs.refresh(0)
    return store


def test_pages_follow_the_first_search_and_keep_its_snapshot() -> None:
    store = store_of(5)
    scrolls = Scrolls()
    req = parse_search({"size": 2, "sort": "_doc"})
    sid = scrolls.open(store.targets(["s"], 0), req, 60, now=0)
    store["s"].index("new", {"n": 99})
    store["s"].refresh(1)  # later writes are not in the scroll's view
    pages = []
    while True:
        body = scrolls.next(sid, None, now=1)
        assert body["_scroll_id"] == sid and body["hits"]["total"]["value"] == 5
        if not body["hits"]["hits"]:
            break
        pages.append([h["_id"] for h in body["hits"]["hits"]])
    assert pages == [["2", "3"], ["4"]]


def test_keep_alive_clear_and_errors() -> None:
    store = store_of(1)
    scrolls = Scrolls(limit=2)
    req = parse_search({"size": 1})
    first = scrolls.open(store.targets(["s"], 0), req, 10, now=0)
    scrolls.next(first, 30, now=9)  # renewed: alive until 39
    scrolls.next(first, None, now=38)
    with pytest.raises(SearchContextMissingError, match=r"No search context found for id \[1\]"):
        scrolls.next(first, None, now=69)
    a = scrolls.open(store.targets(["s"], 0), req, 10, now=100)
    scrolls.open(store.targets(["s"], 0), req, 10, now=100)
    with pytest.raises(RejectedExecutionError, match=r"less than or equal to: \[2\]"):
        scrolls.open(store.targets(["s"], 0), req, 10, now=100)
    assert scrolls.clear([a]) == 1 and scrolls.clear(None) == 1 and len(scrolls) == 0
    with pytest.raises(IllegalArgumentError, match="Cannot parse scroll id"):
        scrolls.next("not-an-id", None, now=0)
    assert scroll_id(7) != scroll_id(8)


def test_keep_alive_values() -> None:
    assert parse_keep_alive("5m") == 300 and parse_keep_alive("500ms") == 0.5
    with pytest.raises(IllegalArgumentError, match=r"failed to parse setting \[scroll\]"):
        parse_keep_alive("5")
    with pytest.raises(IllegalArgumentError, match="fractional time values are not supported"):
        parse_keep_alive("1.5m")
