"""The REST front: hypercorn + starlette on the coordinator's trio loop, OpenSearch's dispatch rules.

Routing follows `RestController`: paths are matched segment by segment, explicit segments before
`{wildcards}`; the first matching route that has a handler for the method serves it; if a route
matches but none takes the method → 405 `Incorrect HTTP method for uri [...] and method [...],
allowed: [...]` with an `Allow` header; nothing matches → 400 `no handler found for uri [...] and
method [...]`. A handler reads its parameters through `Params` (consumed-parameter bookkeeping),
then `finish()` runs the unrecognized-parameter and body checks in OpenSearch's order.

Responses: `application/json; charset=UTF-8`, compact JSON, or Jackson's pretty printer with
`pretty`; `filter_path` is applied last; `X-Opaque-Id` is echoed. Every `OpenSearchError` becomes
OpenSearch's error envelope (render.error_envelope); any other exception is a 500 `exception`
envelope — a bug in tasksim never takes the cluster down. Handlers live in `rest_*.py` modules that
register themselves with `Router.add`.

Before any of that, every request passes the front door (`build_app`): the limits of
coordinator/limits.py and, when security is on, the basic auth of coordinator/security.py — in the
dispatch, for every path, so that endpoints other modules add are covered without asking.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from coordinator.limits import (
    ConcurrencyGate,
    Limits,
    body_timeout,
    check_request_head,
    content_too_large,
    header_size,
    initial_line_length,
    rejected_request,
)
from coordinator.params import Params
from coordinator.render import error_envelope, simple_error
from coordinator.security import CHALLENGE, BasicAuth, TlsFiles
from simnode.errors import IllegalArgumentError, OpenSearchError, ParseError
from simnode.registry import X_OPAQUE_ID

log = logging.getLogger("tasksim.http")

JSON_TYPE = "application/json; charset=UTF-8"
# RestRequest.Method, in enum order (how the `allowed:` list is printed).
METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT")


@dataclass
class RestRequest:
    method: str
    path: str
    uri: str  # the raw request URI, query string included
    params: Params
    path_params: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def task_headers(self) -> tuple[tuple[str, str], ...]:
        """The thread-context headers a task may copy (X-Opaque-Id)."""
        value = self.headers.get(X_OPAQUE_ID.lower())
        return ((X_OPAQUE_ID, value),) if value is not None else ()

    def finish(self, *, body_allowed: bool = False) -> None:
        """`BaseRestHandler.handleRequest` after `prepareRequest`: unrecognized parameters, then
        the body check."""
        self.params.check_unrecognized()
        if self.body and not body_allowed:
            raise IllegalArgumentError(
                f"request [{self.method} {self.path}] does not support having a body"
            )

    def json_body(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise ParseError(f"Failed to parse content to map: {e}") from e


@dataclass
class RestResponse:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    raw: bool = False  # body is already text (e.g. _cat tables)


Handler = Callable[[RestRequest], Awaitable[RestResponse]]


@dataclass
class _Route:
    pattern: tuple[str, ...]
    handlers: dict[str, Handler] = field(default_factory=dict)

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        found: dict[str, str] = {}
        for part, seg in zip(self.pattern, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                found[part[1:-1]] = seg
            elif part != seg:
                return None
        return found

    def rank(self) -> tuple[int, ...]:
        """Explicit segments sort before wildcards, position by position."""
        return tuple(1 if p.startswith("{") else 0 for p in self.pattern)


class Router:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, ...], _Route] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        pattern = tuple(s for s in path.split("/") if s)
        self._routes.setdefault(pattern, _Route(pattern)).handlers[method] = handler

    def routes(self) -> list[tuple[str, str]]:
        """Every (method, path pattern) registered, e.g. ("GET", "/_tasks/{task_id}")."""
        return [
            (method, "/" + "/".join(route.pattern))
            for route in self._routes.values()
            for method in route.handlers
        ]

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | RestResponse:
        segments = tuple(s for s in path.split("/") if s)
        matches = [
            (route, found)
            for route in sorted(self._routes.values(), key=_Route.rank)
            if (found := route.match(segments)) is not None
        ]
        allowed = {m for route, _ in matches for m in route.handlers}
        for route, found in matches:
            handler = route.handlers.get(method)
            if handler is not None:
                return handler, found
            if method not in allowed:
                break
        if matches and method not in allowed:
            listed = [m for m in METHODS if m in allowed]
            message = f"Incorrect HTTP method for uri [{{uri}}] and method [{method}], allowed: [{', '.join(listed)}]"
            return RestResponse(
                simple_error(message, 405), status=405, headers={"Allow": ",".join(listed)}
            )
        return RestResponse(
            {"error": f"no handler found for uri [{path}] and method [{method}]"}, status=400
        )


# -- JSON output ------------------------------------------------------------------------------------


def _pretty(value: Any, indent: int) -> str:
    """Jackson's DefaultPrettyPrinter as OpenSearch configures it (`"key" : value`, `{ }`)."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)} : {_pretty(v, indent + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        items = [f"{pad}{_pretty(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


