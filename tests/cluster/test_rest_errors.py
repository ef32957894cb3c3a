"""Every way a Tasks API request can be refused, table-driven, against a real cluster: exact HTTP
status, error `type` and `reason` (reference §4), the checks in OpenSearch's order, `X-Opaque-Id`
echoed on every answer, and every JSON answer valid against the official schemas."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.harness import RunningCluster
from tests.openapi import Checked, validate

BOOL = "Failed to parse value [{}] as only [true] or [false] are allowed."
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    type: str | None  # None: the simple `{"error": "<text>", "status": N}` form
    reason: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    root_cause: str | None = None  # the root cause's type when it is not the error itself
    with_status: bool = True  # the simple form carries `status` (no-handler answers do not)
    allow: str | None = None  # the `Allow` header of a 405


GROUP_BY = "[group_by] must be one of [nodes], [parents] or [none] but was [{}]"
UNRECOGNIZED = "request [{}] contains unrecognized parameter: [{}]"

CASES = [
    # task ids
    Case("GET", "/_tasks/foo", 400, "illegal_argument_exception", "malformed task id foo"),
    Case(
        "GET", "/_tasks/node:abc", 400, "illegal_argument_exception", "malformed task id node:abc"
    ),
    Case("GET", "/_tasks/a:1:2", 400, "illegal_argument_exception", "malformed task id a:1:2"),
    Case(
        "GET",
        "/_tasks/unset",
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: task id is required;",
    ),
    Case(
        "GET",
        "/_tasks/nodeX:999",
        404,
        "resource_not_found_exception",
        "task [nodeX:999] belongs to the node [nodeX] which isn't part of the cluster and there is "
        "no record of the task",
        root_cause="index_not_found_exception",
    ),
    Case(
        "GET",
        "/_tasks/{node-1}:99999",
        404,
        "resource_not_found_exception",
        "task [{node-1}:99999] isn't running and hasn't stored its results",
        root_cause="index_not_found_exception",
    ),
    Case(
        "GET",
        "/_tasks/{coordinator}:99999?wait_for_completion=true",
        404,
        "resource_not_found_exception",
        "task [{coordinator}:99999] isn't running and hasn't stored its results",
        root_cause="index_not_found_exception",
    ),
    # group_by
    Case("GET", "/_tasks?group_by=foo", 400, "illegal_argument_exception", GROUP_BY.format("foo")),
    Case("GET", "/_tasks?group_by=", 400, "illegal_argument_exception", GROUP_BY.format("")),
    Case(
        "GET", "/_tasks?group_by=Nodes", 400, "illegal_argument_exception", GROUP_BY.format("Nodes")
    ),
    # booleans
    Case("GET", "/_tasks?detailed=yes", 400, "illegal_argument_exception", BOOL.format("yes")),
    Case(
        "GET", "/_tasks?wait_for_completion=1", 400, "illegal_argument_exception", BOOL.format("1")
    ),
    Case(
        "GET",
        "/_tasks/x:1?wait_for_completion=no",
        400,
        "illegal_argument_exception",
        BOOL.format("no"),
    ),
    # time values
    Case(
        "GET",
        "/_tasks?timeout=abc",
        400,
        "illegal_argument_exception",
        "failed to parse setting [timeout] with value [abc] as a time value: unit is missing or "
        "unrecognized",
    ),
    Case(
        "GET",
        "/_tasks?timeout=-5s",
        400,
        "illegal_argument_exception",
        "failed to parse setting [timeout] with value [-5s] as a time value: negative durations "
        "are not supported",
    ),
    Case(
        "GET",
        "/_tasks?timeout=1.5s",
        400,
        "illegal_argument_exception",
        "failed to parse [1.5s], fractional time values are not supported",
    ),
    Case("GET", "/_tasks?timeout=xs", 400, "illegal_argument_exception", "failed to parse [xs]"),
    Case(
        "GET",
        "/_tasks/x:1?timeout=5",
        400,
        "illegal_argument_exception",
        "failed to parse setting [timeout] with value [5] as a time value: unit is missing or "
        "unrecognized",
    ),
    # parent_task_id
    Case(
        "GET",
        "/_tasks?parent_task_id=-1",
        400,
        "illegal_argument_exception",
        "malformed task id -1",
    ),
    Case(
        "GET",
        "/_tasks?parent_task_id=n:x",
        400,
        "illegal_argument_exception",
        "malformed task id n:x",
    ),
    # node selectors
    Case(
        "GET", "/_tasks?nodes=data:maybe", 400, "illegal_argument_exception", BOOL.format("maybe")
    ),
    Case(
        "GET",
        "/_tasks?nodes=_all,cluster_manager:nope",
        400,
        "illegal_argument_exception",
        BOOL.format("nope"),
    ),
    Case("GET", "/_cat/tasks?nodes=ingest:1", 400, "illegal_argument_exception", BOOL.format("1")),
    # unrecognized parameters
    Case(
        "GET",
        "/_tasks?master_timeout=1s",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks", "master_timeout"),
    ),
    Case(
        "GET",
        "/_tasks?cluster_manager_timeout=1s",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks", "cluster_manager_timeout"),
    ),
    Case(
        "POST",
        "/_tasks/_cancel?timeout=1s",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks/_cancel", "timeout"),
    ),
    Case(
        "GET",
        "/_tasks?b=2&a=1",
        400,
        "illegal_argument_exception",
        "request [/_tasks] contains unrecognized parameters: [a], [b]",
    ),
    Case(
        "GET",
        "/_tasks?detail=true",
        400,
        "illegal_argument_exception",
        "request [/_tasks] contains unrecognized parameter: [detail] -> did you mean [detailed]?",
    ),
    Case(
        "GET",
        "/_tasks?node=x&tmeout=1s",
        400,
        "illegal_argument_exception",
        "request [/_tasks] contains unrecognized parameters: [node] -> did you mean [nodes]?, "
        "[tmeout] -> did you mean [timeout]?",
    ),
    Case(
        "GET",
        "/_tasks?source=x",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks", "source"),
    ),
    Case(
        "GET",
        "/_tasks/x:1?detailed=true",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks/x:1", "detailed"),
    ),
    Case(
        "GET",
        "/_cat/tasks?full_id=true",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_cat/tasks", "full_id"),
    ),
    Case(
        "GET",
        "/_cat/tasks?group_by=none",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_cat/tasks", "group_by"),
    ),
    # validation
    Case(
        "POST",
        "/_tasks/n:1/_cancel?nodes=n",
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: task id cannot be used together with node ids;",
    ),
    # methods and handlers
    Case(  # PUT /{index} takes it: creating an index named _tasks
        "PUT",
        "/_tasks",
        400,
        "invalid_index_name_exception",
        "Invalid index name [_tasks], must not start with '_', '-', or '+'",
    ),
    Case(
        "POST",
        "/_tasks",
        405,
        None,
        "Incorrect HTTP method for uri [/_tasks] and method [POST], allowed: [GET, PUT, DELETE, HEAD]",
        allow="GET,PUT,DELETE,HEAD",
    ),
    Case(
        "POST",
        "/_tasks?pretty",
        405,
        None,
        "Incorrect HTTP method for uri [/_tasks?pretty] and method [POST], allowed: [GET, PUT, DELETE, HEAD]",
        allow="GET,PUT,DELETE,HEAD",
    ),
    Case(
        "PUT",
        "/_tasks/x:1",
        405,
        None,
        "Incorrect HTTP method for uri [/_tasks/x:1] and method [PUT], allowed: [GET]",
        allow="GET",
    ),
    Case(
        "GET",
        "/_tasks/a/b/c",
        400,
        None,
        "no handler found for uri [/_tasks/a/b/c] and method [GET]",
        with_status=False,
    ),
    # bodies
    Case(
        "GET",
        "/_tasks",
        400,
        "illegal_argument_exception",
        "request [GET /_tasks] does not support having a body",
        body=b"{}",
        headers=JSON,
    ),
    Case(  # what urllib and curl send with a body unless told otherwise
        "GET",
        "/_tasks",
        406,
        None,
        "Content-Type header [application/x-www-form-urlencoded] is not supported",
        body=b"{}",
    ),
    Case(
        "GET",
        "/_tasks",
        406,
        None,
        "Content-Type header [text/plain] is not supported",
        body=b"{}",
        headers={"Content-Type": "text/plain"},
    ),
    # response parameters read by the channel
    Case("GET", "/_tasks?pretty=maybe", 400, "illegal_argument_exception", BOOL.format("maybe")),
    Case("GET", "/_tasks?human=2", 400, "illegal_argument_exception", BOOL.format("2")),
    Case("GET", "/_tasks?error_trace=x", 400, "illegal_argument_exception", BOOL.format("x")),
    # headers
    Case(
        "GET",
        "/_tasks",
        400,
        "illegal_argument_exception",
        "Request exceeded the maximum size of task headers 8kb",
        headers={"X-Opaque-Id": "q" * 5000},
    ),
    Case(
        "GET",
        "/_tasks/{node-1}:1",
        400,
        "illegal_argument_exception",
        "Request exceeded the maximum size of task headers 8kb",
        headers={"X-Opaque-Id": "q" * 5000},
    ),
    # the order of checks: prepare, unrecognized, body, group_by, the action (header size,
    # validation, node resolution)
    Case(
        "GET",
        "/_tasks?timeout=1.5s&bar=1",
        400,
        "illegal_argument_exception",
        "failed to parse [1.5s], fractional time values are not supported",
    ),
    Case("GET", "/_tasks/foo?bar=1", 400, "illegal_argument_exception", "malformed task id foo"),
    Case(
        "GET",
        "/_tasks?group_by=foo&bar=1",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_tasks", "bar"),
    ),
    Case(
        "GET",
        "/_tasks?group_by=foo",
        400,
        "illegal_argument_exception",
        "request [GET /_tasks] does not support having a body",
        body=b"{}",
        headers=JSON,
    ),
    Case(
        "GET",
        "/_tasks?group_by=foo&nodes=data:maybe",
        400,
        "illegal_argument_exception",
        GROUP_BY.format("foo"),
    ),
    Case(
        "GET",
        "/_tasks?nodes=data:maybe",
        400,
        "illegal_argument_exception",
        "Request exceeded the maximum size of task headers 8kb",
        headers={"X-Opaque-Id": "q" * 5000},
    ),
    Case(
        "GET",
        "/_tasks/unset?wait_for_completion=maybe",
        400,
        "illegal_argument_exception",
        BOOL.format("maybe"),
    ),
    Case(
        "POST",
        "/_tasks/n:1/_cancel?nodes=n&group_by=x",
        400,
        "illegal_argument_exception",
        GROUP_BY.format("x"),
    ),
    Case(
        "PUT",
        "/_tasks?pretty=maybe",
        400,
        "illegal_argument_exception",
        BOOL.format("maybe"),
    ),
    Case("PUT", "/_tasks?error_trace=x", 400, "illegal_argument_exception", BOOL.format("x")),
    # _cat
    Case(
        "GET",
        "/_cat/tasks?s=nope",
        500,
        "unsupported_operation_exception",
        "Unable to sort by unknown sort key `nope`",
    ),
    Case("GET", "/_cat/tasks?v=maybe", 400, "illegal_argument_exception", BOOL.format("maybe")),
    Case(
        "GET",
        "/_cat/nodes?master_timeout=1s&cluster_manager_timeout=1s",
        400,
        "parse_exception",
        "Please only use one of the request parameters [master_timeout, cluster_manager_timeout].",
    ),
    Case(
        "GET",
        "/_cat/nodes?timeout=abc",
        400,
        "illegal_argument_exception",
        "failed to parse setting [NodesInfoRequest.timeout] with value [abc] as a time value: "
        "unit is missing or unrecognized",
    ),
    Case(
        "GET",
        "/_cat/nodes?nodes=x",
        400,
        "illegal_argument_exception",
        UNRECOGNIZED.format("/_cat/nodes", "nodes"),
    ),
]


def fill(text: str, cluster: RunningCluster) -> str:
    for node in cluster.nodes:
        text = text.replace("{" + node.name + "}", node.id)
    return text


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.path}" for c in CASES])
def test_error(cluster: RunningCluster, case: Case) -> None:
    path = fill(case.path, cluster)
    headers = {"X-Opaque-Id": "case", **case.headers}
    status, body, got = Checked(cluster).request(case.method, path, body=case.body, headers=headers)
    assert status == case.status, body
    assert header(got, "X-Opaque-Id") == headers["X-Opaque-Id"]
    assert header(got, "Content-Type") == "application/json; charset=UTF-8"
    reason = fill(case.reason, cluster)
    if case.type is None:
        assert body == (
            {"error": reason, "status": case.status} if case.with_status else {"error": reason}
        )
        assert header(got, "Allow") == case.allow
        return
    assert body["status"] == case.status
    assert body["error"]["type"] == case.type
    assert body["error"]["reason"] == reason
    root = body["error"]["root_cause"]
    assert len(root) == 1
    assert root[0]["type"] == (case.root_cause or case.type)
    assert "stack_trace" not in body["error"]


def test_error_trace_adds_stack_traces(cluster: RunningCluster) -> None:
    status, body = Checked(cluster).get("/_tasks/nodeX:1?error_trace=true")
    assert status == 404
    error = body["error"]
    assert error["stack_trace"].startswith(
        "ResourceNotFoundException[task [nodeX:1] belongs to the node [nodeX]"
    )
    assert "stack_trace" in error["root_cause"][0]
    assert "stack_trace" in error["caused_by"]
    assert "stack_trace" in error["caused_by"]["caused_by"]


def test_pretty_error_and_filter_path_never_filters_errors(cluster: RunningCluster) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=30)
    try:
        conn.request("GET", "/_tasks/foo?pretty&filter_path=status")
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 400
    assert text.startswith('{\n  "error" : {\n    "root_cause" : [\n      {\n')
    assert text.endswith('  "status" : 400\n}\n')
    assert json.loads(text)["error"]["reason"] == "malformed task id foo"


def test_two_distinct_opaque_ids_are_refused(cluster: RunningCluster) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=30)
    try:
        conn.putrequest("GET", "/_tasks")
        conn.putheader("X-Opaque-Id", "a")
        conn.putheader("X-Opaque-Id", "b")
        conn.endheaders()
        resp = conn.getresponse()
        body: Any = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 400
    assert body == {
        "error": "multiple values for single-valued header [X-Opaque-Id].",
        "status": 400,
    }
    validate("GET", "/_tasks", 400, body)


def test_options_lists_the_methods(cluster: RunningCluster) -> None:
    status, body, headers = cluster.request("OPTIONS", "/_tasks/_cancel")
    assert status == 200 and body == ""
    assert header(headers, "Allow") == "GET,POST"
