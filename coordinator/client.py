"""The cluster's fault and process client: `SimClient` (synchronous) and `AsyncSimClient` (trio), over
the REST API of a tasksim cluster on either engine.

    sim = SimClient("http://127.0.0.1:9200")
    with sim.partition(["node-3"]):            # node-3 against everyone else, black-holed
        ...                                    # the partition heals when the block ends
    sim.kill("node-2"); sim.restart("node-2")
    with sim.link("coordinator", "node-2", "drop_response", methods=["CancelTasks"]):
        ...
    sim.heal()                                 # every rule gone, paused resumed, dead restarted
    sim.start_task({"node": "node-1", "action": "indices:data/write/reindex"})   # /_sim/tasks

    client = AsyncSimClient(asgi.request)      # the sim engine: the ASGI app, in-process
    client = AsyncSimClient.over_http(url)     # the real engine: urllib in a worker thread
    await client.heal(); nodes = await client.nodes(tasks=True)

`SimClient` also carries a `clock` (`now()`, `sleep()`): the machine's by default, the world's
virtual time on the sim engine, so that waits in tests poll on the cluster's own time.

Every call (`request`, `nodes`, `heal`, `kill`, ...) is written once, as a coroutine over one
`_exchange` (an HTTP request → `Response`), in `_Calls`. A *sender* carries the exchange: urllib
(`UrllibSend`, the default), `SimWorld.request`, or an async one (`AsgiClient.request`, urllib in a
worker thread). `SimClient` runs a call's coroutine to its end at once — its sender is synchronous,
so the coroutine never suspends — and `AsyncSimClient` awaits it; the `_Call` descriptor picks which
by the client's class, so each call has one body and is typed on both.

Every installer returns a `Fault` that is also a context manager removing that fault on exit
(tokio-rs/turmoil's guards). The client never decides anything: the coordinator's nemesis
(coordinator/nemesis.py) does.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

P = ParamSpec("P")
T = TypeVar("T")


class SimClientError(Exception):
    """The cluster answered a fault operation with an error (the OpenSearch error envelope)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        reason = body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            reason = f"{body['error'].get('type')}: {body['error'].get('reason')}"
        super().__init__(f"HTTP {status}: {reason}")


@dataclass
class Response:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON
    headers: dict[str, str]
    elapsed: float  # seconds


class Fault:
    """An installed fault; `with` removes it on exit (also when the block raises)."""

    def __init__(self, client: SimClient, fault_id: str, answer: dict[str, Any]) -> None:
        self.client = client
        self.id = fault_id
        self.answer = answer

    def remove(self) -> None:
        try:
            self.client.remove(self.id)
        except SimClientError as e:
            if e.status != 404:  # removed already (a heal, say)
                raise

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


def _names(value: str | Iterable[str] | None) -> str | list[str]:
    if value is None:
        return "*"
    if isinstance(value, str):
        return value
    return list(value)


# -- senders ----------------------------------------------------------------------------------------


def encode_body(body: Any) -> bytes | None:
    """What a sender puts on the wire: bytes as they are, anything else as JSON (None: no body)."""
    if body is None:
        return None
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def decode_answer(raw: bytes) -> Any:
    """An answer's body as a sender hands it back: parsed JSON, or the text when it is not JSON."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Send(Protocol):
    """A synchronous sender: one HTTP exchange. A client-side timeout raises `TimeoutError`."""

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response: ...


class AsyncSend(Protocol):
    """An async sender (trio): one HTTP exchange. A client-side timeout raises `TimeoutError`."""

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Awaitable[Response]: ...


class Clock(Protocol):
    """What waits are measured on: `now()` in seconds (any origin), `sleep(seconds)`."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The machine's clock: `time.monotonic` and `time.sleep` (the real engine's)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


WALL_CLOCK = WallClock()