def dump_json(value: Any, *, pretty: bool) -> str:
    if pretty:
        return _pretty(value, 0) + "\n"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def filter_path(value: Any, expressions: str | None) -> Any:
    """`filter_path`: keep only what the comma-separated dotted patterns (`*`, `**`) name."""
    if not expressions:
        return value
    includes = [e.split(".") for e in expressions.split(",") if e and not e.startswith("-")]
    excludes = [e[1:].split(".") for e in expressions.split(",") if e.startswith("-")]

    def matches(pattern: str, key: str) -> bool:
        return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), key) is not None

    def keep(node: Any, paths: list[list[str]], exclude: bool) -> Any:
        if not paths:
            return node
        if isinstance(node, list):
            kept = [keep(item, paths, exclude) for item in node]
            return [k for k in kept if k is not _MISSING]
        if not isinstance(node, dict):
            return _MISSING if not exclude else node
        out: dict[str, Any] = {}
        for key, child in node.items():
            rest: list[list[str]] = []
            whole = False
            for path in paths:
                head = path[0]
                if head == "**":
                    rest.append(path)
                    if len(path) > 1 and matches(path[1], key):
                        if len(path) == 2:
                            whole = True
                        else:
                            rest.append(path[2:])
                elif matches(head, key):
                    if len(path) == 1:
                        whole = True
                    else:
                        rest.append(path[1:])
            if exclude:
                if whole:
                    continue
                out[key] = keep(child, rest, exclude) if rest else child
            elif whole:
                out[key] = child
            elif rest:
                sub = keep(child, rest, exclude)
                if sub is not _MISSING and sub != {} and sub != []:
                    out[key] = sub
        return out if (out or exclude) else _MISSING

    result = value
    if includes:
        result = keep(result, includes, False)
        if result is _MISSING:
            result = {}
    if excludes:
        result = keep(result, excludes, True)
    return result


_MISSING: Any = object()


# -- the ASGI app -----------------------------------------------------------------------------------


def _plain(
    status: int,
    text: str = "",
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        text.encode("utf-8"), status_code=status, headers=headers, media_type=content_type
    )


CLOSE = {"Connection": "close"}


def _envelope(err: OpenSearchError, headers: dict[str, str] | None = None) -> Response:
    body = dump_json(error_envelope(err), pretty=False)
    return _plain(err.status, body, content_type=JSON_TYPE, headers=headers)


