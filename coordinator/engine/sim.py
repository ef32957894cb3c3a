"""The `sim` engine: a whole cluster — nodes, coordinator, REST front — in one trio run on virtual
time, reproducible by seed (FoundationDB's simulator, turmoil, OpenSearch's DeterministicTaskQueue).

It runs the same code as the `real` engine: the `simnode` node runtime and registry, the call
driver and the fault decision, the coordinator's cluster service, fan-out, nemesis and REST
handlers. Only the edges differ: node hosts are in-process (`SimHosts` over simnode/sim/network.py),
the clock is virtual (simnode/sim/clock.py), and REST requests go into the same ASGI application
without a socket (`AsgiClient`).

    run_sim(main, seed=7)                     # main(engine) runs inside the simulated world
    async def main(engine: SimEngine):
        async with engine.cluster(config) as (cluster, client):
            status, body = (await client.request("GET", "/_tasks")).status, ...

One seed decides everything: node ids and the cluster uuid (as on the real engine), the simulated
wall clock's epoch, message latencies, fault randomness and trio's scheduling order. Nothing here
reads wall time or starts a thread, a socket or a process.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import trio

from coordinator.client import Response
from coordinator.engine import HostState
from coordinator.supervisor import NodeSpec, SupervisorError
from simnode.discovery import DiscoveryNode
from simnode.node import Clock, Node
from simnode.sim.clock import VirtualClock, deterministic_scheduling, epoch_millis_for
from simnode.sim.network import SimHost, SimNetwork, SimTransport

T = TypeVar("T")

BASE_PORT = 9300  # the coordinating node; node i (in configured order) gets BASE_PORT + i


class SimHosts:
    """In-process node hosts on a `SimNetwork`."""

    engine = "sim"

    def __init__(
        self,
        network: SimNetwork,
        epoch_millis: int,
        names: list[str],
        *,
        max_live_tasks: int | None = None,
    ) -> None:
        self.network = network
        self.epoch_millis = epoch_millis
        self.max_live_tasks = max_live_tasks
        self.transport: SimTransport = network.transport()
        self._ports = {name: BASE_PORT + i for i, name in enumerate(names, start=1)}
        self._specs: dict[str, NodeSpec] = {}
        self._hosts: dict[str, SimHost] = {}
        self._restarts: dict[str, int] = {}
        self._local: SimHost | None = None

    def clock(self) -> Clock:
        return Clock(epoch_millis=self.epoch_millis, t0=0.0)

    def bind_local(self, host: str, port: int) -> int:
        return BASE_PORT

    async def serve_local(self, node: Node, nursery: trio.Nursery) -> None:
        self._local = await self.network.start(node, self.transport)

    def _node(self, spec: NodeSpec) -> Node:
        port = self._ports.get(spec.name) or BASE_PORT + len(self._ports) + 1
        self._ports.setdefault(spec.name, port)
        local = DiscoveryNode(
            id=spec.id,
            name=spec.name,
            host=spec.host,
            ip=spec.host,
            port=port,
            roles=spec.roles,
            attributes=spec.attributes,
        )
        return Node(
            local, self.network.transport(), max_live_tasks=self.max_live_tasks, clock=self.clock()
        )

    async def start(self, spec: NodeSpec) -> int:
        node = self._node(spec)
        assert isinstance(node.transport, SimTransport)
        self._specs[spec.name] = spec
        self._hosts[spec.name] = await self.network.start(node, node.transport)
        return node.local.port

    def _get(self, name: str) -> SimHost:
        try:
            return self._hosts[name]
        except KeyError:
            raise SupervisorError(f"no node named [{name}]") from None

    async def restart(self, name: str) -> int:
        old = self._get(name)
        if old.alive:
            self.network.kill(old.node.local.id)
        self._restarts[name] = self._restarts.get(name, 0) + 1
        return await self.start(self._specs[name])

    async def kill(self, name: str) -> None:
        host = self._get(name)
        self.network.kill(host.node.local.id)

    async def pause(self, name: str) -> None:
        self._get(name).pause()

    async def resume(self, name: str) -> None:
        self._get(name).resume()

    def names(self) -> list[str]:
        return list(self._hosts)

    def state(self, name: str) -> HostState:
        host = self._get(name)
        local = host.node.local
        return HostState(
            name=name,
            id=local.id,
            host=local.host,
            port=local.port,
            alive=host.alive,
            paused=host.paused and host.alive,
            restarts=self._restarts.get(name, 0),
        )

    def can_hear(self, name: str) -> bool:
        host = self._hosts.get(name)
        return host is not None and host.alive and not host.paused

    async def stop(self) -> None:
        for host in self._hosts.values():
            if host.alive:
                self.network.kill(host.node.local.id)
        if self._local is not None and self._local.alive:
            self.network.kill(self._local.node.local.id)


# -- REST without a socket ---------------------------------------------------------------------------


class AsgiClient:
    """HTTP/1.1 requests into an ASGI application, in-process: what a socket would carry, no
    socket. Answers as `coordinator.client.Response` (parsed JSON, or text), `elapsed` in the run's
    (virtual) seconds. A `timeout` that passes raises `TimeoutError`, as `SimClient` does."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 9200) -> None:
        self.app = app
        self.server = (host, port)
        self.url = f"http://{host}:{port}"

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("content-type", "application/json")
        hdrs.setdefault("host", f"{self.server[0]}:{self.server[1]}")
        hdrs["content-length"] = str(len(data))
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": urllib.parse.unquote(raw_path),
            "raw_path": raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
            "server": self.server,
            "client": ("127.0.0.1", 50000),
        }
        started = trio.current_time()
        status = 0
        answer_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        sent_body = False
        done = trio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": data, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for k, v in message.get("headers", []):
                    answer_headers[k.decode("latin-1").title()] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            if timeout is None:
                await self.app(scope, receive, send)
            else:
                with trio.move_on_after(timeout) as waited:
                    await self.app(scope, receive, send)
                if waited.cancelled_caught:
                    raise TimeoutError(f"{method} {path}: no answer within the client timeout")
        finally:
            done.set()
        text = b"".join(chunks).decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Response(status, parsed, answer_headers, trio.current_time() - started)


