"""The REST front: hypercorn + starlette on the coordinator's trio loop, OpenSearch's dispatch rules.

A request goes through OpenSearch's steps in OpenSearch's order; the first failure answers:

1. the channel (`AbstractRestChannel`) reads `format`, `filter_path`, `pretty`, `human`; a bad
   boolean is a 400 error envelope written without any of them (`dispatchBadRequest`);
2. `X-Opaque-Id` with several distinct values → 400 `multiple values for single-valued header`;
3. `error_trace` is read (a bad boolean is a 400 envelope);
4. routing (`RestController`): explicit segments before `{wildcards}`; the first matching route
   with a handler for the method serves it; `OPTIONS` → 200 with `Allow`; a route that matches
   without the method → 405 `Incorrect HTTP method for uri [...] and method [...], allowed: [...]`
   with `Allow`; nothing → 400 `no handler found for uri [...] and method [...]`;
5. a body needs a JSON-family `Content-Type` (406 otherwise);
6. the handler reads its parameters through `Params`, then `finish()` runs the
   unrecognized-parameter check (with "did you mean") and the body check (`BaseRestHandler`).

Answers are `application/json; charset=UTF-8`, compact or Jackson-pretty, `filter_path` applied
to successful answers only (errors are never filtered), `X-Opaque-Id` echoed on every answer.
Every `OpenSearchError` becomes OpenSearch's error envelope (render.error_envelope); any other
exception is a 500 `exception` envelope — a bug in tasksim never takes the cluster down. Handlers
live in `rest_*.py` modules that register themselves with `Router.add`.

Before any of that, every request passes the front door (`build_app`): the limits of
coordinator/limits.py and, when security is on, the basic auth of coordinator/security.py — in the
dispatch, for every path, so that endpoints other modules add are covered without asking.

Every answer is OpenSearch's. The app hands every HTTP request to the front door itself (Starlette's
router never sees one), with the path exactly as the server decoded it; and a few wrappers around
hypercorn (`serve_http` applies them) keep its own answers and habits out: a failing connection is
closed alone, a connection is closed on the client's FIN, `Upgrade: h2c`/`websocket` and an HTTP/2
prior-knowledge preface are served in HTTP/1.1, and what h11 cannot parse gets OpenSearch's JSON
400 instead of an empty 4xx.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from coordinator.history.client import recorded
from coordinator.limits import (
    ConcurrencyGate,
    Limits,
    TooLongHttpHeaderError,
    TooLongHttpLineError,
    body_timeout,
    check_request_head,
    content_too_large,
    header_size,
    initial_line_length,
    rejected_request,
)
from coordinator.params import Params, tokenize_comma
from coordinator.render import error_envelope, simple_error
from coordinator.security import CHALLENGE, BasicAuth, TlsFiles
from simnode import jsontext
from simnode.errors import (
    IllegalArgumentError,
    OpenSearchError,
    ParseError,
    StreamConstraintsError,
)
from simnode.history import Recorder
from simnode.offload import offload
from simnode.regex import simple_match
from simnode.registry import X_OPAQUE_ID

log = logging.getLogger("tasksim.http")

JSON_TYPE = "application/json; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=UTF-8"
# RestRequest.Method, in enum order (how the `allowed:` list is printed).
METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT")
# Media types `XContentType.fromMediaType` knows (the request body's Content-Type).
_BODY_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/smile",
    "application/yaml",
    "application/cbor",
)
_TCHAR = re.compile(r"[a-zA-Z0-9!#$%&'*+\-.^_`|~]+")


@dataclass
class RestRequest:
    method: str
    path: str
    uri: str  # the raw request URI, query string included
    params: Params  # query and path parameters, with consumed-parameter bookkeeping
    path_params: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    human: bool = False  # `?human`, read by the channel
    local_address: tuple[str, int] | None = None  # the HTTP address this request came in on
    # The body as parsed ahead of the handler (a large one, off the loop): a value or the error.
    parsed: Any = field(default=None, repr=False)

    @property
    def task_headers(self) -> tuple[tuple[str, str], ...]:
        """The thread-context headers a task may copy (X-Opaque-Id)."""
        value = self.headers.get(X_OPAQUE_ID.lower())
        return ((X_OPAQUE_ID, value),) if value is not None else ()

    def finish(
        self, *, body_allowed: bool = False, response_params: frozenset[str] = frozenset()
    ) -> None:
        """`BaseRestHandler.handleRequest` after `prepareRequest`: unrecognized parameters (those
        that are neither consumed nor in the handler's `responseParams()`), then the body check."""
        self.params.check_unrecognized(response_params)
        if self.body and not body_allowed:
            raise IllegalArgumentError(
                f"request [{self.method} {self.path}] does not support having a body"
            )

    def json_body(self) -> Any:
        if not self.body:
            return None
        if self.parsed is not None:
            if isinstance(self.parsed, OpenSearchError):
                raise self.parsed
            return self.parsed[0]
        return parse_content_to_map(self.body)

    async def parse_ahead(self) -> None:
        """Parse a large JSON body in a worker thread before the handler asks for it: the depth
        walk is Python code the loop can interleave with; only the C parser's own pass (about
        25 ms per MB on a loaded 2-core box) still holds the loop. A small body is parsed when
        the handler asks, on the loop."""
        media = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if len(self.body) < PARSE_AHEAD_BYTES or media != "application/json":
            return

        def parse() -> Any:
            try:
                return (parse_content_to_map(self.body),)
            except OpenSearchError as e:
                return e

        self.parsed = await offload(parse)


PARSE_AHEAD_BYTES = 256 * 1024
HEAVY_ANSWER = 50_000  # values in an answer written off the loop (about 1 MB of JSON)


def parse_content_to_map(content: str | bytes) -> Any:
    """`XContentHelper.convertToMap`: a body (or a `source` parameter) as JSON, at most Jackson's
    1000 levels deep; anything else is OpenSearch's 400 `parse_exception`."""
    try:
        return jsontext.loads(content)
    except jsontext.NestingTooDeep as e:
        # convertToMap's OpenSearchParseException around Jackson's StreamConstraintsException
        raise ParseError(
            "Failed to parse content to map", cause=StreamConstraintsError(str(e))
        ) from e
    except ValueError as e:
        raise ParseError(f"Failed to parse content to map: {e}") from e


@dataclass
class RestResponse:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    raw: bool = False  # body is already text (e.g. _cat tables)
    error: bool = False  # an error answer: never filtered by filter_path


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


def _error(err: OpenSearchError, *, error_trace: bool = False) -> RestResponse:
    return RestResponse(error_envelope(err, error_trace=error_trace), status=err.status, error=True)


def _simple(message: str, status: int, headers: dict[str, str] | None = None) -> RestResponse:
    """`BytesRestResponse.createSimpleErrorResponse`: `{"error": "<text>", "status": N}`."""
    return RestResponse(
        simple_error(message, status), status=status, headers=headers or {}, error=True
    )


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

    def resolve(
        self, method: str, path: str, uri: str
    ) -> tuple[Handler, dict[str, str]] | RestResponse:
        """`RestController.tryAllHandlers`: a handler and its path parameters, or the answer."""
        segments = tuple(s for s in path.split("/") if s)
        matches = [
            (route, found)
            for route in sorted(self._routes.values(), key=_Route.rank)
            if (found := route.match(segments)) is not None
        ]
        allowed = {m for route, _ in matches for m in route.handlers}
        listed = [m for m in METHODS if m in allowed]
        if method not in METHODS:
            # `request.method()` fails: `handleUnsupportedHttpMethod` with the exception (no
            # method, no uri in the message), e.g. `PRI` of an HTTP/2 prior-knowledge preface.
            message = "Unexpected HTTP method" + (
                f", allowed: [{', '.join(listed)}]" if listed else ""
            )
            return _simple(message, 405, {"Allow": ",".join(listed)} if listed else None)
        for route, found in matches:
            handler = route.handlers.get(method)
            if handler is not None:
                return handler, found
            if method not in allowed:
                break
        if method == "OPTIONS":
            headers = {"Allow": ",".join(listed)} if listed else {}
            return RestResponse("", headers=headers, content_type=TEXT_TYPE, raw=True)
        if matches and method not in allowed:
            return _simple(
                f"Incorrect HTTP method for uri [{uri}] and method [{method}], "
                f"allowed: [{', '.join(listed)}]",
                405,
                {"Allow": ",".join(listed)},
            )
        return RestResponse(
            {"error": f"no handler found for uri [{path}] and method [{method}]"},
            status=400,
            error=True,
        )


# -- JSON output ------------------------------------------------------------------------------------


def dump_json(value: Any, *, pretty: bool) -> str:
    """Compact JSON, or Jackson's pretty printer with a line feed at the end (`lfAtEnd`); any
    depth (simnode/jsontext.py)."""
    if pretty:
        return jsontext.dumps(value, pretty=True) + "\n"
    return jsontext.dumps(value)


def _split_filter(expression: str) -> list[str]:
    """`FilterPath.parse`: split at dots, `\\.` is a literal dot."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(expression):
        c = expression[i]
        if c == "\\" and i + 1 < len(expression) and expression[i + 1] == ".":
            current.append(".")
            i += 2
            continue
        if c == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _segment_matches(segment: str, key: str) -> bool:
    if segment in ("*", "**"):
        return True
    return simple_match(segment, key)


def filter_path(value: Any, expressions: str | None) -> Any:
    """`filter_path` as OpenSearch's `FilterPathBasedFilter` applies it to a successful answer.

    Expressions are comma-separated, trimmed, dotted paths; `*` matches within a name, `**` matches
    one or more levels; a leading `-` excludes. Objects and arrays left empty by an include filter
    are dropped; the root object is always written (`{}` when nothing matched)."""
    tokens = tokenize_comma(expressions)
    includes = [tuple(_split_filter(e)) for e in tokens if not e.startswith("-")]
    excludes = [tuple(_split_filter(e[1:])) for e in tokens if e.startswith("-")]

    def step(paths: tuple[_Path, ...], key: str) -> tuple[bool, tuple[_Path, ...]]:
        """`FilterPathBasedFilter.evaluate`: (whole subtree matched, filters for the children).
        The children's filters are deduplicated: `**.**.**.x` keeps as many filters as it has
        segments, never one per way of spreading the `**`s over the levels (exponential)."""
        rest: dict[_Path, None] = {}
        for path in paths:
            if not _segment_matches(path[0], key):
                continue
            if len(path) == 1:
                return True, ()
            if path[0] == "**":
                rest[path] = None
            rest[path[1:]] = None
        return False, tuple(rest)

    result = value
    if includes:
        result = _walk(result, tuple(dict.fromkeys(includes)), step, include=True)
        if result is _MISSING:
            result = [] if isinstance(value, list) else {}
    if excludes:
        result = _walk(result, tuple(dict.fromkeys(excludes)), step, include=False)
    return result


_Path = tuple[str, ...]
_Step = Callable[[tuple[_Path, ...], str], tuple[bool, tuple[_Path, ...]]]


def _walk(root: Any, paths: tuple[_Path, ...], step: _Step, *, include: bool) -> Any:
    """Apply include or exclude filters to `root` with an explicit stack (any depth).

    Include: a key whose path matched whole is kept with its subtree, a key on the way to a match
    is filtered further, objects and arrays left empty are dropped, and so are scalars whose own
    path did not match. Exclude: a key whose path matched whole is dropped; everything else kept."""
    if not isinstance(root, dict | list):
        return _MISSING if include else root
    # a frame: [items iterator, filters, output container, key in the parent (None in an array)]
    stack: list[list[Any]] = [[_items(root), paths, {} if isinstance(root, dict) else [], None]]
    end: Any = object()
    while stack:
        frame = stack[-1]
        item: Any = next(frame[0], end)
        if item is end:
            stack.pop()
            done = frame[2] if (frame[2] or not include) else _MISSING
            if not stack:
                return done
            if done is not _MISSING:
                _put(stack[-1][2], frame[3], done)
            continue
        key, child = item
        filters = frame[1]
        if key is not None:
            whole, filters = step(frame[1], key)
            if whole:
                if include:
                    frame[2][key] = child
                continue
            if not filters:
                if not include:
                    frame[2][key] = child
                continue
        if isinstance(child, dict | list):
            stack.append([_items(child), filters, {} if isinstance(child, dict) else [], key])
        elif not include:
            _put(frame[2], key, child)
    return _MISSING  # not reached: the root frame returns


def _items(node: dict[str, Any] | list[Any]) -> Any:
    """(key, child) pairs of an object, (None, child) of an array."""
    if isinstance(node, dict):
        return iter(node.items())
    return ((None, child) for child in node)


def _put(container: dict[str, Any] | list[Any], key: str | None, value: Any) -> None:
    if isinstance(container, dict):
        assert key is not None
        container[key] = value
    else:
        container.append(value)


_MISSING: Any = object()


# -- the ASGI app -----------------------------------------------------------------------------------


def _content_type_problem(content_type: str | None) -> RestResponse | None:
    """`RestController.dispatchRequest` for a request with a body: a 406 unless the body is JSON
    (or another XContent type)."""
    if content_type is None:
        return _simple("Content-Type header is missing", 406)
    media = content_type.split(";")[0].strip().lower()
    if media in _BODY_MEDIA_TYPES or media.startswith("application/*"):
        return None
    return _simple(f"Content-Type header [{content_type}] is not supported", 406)


def _invalid_content_type(content_type: str | None) -> OpenSearchError | None:
    """`RestRequest.parseContentType`: a header that is not `type/subtype` is a bad request."""
    if content_type is None:
        return None
    main = re.split(r"[ \t]*;", content_type)[0]
    parts = main.split("/")
    if len(parts) == 2 and _TCHAR.fullmatch(parts[0]) and _TCHAR.fullmatch(parts[1].strip()):
        return None
    return IllegalArgumentError(f"invalid Content-Type header [{content_type}]")


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


class Answer(Response):
    """An answer with the document it renders (`document`, None for text), so that the history
    reads it without parsing the bytes again."""

    document: Any = None


def build_app(
    router: Router,
    *,
    auth: BasicAuth | None = None,
    limits: Limits | None = None,
    gate: ConcurrencyGate | None = None,
    recorder: Recorder | None = None,
) -> Starlette:
    """The ASGI app. Every request passes the front door first, in the order OpenSearch's HTTP
    pipeline has it: the request line and header limits (Netty's decoder), authentication (the
    security plugin's header verifier), the body limit and its read timeout (the aggregator: a
    request is dispatched only once its body is complete, so a slow sender holds no slot), the
    concurrency limit; then routing. That is why a new endpoint is covered by all of them
    without doing anything. With a `recorder`, every client operation goes into the run's
    history (coordinator/history/client.py)."""
    limits = limits or Limits()
    gate = gate or ConcurrencyGate(limits.max_concurrent_requests)

    async def dispatch(request: Request) -> Response:
        if recorder is not None:
            return await recorded(recorder, request, lambda: _answer(request))
        return await _answer(request)

    async def _answer(request: Request) -> Response:
        response = await _front_door(request)
        if request.method.upper() == "HEAD" and response.body:
            # A HEAD answer has the headers of the GET answer and no body.
            response = Response(b"", status_code=response.status_code, headers=response.headers)
        return response

    async def _front_door(request: Request) -> Response:
        scope = request.scope
        method = request.method.upper()
        # The path as the server decoded it. Not `request.url.path`: that goes through urllib's
        # `urlsplit`, which drops tabs, CRs and LFs (`/_tasks%0A` was served as `/_tasks`).
        path: str = scope["path"]
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
        raw_path = request.scope.get("raw_path") or path.encode()
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        uri = raw_path.decode("latin-1") + (f"?{raw_query}" if raw_query else "")
        opaque_values = request.headers.getlist(X_OPAQUE_ID.lower())
        opaque = opaque_values[0] if opaque_values else None
        content_type = request.headers.get("content-type")
        params = Params(list(request.query_params.multi_items()), path)
        pretty = human = False
        filters: str | None = None
        response: RestResponse | None = None
        # 1. the channel: format, filter_path, pretty, human (a bad value: a plain bad request)
        try:
            if (bad := _invalid_content_type(content_type)) is not None:
                raise bad
            params.param("format")
            filters = params.param("filter_path")
            pretty = params.param_bool("pretty", False)
            human = params.param_bool("human", False)
        except OpenSearchError as e:
            pretty, filters = False, None
            response = _error(e)
        error_trace = False
        if response is None and len(dict.fromkeys(opaque_values)) > 1:
            response = _simple(f"multiple values for single-valued header [{X_OPAQUE_ID}].", 400)
        if response is None:
            try:
                error_trace = params.param_bool("error_trace", False)
            except OpenSearchError as e:
                response = _error(e)
        if response is None:
            resolved = router.resolve(method, path, uri)
            if isinstance(resolved, RestResponse):
                response = resolved
            else:
                if body and (problem := _content_type_problem(content_type)) is not None:
                    response = problem
                else:
                    handler, path_params = resolved
                    params.add_path_params(path_params)
                    server = request.scope.get("server")
                    rest = RestRequest(
                        method=method,
                        path=path,
                        uri=uri,
                        params=params,
                        path_params=path_params,
                        headers={k.lower(): v for k, v in request.headers.items()},
                        body=body,
                        human=human,
                        local_address=(server[0], server[1]) if server else None,
                    )
                    await rest.parse_ahead()
                    response = await _run(handler, rest, error_trace, uri)
        headers = dict(response.headers)
        if opaque is not None:
            headers[X_OPAQUE_ID] = opaque
        heavy = bool(pretty or filters) or (
            not response.raw and jsontext.weight(response.body, HEAVY_ANSWER) > HEAVY_ANSWER
        )

        def render() -> tuple[bytes, Any]:
            """The answer's bytes, and the document they render (None for text)."""
            if response.raw:
                # a lone surrogate (from a JSON body) in a table: escaped, never a failure
                return str(response.body).encode("utf-8", "backslashreplace"), None
            out = response.body
            if not response.error:
                out = filter_path(out, filters)
            if heavy and not pretty:
                return jsontext.dumps_in_pieces(out).encode("utf-8"), out
            return dump_json(out, pretty=pretty).encode("utf-8"), out

        if heavy:
            # Python over the whole answer (pretty text grows with the square of its depth), or a
            # large answer written in short pieces: off the loop, so that it keeps serving every
            # other request meanwhile (a worker thread; inline on the sim engine, see offload).
            data, out = await offload(render)
        else:
            data, out = render()
        answer = Answer(
            data if method != "HEAD" else b"",
            status_code=response.status,
            headers=headers,
            media_type=response.content_type,
        )
        answer.document = out
        return answer

    async def front_door(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            response = await dispatch(request)
        except Exception as e:  # a tasksim bug in the front door itself: a 500, keep serving
            log.exception(
                "unhandled error at the front door: %s %r", scope["method"], scope["path"]
            )
            body = dump_json(
                error_envelope(OpenSearchError(f"{type(e).__name__}: {e}")), pretty=False
            )
            response = _plain(500, body, content_type=JSON_TYPE, headers=CLOSE)
        await response(scope, receive, send)

    app = Starlette(middleware=[Middleware(_EveryRequest, handle=front_door)])
    app.state.gate = gate
    return app


class _EveryRequest:
    """ASGI middleware that hands every HTTP request to the front door, whatever its method or path.

    Starlette's router never sees a request: its `{path:path}` pattern does not match a path with
    a line feed in it (`/_ta%0Asks` got Starlette's `404 Not Found` in text/plain, before
    authentication), and a method outside its list got its `405` in text/plain. Only the
    lifespan messages pass through to Starlette."""

    def __init__(self, app: Any, handle: Callable[[Any, Any, Any], Awaitable[None]]) -> None:
        self.app = app
        self.handle = handle

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _run(handler: Handler, rest: RestRequest, error_trace: bool, uri: str) -> RestResponse:
    try:
        return await handler(rest)
    except OpenSearchError as e:
        return _error(e, error_trace=error_trace)
    except trio.Cancelled:
        raise
    except UnicodeEncodeError as e:
        # A lone surrogate (`"\ud800"` is valid JSON, not UTF-8 text) met the wire: protobuf
        # refuses it when the message is built, before anything is sent or stored.
        return _error(lone_surrogate(e), error_trace=error_trace)
    except Exception as e:  # a tasksim bug: answer 500, keep serving
        log.exception("unhandled error serving %s %s", rest.method, uri)
        return _error(OpenSearchError(f"{type(e).__name__}: {e}"), error_trace=error_trace)


def lone_surrogate(e: UnicodeEncodeError) -> IllegalArgumentError:
    text = e.object[e.start : e.end]
    shown = "".join(f"\\u{ord(c):04X}" for c in text) if isinstance(text, str) else repr(text)
    return IllegalArgumentError(
        f"the request holds a string that is not valid Unicode text (a lone surrogate [{shown}]); "
        "it cannot be carried to a node"
    )


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


def close_on_peer_fin() -> None:
    """Close a connection as soon as the client closes its side (its FIN), as Netty does.

    hypercorn's trio worker reads EOF, but the connection's task group still holds the keep-alive
    idle timer started when the last response was sent, and the socket is closed only when the
    task group ends: a client that hangs up without `Connection: close` (plain `curl`) left the
    server socket in CLOSE_WAIT for `tasksim.http.idle_timeout` (30 s), and ~1 000 such clients
    exhausted a 1024-descriptor limit. This wraps `TCPServer._read_data`: once the peer's EOF is
    read, the idle timer is stopped, so the task group ends and the socket is closed at once.
    (A request still being served when the FIN arrives is answered first: hypercorn reads the
    next bytes only after the response.) Idempotent."""
    from hypercorn.trio import tcp_server

    server_cls: Any = tcp_server.TCPServer
    if getattr(server_cls._read_data, "_tasksim_fin", False):
        return
    original = server_cls._read_data

    async def read_data(self: Any) -> None:
        try:
            await original(self)
        finally:
            with trio.CancelScope(shield=True):
                await self.idle_task.stop()

    read_data._tasksim_fin = True  # type: ignore[attr-defined]
    server_cls._read_data = read_data


def ignore_h2c_upgrade() -> None:
    """Answer `Upgrade: h2c` requests in HTTP/1.1, as OpenSearch's HTTP/1.1 transport does.

    hypercorn switches such a request to HTTP/2 (101) and then waits for the client's HTTP/2
    preface; a client that sent an ordinary request with that header (found by
    tests/properties/test_fuzz_http.py) never gets an answer. hypercorn has no setting for it, so
    this wraps `H11Protocol._check_protocol` to drop the h2c upgrade header before it looks.
    Idempotent."""
    from hypercorn.protocol import h11 as h11_protocol

    cls: Any = h11_protocol.H11Protocol
    if getattr(cls._check_protocol, "_tasksim_h11_only", False):
        return
    original = cls._check_protocol

    async def check_protocol(self: Any, event: Any) -> None:
        headers = [
            (name, value)
            for name, value in event.headers
            if not (
                name.decode("latin1").strip().lower() == "upgrade"
                and value.decode("latin1").strip().lower() == "h2c"
            )
        ]
        if len(headers) != len(event.headers):
            event = type(event)(
                method=event.method,
                target=event.target,
                headers=headers,
                http_version=event.http_version,
            )
        await original(self, event)

    check_protocol._tasksim_h11_only = True  # type: ignore[attr-defined]
    cls._check_protocol = check_protocol


def refuse_h2_prior_knowledge() -> None:
    """Serve `PRI * HTTP/2.0` (an HTTP/2 prior-knowledge preface) as the HTTP/1.1 request it
    parses as, the way OpenSearch's HTTP/1.1 decoder does: method `PRI` is no REST method, so
    the answer is OpenSearch's 405 `Unexpected HTTP method`, and the preface's `SM` line that
    follows is a bad request (400). hypercorn would switch the connection to HTTP/2 instead.
    Idempotent; apply after `ignore_h2c_upgrade`."""
    from hypercorn.protocol import h11 as h11_protocol

    cls: Any = h11_protocol.H11Protocol
    if getattr(cls._check_protocol, "_tasksim_no_h2", False):
        return
    original = cls._check_protocol

    async def check_protocol(self: Any, event: Any) -> None:
        if event.method == b"PRI" and event.target == b"*" and event.http_version == b"2.0":
            return  # an ordinary HTTP/1.1 request: `_create_stream` serves it
        await original(self, event)

    check_protocol._tasksim_no_h2 = True  # type: ignore[attr-defined]
    cls._check_protocol = check_protocol


def ignore_websocket_upgrade() -> None:
    """Serve a `GET` with `Upgrade: websocket` as the plain GET it is, as OpenSearch does.

    hypercorn hands such a request to the app as a websocket, which Starlette refuses with an
    empty 403. This wraps `H11Protocol._create_stream` to drop the `Upgrade` header of a websocket
    upgrade first. Idempotent."""
    from hypercorn.protocol import h11 as h11_protocol

    cls: Any = h11_protocol.H11Protocol
    if getattr(cls._create_stream, "_tasksim_no_ws", False):
        return
    original = cls._create_stream

    async def create_stream(self: Any, request: Any) -> None:
        headers = [
            (name, value)
            for name, value in request.headers
            if not (
                name.decode("latin1").strip().lower() == "upgrade"
                and value.decode("latin1").strip().lower() == "websocket"
            )
        ]
        if len(headers) != len(request.headers):
            request = type(request)(
                method=request.method,
                target=request.target,
                headers=headers,
                http_version=request.http_version,
            )
        await original(self, request)

    create_stream._tasksim_no_ws = True  # type: ignore[attr-defined]
    cls._create_stream = create_stream


def protocol_error(
    status_hint: int, error: BaseException | None, buffered: bytes, limits: Limits
) -> OpenSearchError:
    """What OpenSearch answers when its HTTP decoder fails (`dispatchBadRequest`: always 400,
    the decoder's exception in the envelope). h11 says 431 when the request head outgrew its
    buffer: the request line when it is not complete yet or too long itself (Netty reads the line
    first), else the headers (Netty's
    `TooLongHttpLineException` / `TooLongHttpHeaderException`, with the configured limits)."""
    if status_hint == 431:
        line, newline, _ = buffered.partition(b"\n")
        if not newline or len(line) >= limits.max_initial_line_length:
            return TooLongHttpLineError(
                f"An HTTP line is larger than {limits.max_initial_line_length} bytes."
            )
        return TooLongHttpHeaderError(f"HTTP header is larger than {limits.max_header_size} bytes.")
    detail = str(error) if error is not None and str(error) else f"status {status_hint}"
    # h11 prints the offending bytes as `bytearray(b'...')`: show them as text.
    detail = re.sub(r"bytearray\(b'(.*)'\)", r"[\1]", detail)
    return IllegalArgumentError(f"invalid HTTP request: {detail}")


def answer_protocol_errors_in_json() -> None:
    """hypercorn answers a request h11 cannot parse (a request line past its 64 kB buffer, a bad
    request line, a bad header) with an empty 4xx; OpenSearch answers with its error envelope.
    This replaces `H11Protocol._send_error_response` with one that sends `protocol_error`'s
    envelope (the limits come from the hypercorn config, `tasksim_limits`). Idempotent."""
    import sys

    import h11
    from hypercorn.protocol import h11 as h11_protocol

    cls: Any = h11_protocol.H11Protocol
    if getattr(cls._send_error_response, "_tasksim_json", False):
        return

    async def send_error_response(self: Any, status_code: int) -> None:
        limits = getattr(self.config, "tasksim_limits", None) or Limits()
        # Called from hypercorn's `except h11.RemoteProtocolError` block: that is the error.
        err = protocol_error(status_code, sys.exception(), self.connection.trailing_data[0], limits)
        body = dump_json(error_envelope(err), pretty=False).encode("utf-8")
        headers = [
            (b"content-type", JSON_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send_h11_event(h11.Response(status_code=err.status, headers=headers))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    send_error_response._tasksim_json = True  # type: ignore[attr-defined]
    cls._send_error_response = send_error_response


TLS_HANDSHAKE: Final = 0x16  # a TLS record's first byte: content type `handshake` (ClientHello)


def close_tls_on_plain_port() -> None:
    """A TLS client (`curl https://...`) that reaches the plain-HTTP port sends a ClientHello,
    whose first byte is 0x16 — never the first byte of an HTTP request. OpenSearch answers it with
    nothing useful (the client reports "wrong version number"); so does tasksim, but it tells the
    server's owner: the connection is closed at once and the server's `tasksim_on_tls_client`
    hook (a hypercorn config attribute, `serve_http`'s `on_tls_client`) is called with the port.
    This wraps `H11Protocol.handle`: one attribute test per read of a plain connection, the first
    byte looked at once per connection. Idempotent."""
    from hypercorn.events import Closed, RawData
    from hypercorn.protocol import h11 as h11_protocol

    cls: Any = h11_protocol.H11Protocol
    if getattr(cls.handle, "_tasksim_tls_probe", False):
        return
    original = cls.handle

    async def handle(self: Any, event: Any) -> None:
        if (
            not self.ssl
            and isinstance(event, RawData)
            and event.data
            and not getattr(self, "_tasksim_first_byte_seen", False)
        ):
            self._tasksim_first_byte_seen = True
            if event.data[0] == TLS_HANDSHAKE:
                hook = getattr(self.config, "tasksim_on_tls_client", None)
                if hook is not None:
                    hook(self.server[1] if self.server else 0)
                await self.send(Closed())
                return
        await original(self, event)

    handle._tasksim_tls_probe = True  # type: ignore[attr-defined]
    cls.handle = handle


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    *,
    shutdown: trio.Event,
    limits: Limits | None = None,
    tls: TlsFiles | None = None,
    on_tls_client: Callable[[int], None] | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with hypercorn inside the caller's nursery; `started()` reports the bound port.

    With `tls`, HTTPS only (HTTP/1.1 over TLS, as OpenSearch serves it; a plain-HTTP client gets
    its connection closed); without it, a TLS client's connection is closed at once and
    `on_tls_client(port)` is called. Idle connections — and a client that stalls before its headers are
    complete — are closed after `tasksim.http.idle_timeout`; each connection is its own trio
    task, so a slow client never holds up the others."""
    contain_connection_failures()
    close_on_peer_fin()
    ignore_h2c_upgrade()
    refuse_h2_prior_knowledge()
    ignore_websocket_upgrade()
    answer_protocol_errors_in_json()
    close_tls_on_plain_port()
    limits = limits or Limits()
    config = Config()
    config.tasksim_limits = limits  # type: ignore[attr-defined]  # read by the JSON error answers
    config.tasksim_on_tls_client = on_tls_client  # type: ignore[attr-defined]
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