def build_app(
    router: Router,
    *,
    auth: BasicAuth | None = None,
    limits: Limits | None = None,
    gate: ConcurrencyGate | None = None,
) -> Starlette:
    """The ASGI app. Every request passes the front door first, in the order OpenSearch's HTTP
    pipeline has it: the request line and header limits (Netty's decoder), authentication (the
    security plugin's header verifier), the body limit and its read timeout (the aggregator: a
    request is dispatched only once its body is complete, so a slow sender holds no slot), the
    concurrency limit; then routing. That is why a new endpoint is covered by all of them
    without doing anything."""
    limits = limits or Limits()
    gate = gate or ConcurrencyGate(limits.max_concurrent_requests)

    async def dispatch(request: Request) -> Response:
        response = await _front_door(request)
        if request.method.upper() == "HEAD" and response.body:
            # A HEAD answer has the headers of the GET answer and no body.
            response = Response(b"", status_code=response.status_code, headers=response.headers)
        return response

    async def _front_door(request: Request) -> Response:
        scope = request.scope
        method = request.method.upper()
        path = request.url.path
        try:
            check_request_head(
                limits,
                initial_line_length(
                    scope["method"],
                    scope.get("raw_path") or path.encode(),
                    scope.get("query_string", b""),
                    scope.get("http_version", "1.1"),
                ),
                header_size(scope.get("headers", [])),
            )
        except OpenSearchError as e:
            return _envelope(e, CLOSE)
        if auth is not None and auth.authenticate(request.headers.get("authorization")) is None:
            return _plain(
                CHALLENGE.status,
                CHALLENGE.body,
                content_type=CHALLENGE.content_type,
                headers=CHALLENGE.headers,
            )
        body = await _read_body(request)
        if isinstance(body, Response):
            return body
        if not gate.enter():
            return _envelope(rejected_request(limits, method, path, gate.in_flight))
        try:
            return await _serve(request, method, path, body)
        finally:
            gate.leave()

    async def _read_body(request: Request) -> bytes | Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and content_too_large(limits, int(declared)):
            return _plain(413, headers=CLOSE)
        body = bytearray()
        with trio.move_on_after(limits.body_timeout) as waited:
            try:
                async for chunk in request.stream():
                    body += chunk
                    if content_too_large(limits, len(body)):
                        return _plain(413, headers=CLOSE)
            except ClientDisconnect:
                return _plain(400, headers=CLOSE)  # nobody is left to read it
        if waited.cancelled_caught:
            return _envelope(body_timeout(limits), CLOSE)
        return bytes(body)

    async def _serve(request: Request, method: str, path: str, body: bytes) -> Response:
        raw_query = request.url.query
        uri = path + (f"?{raw_query}" if raw_query else "")
        params = Params(list(request.query_params.multi_items()), path)
        opaque = request.headers.get(X_OPAQUE_ID.lower())
        resolved = router.resolve(method, path)
        if isinstance(resolved, RestResponse):
            response = resolved
            if response.status == 405:
                response.body["error"] = response.body["error"].replace("{uri}", uri)
        else:
            handler, path_params = resolved
            rest = RestRequest(
                method=method,
                path=path,
                uri=uri,
                params=params,
                path_params=path_params,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            try:
                response = await handler(rest)
            except OpenSearchError as e:
                response = RestResponse(
                    error_envelope(e, error_trace=params.response_flag("error_trace")),
                    status=e.status,
                )
            except trio.Cancelled:
                raise
            except Exception as e:  # a tasksim bug: answer 500, keep serving
                log.exception("unhandled error serving %s %s", method, uri)
                err = OpenSearchError(f"{type(e).__name__}: {e}")
                response = RestResponse(error_envelope(err), status=500)
        headers = dict(response.headers)
        if opaque is not None:
            headers[X_OPAQUE_ID] = opaque
        if response.raw:
            text = str(response.body)
        else:
            out = filter_path(response.body, params.response_value("filter_path"))
            text = dump_json(out, pretty=params.response_flag("pretty"))
        return Response(
            text.encode("utf-8") if method != "HEAD" else b"",
            status_code=response.status,
            headers=headers,
            media_type=response.content_type,
        )

    app = Starlette(routes=[Route("/{path:path}", dispatch, methods=list(METHODS))])
    app.state.gate = gate
    return app


def contain_connection_failures() -> None:
    """One connection's failure must never take the HTTP server down.

    hypercorn's trio worker lets an exception from a connection handler escape into the server's
    nursery, which ends `serve()` and with it the coordinator: a client that sends a request, then
    bytes h11 rejects, then EOF makes two tasks write the socket at once (`BusyResourceError`),
    and hypercorn issue #203 (`Got data when expected EOF`) is the same family. Found by
    tests/properties/test_fuzz_http.py. This wraps `TCPServer.run`: such a failure is logged and
    closes that one connection. Idempotent."""
    from hypercorn.trio import tcp_server

    server_cls: Any = tcp_server.TCPServer
    if getattr(server_cls.run, "_tasksim_contained", False):
        return
    original = server_cls.run

    async def run(self: Any) -> None:
        try:
            await original(self)
        except Exception as e:  # an ExceptionGroup of Exceptions too; never trio.Cancelled
            log.debug("a connection failed and was closed: %r", e)
            with trio.CancelScope(shield=True):
                try:
                    await self.stream.aclose()
                except Exception:
                    pass

    run._tasksim_contained = True  # type: ignore[attr-defined]
    server_cls.run = run


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    *,
    shutdown: trio.Event,
    limits: Limits | None = None,
    tls: TlsFiles | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with hypercorn inside the caller's nursery; `started()` reports the bound port.

    With `tls`, HTTPS only (HTTP/1.1 over TLS, as OpenSearch serves it; a plain-HTTP client gets
    its connection closed). Idle connections — and a client that stalls before its headers are
    complete — are closed after `tasksim.http.idle_timeout`; each connection is its own trio
    task, so a slow client never holds up the others."""
    contain_connection_failures()
    limits = limits or Limits()
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tasksim.hypercorn")
    config.keep_alive_max_requests = 1_000_000
    config.keep_alive_timeout = limits.idle_timeout
    config.graceful_timeout = 1.0
    config.include_server_header = False  # OpenSearch sends neither
    config.include_date_header = False
    # Let requests up to well past OpenSearch's limits through to the app, which answers them
    # with OpenSearch's errors; beyond that, hypercorn's own 400 and a closed connection.
    config.h11_max_incomplete_size = max(
        64 * 1024, 2 * (limits.max_initial_line_length + limits.max_header_size)
    )
    if tls is not None:
        config.certfile = str(tls.cert)
        config.keyfile = str(tls.key)
        config.alpn_protocols = ["http/1.1"]
        config.ssl_handshake_timeout = min(10.0, limits.idle_timeout)

    async def started(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started)
        bound = binds[0] if binds else f"http://{host}:{port}"
        task_status.started(int(bound.rsplit(":", 1)[1]))