# -- the engine -------------------------------------------------------------------------------------


@dataclass
class SimEngine:
    """One simulated world: a seed, its network, its clock. Lives inside `run_sim`."""

    seed: int
    network: SimNetwork
    clock: VirtualClock
    epoch_millis: int

    def hosts(self, config: Any) -> SimHosts:
        return SimHosts(
            self.network,
            self.epoch_millis,
            [n.name for n in config.nodes],
            max_live_tasks=config.max_live_tasks,
        )

    @asynccontextmanager
    async def cluster(
        self, config: Any, *, demo: bool = False
    ) -> AsyncIterator[tuple[Any, AsgiClient]]:
        """A running cluster of `config` (its seed forced to the engine's) and a REST client."""
        from coordinator.cluster import Cluster
        from coordinator.http import build_app
        from coordinator.main import build_router

        config = replace(config, seed=self.seed)
        cluster = Cluster(config, hosts=self.hosts(config))
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.run)
            if demo:
                from coordinator.demo import start_demo

                await start_demo(cluster)
            client = AsgiClient(build_app(build_router(cluster)))
            try:
                yield cluster, client
            finally:
                nursery.cancel_scope.cancel()


def run_sim(main: Callable[[SimEngine], Awaitable[T]], *, seed: int) -> T:
    """Run `main(engine)` in a fresh simulated world for `seed` and return what it returns."""
    clock = VirtualClock()

    async def root() -> T:
        network = SimNetwork(seed)
        engine = SimEngine(seed, network, clock, epoch_millis_for(seed))
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            try:
                return await main(engine)
            finally:
                nursery.cancel_scope.cancel()

    with deterministic_scheduling(seed):
        return trio.run(root, clock=clock)