class UrllibSend:
    """HTTP over a socket with plain `urllib` (no dependency); `elapsed` in wall seconds."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        data = encode_body(body)
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                status, raw, rh = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, raw, rh = e.code, e.read(), dict(e.headers)
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise TimeoutError(f"{method} {path}: no answer within the client timeout") from e
            raise
        return Response(status, decode_answer(raw), rh, time.monotonic() - started)


# -- one implementation of every call, run synchronously or awaited --------------------------------


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run a call whose sender is synchronous: its coroutine finishes without ever suspending."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SimClient call suspended: its sender must be synchronous")


class _Call(Generic[P, T]):
    """A client call: a coroutine method of `_Calls`. On a `SimClient` it is a plain function that
    returns the answer; on an `AsyncSimClient` a coroutine function."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> _Call[P, T]: ...

    @overload
    def __get__(self, obj: SimClient, owner: type[Any] | None = None) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, obj: AsyncSimClient, owner: type[Any] | None = None
    ) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        fn = self.fn
        if isinstance(obj, AsyncSimClient):

            def awaitable(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]:
                return fn(obj, *args, **kwargs)

            return functools.update_wrapper(awaitable, fn)

        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            return _run_to_end(fn(obj, *args, **kwargs))

        return functools.update_wrapper(run, fn)


