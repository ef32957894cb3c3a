"""The REST front without a cluster: routing (405 with Allow, OPTIONS, no handler), the order of
OpenSearch's checks, Jackson's pretty printer and `filter_path`, driven through the real ASGI app."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from coordinator.http import RestRequest, RestResponse, Router, build_app, dump_json, filter_path
from coordinator.security import BasicAuth, User

# -- a minimal ASGI client --------------------------------------------------------------------------


def call(
    router: Router,
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    auth: BasicAuth | None = None,
) -> tuple[int, dict[str, str], str]:
    app = build_app(router, auth=auth)
    path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers or []],
        "server": ("127.0.0.1", 9200),
        "client": ("127.0.0.1", 5555),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    trio.run(app, scope, receive, send)
    start = sent[0]
    out_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    return start["status"], out_headers, text


def router() -> Router:
    r = Router()

    async def tasks(request: RestRequest) -> RestResponse:
        request.params.param("detailed")
        request.finish()
        return RestResponse({"nodes": {"n1": {"name": "a", "tasks": {}}}, "human": request.human})

    async def task(request: RestRequest) -> RestResponse:
        task_id = request.params.param("task_id")
        request.finish()
        return RestResponse({"task_id": task_id})

    async def cancel(request: RestRequest) -> RestResponse:
        request.finish()
        return RestResponse({"cancelled": True})

    r.add("GET", "/_tasks", tasks)
    r.add("GET", "/_tasks/{task_id}", task)
    r.add("POST", "/_tasks/_cancel", cancel)
    return r


def error_of(text: str) -> tuple[str, str]:
    body = json.loads(text)
    return body["error"]["type"], body["error"]["reason"]


# -- routing ----------------------------------------------------------------------------------------


def test_wrong_method_is_405_with_allow_and_the_raw_uri() -> None:
    status, headers, text = call(router(), "PUT", "/_tasks?pretty")
    assert status == 405
    assert headers["allow"] == "GET"
    assert text == (
        '{\n  "error" : "Incorrect HTTP method for uri [/_tasks?pretty] and method [PUT], '
        'allowed: [GET]",\n  "status" : 405\n}\n'
    )


def test_explicit_segment_without_the_method_falls_through_to_the_wildcard() -> None:
    status, _, text = call(router(), "GET", "/_tasks/_cancel")
    assert status == 200 and json.loads(text) == {"task_id": "_cancel"}
    status, headers, text = call(router(), "DELETE", "/_tasks/_cancel")
    assert status == 405 and headers["allow"] == "GET,POST"
    assert "allowed: [GET, POST]" in text


def test_options_answers_200_with_allow() -> None:
    status, headers, text = call(router(), "OPTIONS", "/_tasks")
    assert (status, headers["allow"], text) == (200, "GET", "")
    assert headers["content-type"] == "text/plain; charset=UTF-8"


def test_no_handler_is_400_without_status_field() -> None:
    status, _, text = call(router(), "GET", "/_nope?x=1")
    assert status == 400
    assert json.loads(text) == {"error": "no handler found for uri [/_nope] and method [GET]"}


@pytest.mark.parametrize("path", ["/_ta\nsks", "/_tasks\n", "/_tasks\r", "/_ta\rsks", "/_tasks\t"])
def test_control_characters_in_the_path_are_kept_and_routed_as_sent(path: str) -> None:
    # `%0A` in the middle got Starlette's text/plain 404; at the end it was served as `/_tasks`,
    # and `%0D` and `%09` were dropped (urllib's urlsplit strips them from `request.url`).
    status, headers, text = call(router(), "GET", path)
    assert status == 400
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(text) == {"error": f"no handler found for uri [{path}] and method [GET]"}


def test_a_control_character_path_is_authenticated_first() -> None:
    auth = BasicAuth([User("admin", "admin")])
    status, headers, _ = call(router(), "GET", "/_ta\nsks", auth=auth)
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="OpenSearch Security"'


def test_an_unknown_method_is_opensearch_405_unexpected_http_method() -> None:
    status, headers, text = call(router(), "FOO", "/_tasks")
    assert (status, headers["allow"]) == (405, "GET")
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(text) == {"error": "Unexpected HTTP method, allowed: [GET]", "status": 405}
    status, headers, text = call(router(), "PRI", "*")
    assert status == 405 and "allow" not in headers
    assert json.loads(text) == {"error": "Unexpected HTTP method", "status": 405}


# -- the order of checks ----------------------------------------------------------------------------


def test_bad_pretty_is_a_plain_bad_request_before_routing() -> None:
    status, headers, text = call(
        router(), "PUT", "/_nope?pretty=yes&error_trace=no", headers=[("X-Opaque-Id", "q")]
    )
    assert status == 400
    assert headers["x-opaque-id"] == "q"
    assert not text.startswith("{\n")  # written without pretty
    assert error_of(text) == (
        "illegal_argument_exception",
        "Failed to parse value [yes] as only [true] or [false] are allowed.",
    )


def test_bad_human_is_a_bad_request() -> None:
    status, _, text = call(router(), "GET", "/_tasks?human=1")
    assert status == 400
    assert error_of(text)[1] == "Failed to parse value [1] as only [true] or [false] are allowed."


def test_several_opaque_ids_then_error_trace_then_routing() -> None:
    status, _, text = call(
        router(),
        "PUT",
        "/_tasks?error_trace=x",
        headers=[("X-Opaque-Id", "a"), ("X-Opaque-Id", "b")],
    )
    assert (status, json.loads(text)) == (
        400,
        {"error": "multiple values for single-valued header [X-Opaque-Id].", "status": 400},
    )
    status, _, text = call(
        router(),
        "PUT",
        "/_tasks?error_trace=x",
        headers=[("X-Opaque-Id", "a"), ("X-Opaque-Id", "a")],
    )
    assert status == 400
    assert error_of(text)[1] == "Failed to parse value [x] as only [true] or [false] are allowed."
    status, _, _ = call(router(), "PUT", "/_tasks?error_trace=true")
    assert status == 405


def test_body_needs_a_content_type_then_a_handler_that_reads_it() -> None:
    status, _, text = call(router(), "GET", "/_tasks", body=b"{}")
    assert (status, json.loads(text)) == (
        406,
        {"error": "Content-Type header is missing", "status": 406},
    )
    status, _, text = call(
        router(), "GET", "/_tasks", body=b"{}", headers=[("Content-Type", "text/plain")]
    )
    assert json.loads(text)["error"] == "Content-Type header [text/plain] is not supported"
    status, _, text = call(
        router(), "GET", "/_tasks?foo=1", body=b"{}", headers=[("Content-Type", "application/json")]
    )
    assert error_of(text)[1] == "request [/_tasks] contains unrecognized parameter: [foo]"
    status, _, text = call(
        router(), "GET", "/_tasks", body=b"{}", headers=[("Content-Type", "application/json")]
    )
    assert status == 400
    assert error_of(text)[1] == "request [GET /_tasks] does not support having a body"


def test_malformed_content_type_is_a_bad_request() -> None:
    status, _, text = call(router(), "GET", "/_tasks", headers=[("Content-Type", "json")])
    assert status == 400
    assert error_of(text)[1] == "invalid Content-Type header [json]"


def test_path_parameters_are_consumed_and_suggested() -> None:
    status, _, text = call(router(), "GET", "/_tasks/n:1?task=1")
    assert status == 400
    assert error_of(text)[1] == (
        "request [/_tasks/n:1] contains unrecognized parameter: [task] -> did you mean [task_id]?"
    )


def test_channel_parameters_are_always_accepted_and_suggested() -> None:
    status, _, text = call(
        router(),
        "GET",
        "/_tasks?format=json&filter_path=nodes&human&pretty=false&error_trace=false",
    )
    assert status == 200
    assert json.loads(text) == {"nodes": {"n1": {"name": "a", "tasks": {}}}}
    status, _, text = call(router(), "GET", "/_tasks?humn=true")
    assert error_of(text)[1] == (
        "request [/_tasks] contains unrecognized parameter: [humn] -> did you mean [human]?"
    )


def test_errors_are_never_filtered_but_pretty_applies() -> None:
    status, headers, text = call(
        router(), "GET", "/_tasks?x=1&filter_path=status&pretty", headers=[("X-Opaque-Id", "z")]
    )
    assert status == 400 and headers["x-opaque-id"] == "z"
    assert text.startswith('{\n  "error" : {\n    "root_cause" : [')
    assert json.loads(text)["status"] == 400


# -- output -----------------------------------------------------------------------------------------


def test_pretty_is_jackson_default_pretty_printer() -> None:
    value = {"a": {}, "b": [], "c": [1, {"d": "é"}], "e": None}
    assert dump_json(value, pretty=True) == (
        '{\n  "a" : { },\n  "b" : [ ],\n  "c" : [\n    1,\n    {\n      "d" : "é"\n    }\n  ],\n'
        '  "e" : null\n}\n'
    )
    assert dump_json(value, pretty=False) == '{"a":{},"b":[],"c":[1,{"d":"é"}],"e":null}'


DOC: dict[str, Any] = {
    "node_failures": [{"type": "failed_node_exception", "node_id": "X"}],
    "nodes": {
        "n1": {"name": "a", "roles": ["data"], "tasks": {"n1:1": {"action": "x", "id": 1}}},
        "n2": {"name": "b", "roles": [], "tasks": {"n2:5": {"action": "y", "id": 5}}},
    },
    "tasks": [{"action": "x", "id": 1}, {"id": 2}],
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (None, DOC),
        ("", DOC),
        ("nodes.*.name", {"nodes": {"n1": {"name": "a"}, "n2": {"name": "b"}}}),
        ("nodes.n1.roles", {"nodes": {"n1": {"roles": ["data"]}}}),
        ("nodes.*.roles.x", {}),  # nothing under a list of strings
        (
            "**.action",
            {
                "nodes": {
                    "n1": {"tasks": {"n1:1": {"action": "x"}}},
                    "n2": {"tasks": {"n2:5": {"action": "y"}}},
                },
                "tasks": [{"action": "x"}],
            },
        ),
        ("tasks.action", {"tasks": [{"action": "x"}]}),
        ("tasks.nope", {}),
        ("**.nodes", {}),  # `**` stands for at least one level
        (
            "node_failures.node_id , nodes.n2.name",
            {"node_failures": [{"node_id": "X"}], "nodes": {"n2": {"name": "b"}}},
        ),
        ("nodes.n*.tasks.*:5", {"nodes": {"n2": {"tasks": {"n2:5": {"action": "y", "id": 5}}}}}),
        ("-nodes,-tasks", {"node_failures": DOC["node_failures"]}),
        ("nodes.*.name,-nodes.n1", {"nodes": {"n2": {"name": "b"}}}),
        (
            "-**.id",
            {
                "node_failures": DOC["node_failures"],
                "nodes": {
                    "n1": {"name": "a", "roles": ["data"], "tasks": {"n1:1": {"action": "x"}}},
                    "n2": {"name": "b", "roles": [], "tasks": {"n2:5": {"action": "y"}}},
                },
                "tasks": [{"action": "x"}, {}],
            },
        ),
        ("nope", {}),
    ],
)
def test_filter_path(expr: str | None, expected: Any) -> None:
    assert filter_path(DOC, expr) == expected


def test_filter_path_on_a_root_array_and_escaped_dots() -> None:
    rows = [{"a": "1", "b": "2"}, {"a": "3"}]
    assert filter_path(rows, "b") == [{"b": "2"}]
    assert filter_path(rows, "c") == []
    assert filter_path({"a.b": 1, "a": {"b": 2}}, "a\\.b") == {"a.b": 1}
