"""A small REST client for the document and by-query tests: every JSON answer it reads is
validated against the saved OpenAPI schemas (tests/openapi.py `Checked`)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.harness import RunningCluster
from tests.openapi import Checked

JSON = {"Content-Type": "application/json"}


def _query(params: dict[str, Any]) -> str:
    if not params:
        return ""
    encoded = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()}
    return "?" + urllib.parse.urlencode(encoded)


class Rest:
    def __init__(self, cluster: RunningCluster) -> None:
        self.checked = Checked(cluster)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        if method == "HEAD":  # no body to validate
            status, answer, _ = self.checked.cluster.request(method, path + _query(params))
            return status, answer
        status, answer, _ = self.checked.request(
            method, path + _query(params), body=data, headers=JSON if data is not None else {}
        )
        return status, answer

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        status, answer = self.call(method, path, body, **params)
        assert status in (200, 201), (status, answer)
        return answer

    # the single-document and index APIs the official tests set up with
    def index(self, index: str, doc_id: str | None, body: Any, **params: Any) -> Any:
        if doc_id is None:
            return self.ok("POST", f"/{index}/_doc", body, **params)
        return self.ok("PUT", f"/{index}/_doc/{doc_id}", body, **params)

    def refresh(self, index: str | None = None) -> Any:
        return self.ok("POST", f"/{index}/_refresh" if index else "/_refresh")

    def count(self, index: str) -> int:
        return int(self.ok("GET", f"/{index}/_count")["count"])

    def hits(self, index: str, query: Any) -> int:
        body = self.ok("POST", f"/{index}/_search", {"query": query}, rest_total_hits_as_int=True)
        return int(body["hits"]["total"])

    def get(self, index: str, doc_id: str, **params: Any) -> tuple[int, Any]:
        return self.call("GET", f"/{index}/_doc/{doc_id}", **params)

    def drop(self, *names: str) -> None:
        for name in names:
            self.call("DELETE", f"/{name}")

    # the operations
    def update_by_query(self, index: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        return self.call("POST", f"/{index}/_update_by_query", body, **params)

    def delete_by_query(self, index: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        return self.call("POST", f"/{index}/_delete_by_query", body, **params)

    def reindex(self, body: Any, **params: Any) -> tuple[int, Any]:
        return self.call("POST", "/_reindex", body, **params)

    def task(self, task_id: str) -> Any:
        return self.ok("GET", f"/_tasks/{task_id}", wait_for_completion=True, timeout="60s")
