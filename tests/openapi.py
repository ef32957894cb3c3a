"""Validate tasksim's JSON answers against the official OpenSearch OpenAPI schemas.

The spec files in `tests/api_spec/` are loaded into a `referencing` registry under `file://` URIs,
so that their relative `$ref`s (`../schemas/_common.yaml#/...`, `_common.yaml#/...`) resolve across
files. `validate(method, path, status, body)` picks the schema the spec gives for that operation
and status (errors: `ErrorResponseBase`; the plain 405 / no-handler form is checked by hand) and
raises `jsonschema.ValidationError` when the body does not fit. `Checked` wraps a `RunningCluster`
so that every JSON answer a test reads has been validated (except successful answers cut down by
`filter_path`, which drop required fields by design).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.harness import RunningCluster

SPEC = Path(__file__).resolve().parent / "api_spec" / "spec"
BASE = "file:///spec/"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SPEC.rglob("*.yaml")):
        uri = BASE + path.relative_to(SPEC).as_posix()
        contents = yaml.safe_load(path.read_text())
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def _validator(uri: str) -> jsonschema.protocols.Validator:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": uri}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


TASKS = BASE + "namespaces/tasks.yaml#/components/responses/"
SCHEMAS = {
    "tasks.list": TASKS + "tasks.list@200/content/application~1json/schema",
    "tasks.get": TASKS + "tasks.get@200/content/application~1json/schema",
    "tasks.cancel": TASKS + "tasks.cancel@200/content/application~1json/schema",
    "error": BASE + "schemas/_common.yaml#/components/schemas/ErrorResponseBase",
    "cat.tasks.row": BASE + "schemas/cat.tasks.yaml#/components/schemas/TasksRecord",
    "write": BASE + "schemas/_common.yaml#/components/schemas/WriteResponseBase",
    # `_reindex`, `_update_by_query`, `_delete_by_query` (their `_core` operations are not in the
    # saved spec; their responses are all this schema of `_common.yaml`).
    "bulk_by_scroll": BASE + "schemas/_common.yaml#/components/schemas/BulkByScrollResponseBase",
}
_COMMON = BASE + "schemas/_common.yaml#/components/schemas/"
_SHARDS = {"$ref": _COMMON + "ShardStatistics"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_OBJ = {"type": "object"}
# The document answers whose schemas are not among the vendored spec files (its `_core` schemas):
# tasksim's own statement of their shape, as OpenSearch's `GetResult.toXContent`,
# `SearchHit`/`SearchHits`/`SearchResponse.toXContent` and `BulkItemResponse.toXContent` write
# them, built on the vendored `_common.yaml` components (`ShardStatistics`, `ErrorCause`).
_GET_RESULT = {
    "type": "object",
    "properties": {
        "_index": _STR,
        "_id": _STR,
        "found": {"type": "boolean"},
        "_version": _INT,
        "_seq_no": _INT,
        "_primary_term": _INT,
        "_routing": _STR,
        "_source": _OBJ,
        "fields": _OBJ,
    },
    "required": ["_index", "_id", "found"],
    "additionalProperties": False,
}
_HIT = {
    "type": "object",
    "properties": {
        "_index": _STR,
        "_id": _STR,
        "_score": {"type": ["number", "null"]},
        "_version": _INT,
        "_seq_no": _INT,
        "_primary_term": _INT,
        "_routing": _STR,
        "_source": _OBJ,
        "fields": _OBJ,
        "sort": {"type": "array"},
    },
    "required": ["_index", "_id"],
    "additionalProperties": False,
}
_TOTAL = {
    "oneOf": [
        {"type": "integer", "minimum": 0},  # rest_total_hits_as_int
        {
            "type": "object",
            "properties": {
                "value": {"type": "integer", "minimum": 0},
                "relation": {"enum": ["eq", "gte"]},
            },
            "required": ["value", "relation"],
            "additionalProperties": False,
        },
    ]
}
_BULK_ITEM = {
    "type": "object",
    "properties": {
        "_index": _STR,
        "_id": {"type": ["string", "null"]},
        "_version": _INT,
        "result": _STR,
        "_shards": _SHARDS,
        "_seq_no": _INT,
        "_primary_term": _INT,
        "status": _INT,
        "forced_refresh": {"type": "boolean"},
        "error": {"$ref": _COMMON + "ErrorCause"},
        "get": _GET_RESULT,
    },
    "required": ["_index", "status"],
    "additionalProperties": False,
}
# Responses the `_core` / `indices` namespace files define inline, restated from their components.
INLINE: dict[str, dict[str, Any]] = {
    "get": _GET_RESULT,
    "search": {
        "type": "object",
        "properties": {
            "_scroll_id": _STR, "took": _INT, "timed_out": {"type": "boolean"},
            "terminated_early": {"type": "boolean"}, "num_reduce_phases": _INT,
            "_shards": _SHARDS,
            "hits": {
                "type": "object",
                "properties": {"total": _TOTAL, "max_score": {"type": ["number", "null"]},
                               "hits": {"type": "array", "items": _HIT}},
                "required": ["hits"],
                "additionalProperties": False,
            },
        },
        "required": ["took", "timed_out", "_shards", "hits"],
        "additionalProperties": False,
    },
    "count": {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "terminated_early": {"type": "boolean"},
                       "_shards": _SHARDS},
        "required": ["count", "_shards"],
    },
    "bulk": {
        "type": "object",
        "properties": {
            "errors": {"type": "boolean"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": _BULK_ITEM,
                    "minProperties": 1,
                    "maxProperties": 1,
                },
            },
            "took": {"type": "integer"},
            "ingest_took": {"type": "integer"},
        },
        "required": ["errors", "items", "took"],
    },
    "indices.refresh": {
        "type": "object",
        "properties": {"_shards": _SHARDS},
        "required": ["_shards"],
    },
}  # fmt: skip
_DOC = r"/[^/_][^/]*/_doc/[^/]+"


def operation(method: str, path: str) -> str | None:
    """The spec operation a request is, or None for endpoints the saved spec does not cover."""
    path = path.split("?", 1)[0].rstrip("/")
    if method == "GET" and path == "/_tasks":
        return "tasks.list"
    if method == "GET" and re.fullmatch(r"/_tasks/[^/]+", path):
        return "tasks.get"
    if method == "POST" and re.fullmatch(r"/_tasks(/[^/]+)?/_cancel", path):
        return "tasks.cancel"
    if method == "GET" and path == "/_cat/tasks":
        return "cat.tasks"
    if method == "POST" and re.fullmatch(r"/_reindex|/[^/_][^/]*/_(update|delete)_by_query", path):
        return "bulk_by_scroll"
    if method in ("PUT", "POST") and (
        re.fullmatch(r"/[^/_][^/]*/_(doc|create)(/[^/]+)?", path)
        or re.fullmatch(r"/[^/_][^/]*/_update/[^/]+", path)
    ):
        return "write"
    if method == "DELETE" and re.fullmatch(_DOC, path):
        return "write"
    if method == "GET" and re.fullmatch(_DOC, path):
        return "get"
    if method in ("GET", "POST") and re.fullmatch(r"(/[^/]+)?/_search", path):
        return "search"
    if method in ("GET", "POST") and re.fullmatch(r"(/[^/]+)?/_count", path):
        return "count"
    if method in ("PUT", "POST") and re.fullmatch(r"(/[^/]+)?/_bulk", path):
        return "bulk"
    if method in ("GET", "POST") and re.fullmatch(r"(/[^/]+)?/_refresh", path):
        return "indices.refresh"
    return None


def _inline_validator(op: str) -> jsonschema.protocols.Validator:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **INLINE[op]}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def validate(method: str, path: str, status: int, body: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `body` fits the spec for this answer."""
    op = operation(method, path)
    if op == "bulk_by_scroll" and isinstance(body, dict) and "error" not in body:
        if set(body) == {"task"}:  # wait_for_completion=false
            assert re.fullmatch(r"[^:]+:\d+", body["task"]), body
            return
        # 200, or the highest status of its failures (409 for version conflicts)
        _validator(SCHEMAS[op]).validate(body)
        return
    if status == 404 and op in ("write", "get") and isinstance(body, dict) and "error" not in body:
        # a delete of a missing document (`result: not_found`), a get of one (`found: false`)
        (_inline_validator(op) if op in INLINE else _validator(SCHEMAS[op])).validate(body)
        return
    if status >= 400:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            # RestController's simple form (405, no handler, bad header): no schema in the spec.
            assert set(body) <= {"error", "status"}, body
            return
        _validator(SCHEMAS["error"]).validate(body)
        return
    if op == "cat.tasks":
        if isinstance(body, list):
            row = _validator(SCHEMAS["cat.tasks.row"])
            for item in body:
                row.validate(item)
        return
    if op in INLINE:
        _inline_validator(op).validate(body)
    elif op is not None:
        _validator(SCHEMAS[op]).validate(body)


class Checked:
    """A `RunningCluster` whose JSON answers are all validated against the spec."""

    def __init__(self, cluster: RunningCluster) -> None:
        self.cluster = cluster

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = self.cluster.request(method, path, **kw)
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        # `filter_path` cuts required fields on purpose: only unfiltered answers must fit.
        if "json" in content_type and (status >= 400 or "filter_path=" not in path):
            validate(method, path, status, body)
        return status, body, headers

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, **kw)
        return status, body

    def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("POST", path, **kw)
        return status, body
