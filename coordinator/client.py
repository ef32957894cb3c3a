"""`SimClient`: fault injection from Python, over the REST API of a running tasksim cluster.

    sim = SimClient("http://127.0.0.1:9200")
    with sim.partition(["node-3"]):            # node-3 against everyone else, black-holed
        ...                                    # the partition heals when the block ends
    sim.kill("node-2"); sim.restart("node-2")
    with sim.link("coordinator", "node-2", "drop_response", methods=["CancelTasks"]):
        ...
    sim.heal()                                 # every rule gone, paused resumed, dead restarted
    sim.start_task({"node": "node-1", "action": "indices:data/write/reindex"})   # /_sim/tasks

Every installer returns a `Fault` that is also a context manager removing that fault on exit
(tokio-rs/turmoil's guards). Synchronous, so tests and the scenario runner (from a worker thread)
use it alike. It never decides anything: the coordinator's nemesis (coordinator/nemesis.py) does.

Two things are pluggable, so that the same client drives either engine: `send`, which carries one
request (default: plain `urllib` to `url`; the sim engine: `SimWorld.request`, into the ASGI app
in-process), and `clock`, on which waits and elapsed times are measured (default: the machine's
monotonic clock and `time.sleep`; the sim engine: the world's virtual time).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol


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


class Send(Protocol):
    """Carries one request and returns its answer; a client-side timeout raises `TimeoutError`."""

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response: ...


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


class SimClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        send: Send | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.send: Send = send if send is not None else self.send_http
        self.clock: Clock = clock if clock is not None else WALL_CLOCK

    # -- HTTP ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Any REST call; errors are answers too. A client-side timeout raises `TimeoutError`."""
        return self.send(method, path, body, headers=headers, timeout=timeout or self.timeout)

    def send_http(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """The default `send`: one HTTP request to `url` with `urllib`, timed on the wall clock."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
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
        elapsed = time.monotonic() - started
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Response(status, parsed, rh, elapsed)

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.request(method, path, body)
        if resp.status >= 400:
            raise SimClientError(resp.status, resp.body)
        return resp.body

    # -- faults -------------------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        return self._ok("GET", "/_sim/faults")  # type: ignore[no-any-return]

    def install(self, kind: str, spec: dict[str, Any]) -> Fault:
        answer = self._ok("POST", "/_sim/faults", {kind: spec})
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
    ) -> Fault:
        """Calls from `src` to `dst` (`None` = any): disconnect, blackhole, drop_request,
        drop_response, delay (with latency/jitter) or loss (with p)."""
        spec: dict[str, Any] = {"action": action, "from": _names(src), "to": _names(dst)}
        for key, value in (
            ("methods", list(methods) or None),
            ("p", p),
            ("latency", latency),
            ("jitter", jitter),
            ("id", id),
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

    def remove(self, fault_id: str) -> dict[str, Any]:
        return self._ok(  # type: ignore[no-any-return]
            "DELETE", "/_sim/faults/" + urllib.parse.quote(fault_id, safe="")
        )

    def clear(self) -> dict[str, Any]:
        return self._ok("DELETE", "/_sim/faults")  # type: ignore[no-any-return]

    def heal(self) -> dict[str, Any]:
        """Every rule removed, every paused node resumed, every dead node restarted."""
        return self._ok("POST", "/_sim/faults/_heal")  # type: ignore[no-any-return]

    # -- processes ----------------------------------------------------------------------------

    def nodes(self, *, tasks: bool = False) -> dict[str, Any]:
        path = "/_sim/nodes" + ("?tasks=true" if tasks else "")
        return self._ok("GET", path)["nodes"]  # type: ignore[no-any-return]

    def kill(self, name: str) -> dict[str, Any]:
        return self._ok("POST", f"/_sim/nodes/{name}/kill")  # type: ignore[no-any-return]

    def pause(self, name: str) -> dict[str, Any]:
        return self._ok("POST", f"/_sim/nodes/{name}/pause")  # type: ignore[no-any-return]

    def resume(self, name: str) -> dict[str, Any]:
        return self._ok("POST", f"/_sim/nodes/{name}/resume")  # type: ignore[no-any-return]

    def restart(self, name: str) -> dict[str, Any]:
        return self._ok("POST", f"/_sim/nodes/{name}/restart")  # type: ignore[no-any-return]

    # -- work -----------------------------------------------------------------------------------

    def start_task(self, body: dict[str, Any], *, opaque_id: str | None = None) -> list[str]:
        """`POST /_sim/tasks` (coordinator/simspec.py): start task trees; their root task ids."""
        headers = {"X-Opaque-Id": opaque_id} if opaque_id is not None else None
        resp = self.request("POST", "/_sim/tasks", body, headers=headers)
        if resp.status >= 400:
            raise SimClientError(resp.status, resp.body)
        return list(resp.body.get("tasks") or [resp.body["task"]])