def call(fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> _Call[P, T]:
    """Declare a client call (a coroutine method of `_Calls`)."""
    return _Call(fn)


class _Calls:
    """Every call of the client, once. A subclass says how an exchange is carried (`_exchange`)."""

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> Response:
        raise NotImplementedError

    async def _checked(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        resp = await self._exchange(method, path, body, headers, None)
        if resp.status >= 400:
            raise SimClientError(resp.status, resp.body)
        return resp.body

    # -- HTTP ---------------------------------------------------------------------------------

    @call
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Any REST call; errors are answers too. A client-side timeout raises `TimeoutError`."""
        return await self._exchange(method, path, body, headers, timeout)

    @call
    async def _ok(self, method: str, path: str, body: Any = None) -> Any:
        """A REST call that must succeed: its parsed body, else `SimClientError`."""
        return await self._checked(method, path, body)

    # -- faults -------------------------------------------------------------------------------

    @call
    async def faults(self) -> dict[str, Any]:
        return await self._checked("GET", "/_sim/faults")  # type: ignore[no-any-return]

    @call
    async def add_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /_sim/faults` with a body of `{kind: spec}`; the answer (`ids`, `version`)."""
        return await self._checked("POST", "/_sim/faults", body)  # type: ignore[no-any-return]

    @call
    async def remove(self, fault_id: str) -> dict[str, Any]:
        return await self._checked(  # type: ignore[no-any-return]
            "DELETE", "/_sim/faults/" + urllib.parse.quote(fault_id, safe="")
        )

    @call
    async def clear(self) -> dict[str, Any]:
        return await self._checked("DELETE", "/_sim/faults")  # type: ignore[no-any-return]

    @call
    async def heal(self) -> dict[str, Any]:
        """Every rule removed, every paused node resumed, every dead node restarted."""
        return await self._checked("POST", "/_sim/faults/_heal")  # type: ignore[no-any-return]

    # -- processes ----------------------------------------------------------------------------

    @call
    async def nodes(self, *, tasks: bool = False) -> dict[str, Any]:
        path = "/_sim/nodes" + ("?tasks=true" if tasks else "")
        return (await self._checked("GET", path))["nodes"]  # type: ignore[no-any-return]

    @call
    async def kill(self, name: str) -> dict[str, Any]:
        return await self._checked("POST", f"/_sim/nodes/{name}/kill")  # type: ignore[no-any-return]

    @call
    async def pause(self, name: str) -> dict[str, Any]:
        return await self._checked("POST", f"/_sim/nodes/{name}/pause")  # type: ignore[no-any-return]

    @call
    async def resume(self, name: str) -> dict[str, Any]:
        return await self._checked("POST", f"/_sim/nodes/{name}/resume")  # type: ignore[no-any-return]

    @call
    async def restart(self, name: str) -> dict[str, Any]:
        return await self._checked("POST", f"/_sim/nodes/{name}/restart")  # type: ignore[no-any-return]

    # -- work -----------------------------------------------------------------------------------

    @call
    async def start_task(self, body: dict[str, Any], *, opaque_id: str | None = None) -> list[str]:
        """`POST /_sim/tasks` (coordinator/simspec.py): start task trees; their root task ids."""
        headers = {"X-Opaque-Id": opaque_id} if opaque_id is not None else None
        answer = await self._checked("POST", "/_sim/tasks", body, headers)
        return list(answer.get("tasks") or [answer["task"]])


class SimClient(_Calls):
    """The synchronous client: urllib to `url` by default, or any synchronous `send`
    (`SimWorld.request` on the sim engine); `clock` is what waits are measured on (the machine's
    by default, the world's virtual time on the sim engine). A request without a `timeout` gets
    the client's."""

    def __init__(
        self,
        url: str = "",
        *,
        timeout: float = 60.0,
        send: Send | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.send: Send = send if send is not None else UrllibSend(self.url, timeout=timeout)
        self.clock: Clock = clock if clock is not None else WALL_CLOCK

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> Response:
        return self.send(method, path, body, headers=headers, timeout=timeout or self.timeout)

    # -- fault guards -------------------------------------------------------------------------

    def install(self, kind: str, spec: dict[str, Any]) -> Fault:
        answer = self.add_faults({kind: spec})
        return Fault(self, answer["ids"][0], answer)

    def link(
        self,
        src: str | Iterable[str] | None,
        dst: str | Iterable[str] | None,
        action: str,
        *,
        methods: Sequence[str] = (),
        p: float | None = None,
        latency: str | None = None,
        jitter: str | None = None,
        both_ways: bool = False,
        id: str | None = None,
        level: str | None = None,
    ) -> Fault:
        """Calls from `src` to `dst` (`None` = any): disconnect, blackhole, drop_request,
        drop_response, delay (with latency/jitter) or loss (with p); `level="net"` cuts packets
        (nodes in network namespaces)."""
        spec: dict[str, Any] = {"action": action, "from": _names(src), "to": _names(dst)}
        for key, value in (
            ("methods", list(methods) or None),
            ("p", p),
            ("latency", latency),
            ("jitter", jitter),
            ("id", id),
            ("level", level),
        ):
            if value is not None:
                spec[key] = value
        if both_ways:
            spec["both_ways"] = True
        return self.install("link", spec)

    def partition(
        self,
        *groups: str | Iterable[str],
        direction: str = "both",
        mode: str = "blackhole",
        methods: Sequence[str] = (),
        id: str | None = None,
        level: str | None = None,
    ) -> Fault:
        """Groups of node names; the nodes not listed form one more group."""
        spec: dict[str, Any] = {
            "groups": [[g] if isinstance(g, str) else list(g) for g in groups],
            "direction": direction,
            "mode": mode,
        }
        if methods:
            spec["methods"] = list(methods)
        if id is not None:
            spec["id"] = id
        if level is not None:
            spec["level"] = level
        return self.install("partition", spec)

    def slow(
        self,
        node: str | Iterable[str],
        latency: str,
        *,
        jitter: str | None = None,
        methods: Sequence[str] = (),
        id: str | None = None,
    ) -> Fault:
        spec: dict[str, Any] = {"node": _names(node), "latency": latency}
        if jitter is not None:
            spec["jitter"] = jitter
        if methods:
            spec["methods"] = list(methods)
        if id is not None:
            spec["id"] = id
        return self.install("slow", spec)


class AsyncSimClient(_Calls):
    """The trio client of the scenario runner: the same calls, awaited, over an async sender (a
    request without a `timeout` gets the client's, in the sender's time: virtual on sim)."""

    def __init__(self, send: AsyncSend, *, url: str = "", timeout: float = 60.0) -> None:
        self.send = send
        self.url = url
        self.timeout = timeout

    @classmethod
    def over_http(cls, url: str, *, timeout: float = 60.0) -> AsyncSimClient:
        """The real engine: urllib in a worker thread, so a hung call never blocks the trio loop
        and a cancellation (Ctrl-C, a scenario's timeout) abandons it."""
        import trio

        sync = UrllibSend(url, timeout=timeout)

        async def send(
            method: str,
            path: str,
            body: Any = None,
            *,
            headers: dict[str, str] | None = None,
            timeout: float | None = None,
        ) -> Response:
            return await trio.to_thread.run_sync(
                lambda: sync(method, path, body, headers=headers, timeout=timeout),
                abandon_on_cancel=True,
            )

        return cls(send, url=sync.url, timeout=timeout)

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> Response:
        return await self.send(method, path, body, headers=headers, timeout=timeout or self.timeout)
