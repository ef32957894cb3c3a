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
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from coordinator.params import Params
from coordinator.render import error_envelope, simple_error
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


def build_app(router: Router) -> Starlette:
    async def dispatch(request: Request) -> Response:
        method = request.method.upper()
        path = request.url.path
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
                body=await request.body(),
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
            body = filter_path(response.body, params.response_value("filter_path"))
            text = dump_json(body, pretty=params.response_flag("pretty"))
        return Response(
            text.encode("utf-8") if method != "HEAD" else b"",
            status_code=response.status,
            headers=headers,
            media_type=response.content_type,
        )

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=list(METHODS))])


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    *,
    shutdown: trio.Event,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with hypercorn inside the caller's nursery; `started()` reports the bound port."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tasksim.hypercorn")
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = 1.0

    async def started(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started)
        bound = binds[0] if binds else f"http://{host}:{port}"
        task_status.started(int(bound.rsplit(":", 1)[1]))
