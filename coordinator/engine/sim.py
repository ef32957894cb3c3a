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

import gc
import math
import threading
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import trio

from coordinator.cat import NodeStats
from coordinator.client import Response, decode_answer, encode_body
from coordinator.engine import HostState, PacketFilter
from coordinator.supervisor import NodeSpec, SupervisorError
from simnode.history import Recorder, attach
from simnode.node import Clock, Node
from simnode.offload import run_inline
from simnode.sim.clock import VirtualClock, deterministic_scheduling, epoch_millis_for
from simnode.sim.network import SimHost, SimNetwork, SimTransport

T = TypeVar("T")

# What `_cat/nodes` shows for a simulated node: no process, so fixed numbers of a small idle one.
SIMULATED_STATS = NodeStats(
    heap_used=64 << 20,
    heap_max=512 << 20,
    ram_used=1 << 30,
    ram_total=4 << 30,
    open_fds=64,
    max_fds=65536,
    cpu_percent=0,
    load=(0.0, 0.0, 0.0),
    uptime_nanos=0,
)
GC_THRESHOLD = 50_000
# How much virtual time a run (`run_sim`) or one call into a `SimWorld` may take. A simulated system
# that deadlocks (nothing runnable, no timer) or livelocks (its periodic timers keep time moving,
# the awaited thing never happens) would otherwise hang the caller for good; virtual time is cheap,
# so the bound is generous: no test or scenario comes near a day.
VIRTUAL_LIMIT = 86_400.0
BASE_PORT = 9300  # the coordinating node; node i (in configured order) gets BASE_PORT + i


def _dead(_kind: str, _fields: dict[str, Any]) -> None:
    """The listener of a killed node: it says nothing."""


class SimHosts:
    """In-process node hosts on a `SimNetwork`."""

    engine = "sim"
    net: PacketFilter | None = None  # one process: no packets to cut

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
        # The run's history (simnode/history.py): every node's lifecycle and calls, recorded in
        # place (no control stream: the nodes live in this run).
        self.recorder: Recorder | None = None

    def clock(self) -> Clock:
        return Clock(epoch_millis=self.epoch_millis, t0=0.0)

    def host_of(self, name: str, default: str) -> str:
        return default

    def bind_local(self, host: str, port: int) -> int:
        return BASE_PORT

    async def serve_local(self, node: Node, nursery: trio.Nursery) -> None:
        self._local = await self.network.start(node, self.transport)

    def _node(self, spec: NodeSpec) -> Node:
        port = self._ports.get(spec.name) or BASE_PORT + len(self._ports) + 1
        self._ports.setdefault(spec.name, port)
        return Node(
            spec.discovery_node(port),
            self.network.transport(),
            max_live_tasks=self.max_live_tasks,
            clock=self.clock(),
        )

    async def start(self, spec: NodeSpec) -> int:
        node = self._node(spec)
        assert isinstance(node.transport, SimTransport)
        if self.recorder is not None:
            self.recorder.record("record_start", node=spec.name, pid=0)
            attach(node, self.recorder.listener(spec.name))
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
            self._kill(old, name)
        self._restarts[name] = self._restarts.get(name, 0) + 1
        return await self.start(self._specs[name])

    async def kill(self, name: str) -> None:
        self._kill(self._get(name), name)

    def _kill(self, host: SimHost, name: str) -> None:
        # A killed process records nothing more. Here its tasks' `finally` blocks still run when
        # the network cancels them; silenced first, so the history shows what a real kill shows.
        attach(host.node, _dead)
        self.network.kill(host.node.local.id)
        self._record_end(name, "process_ended")

    def _record_end(self, name: str, reason: str) -> None:
        if self.recorder is not None:
            self.recorder.record("record_end", node=name, reason=reason, last_seq=0, pid=0)

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

    def stats_reader(self) -> Callable[[int], NodeStats]:
        """A simulated node has no process: the numbers of an idle node, the same every run."""
        return lambda _pid: SIMULATED_STATS

    async def stop(self) -> None:
        for name, host in self._hosts.items():
            if host.alive:
                self.network.kill(host.node.local.id)
                self._record_end(name, "stopped")
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
        data = encode_body(body)
        if data is None:
            data = b""
        else:
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
        return Response(
            status, decode_answer(b"".join(chunks)), answer_headers, trio.current_time() - started
        )


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
        self, config: Any, *, demo: bool = False, recorder: Recorder | None = None
    ) -> AsyncIterator[tuple[Any, AsgiClient]]:
        """A running cluster of `config` (its seed forced to the engine's) and a REST client.
        `recorder`: the run's history goes there (clock: `trio.current_time()` minus the start,
        virtual seconds), the same events the real engine records."""
        from coordinator.cluster import Cluster
        from coordinator.http import build_app
        from coordinator.main import build_router

        config = replace(config, seed=self.seed)
        hosts = self.hosts(config)
        hosts.recorder = recorder
        cluster = Cluster(config, hosts=hosts)
        cluster.recorder = recorder
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.run)
            # A big cluster is many long-lived objects: keep the collector from walking them
            # again and again (unfrozen when the run ends, see `gc_tuned`).
            gc.freeze()
            if demo:
                from coordinator.demo import start_demo

                await start_demo(cluster)
            client = AsgiClient(build_app(build_router(cluster), recorder=recorder))
            try:
                yield cluster, client
            finally:
                nursery.cancel_scope.cancel()


class SimStuck(RuntimeError):
    """A simulated run (or one call into a world) did not finish within its virtual-time limit."""

    def __init__(self, what: str, limit: float, seed: int) -> None:
        super().__init__(
            f"{what} did not finish within {limit:g} s of virtual time (seed {seed}): the simulated "
            "system is deadlocked (nothing runnable, no timer) or livelocked (timers keep time "
            f"moving, the awaited thing never happens); replay it with seed {seed}"
        )
        self.limit = limit
        self.seed = seed


async def _bounded(fn: Callable[[], Awaitable[T]], what: str, limit: float, seed: int) -> T:
    with trio.move_on_after(limit) as scope:
        return await fn()
    assert scope.cancelled_caught
    raise SimStuck(what, limit, seed)


def run_sim(
    main: Callable[[SimEngine], Awaitable[T]], *, seed: int, limit: float = VIRTUAL_LIMIT
) -> T:
    """Run `main(engine)` in a fresh simulated world for `seed` and return what it returns.
    Raises `SimStuck` when `main` has not returned after `limit` seconds of virtual time."""
    clock = VirtualClock()

    async def world() -> T:
        run_inline()  # one thread: heavy work runs inline, not in a worker thread
        network = SimNetwork(seed)
        engine = SimEngine(seed, network, clock, epoch_millis_for(seed))
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            try:
                return await main(engine)
            finally:
                nursery.cancel_scope.cancel()

    async def root() -> T:
        return await _bounded(world, "the simulated run", limit, seed)

    with deterministic_scheduling(seed), gc_tuned():
        return trio.run(root, clock=clock)


@contextmanager
def gc_tuned() -> Iterator[None]:
    """For one simulated run: a young generation big enough for the run's many small objects,
    and whatever the run froze (`gc.freeze` after a cluster starts) unfrozen at the end."""
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


# -- a world driven from synchronous code ------------------------------------------------------------


class _DrivenClock(VirtualClock):
    """The virtual clock of a `SimWorld`: time moves only while the driver waits for a call.

    trio asks the clock for a sleep time exactly when nothing is runnable — a quiescent point. There
    the world hands finished calls back to the driver (and then holds still: a long real sleep,
    which the driver's next submission interrupts through the trio token), or, while a call is still
    running, jumps to the next deadline as the plain virtual clock does."""

    def __init__(self, world: SimWorld) -> None:
        super().__init__()
        self.world = world

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if deadline <= self.current_time():
            return 0.0
        world = self.world
        if world._finished:
            world._release()
            return STALL_SLEEP
        if world._pending == 0:
            return STALL_SLEEP  # nobody waits for the world: it holds still
        return super().deadline_to_sleep_time(deadline)


STALL_SLEEP = 3600.0


class _Job:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Awaitable[Any]]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SimWorld:
    """A simulated cluster driven from synchronous code (hypothesis properties, the testing kit).

    The world runs in its own trio run on a second thread, and the two never run at once: the
    driver submits a call (`call`, `request`, `sleep`) and blocks; the world runs — its virtual time
    moving — until the call is done *and* nothing else is runnable, hands the answer back and holds
    still until the next call. So a run is a function of the seed and the calls alone, however fast
    or slow the machine: one seed, one run, every time. `close()` (or the `with` block's end) stops
    the world; nothing of it survives. A call that has not finished after `limit` seconds of
    virtual time fails with `SimStuck` (the world goes on).
    """

    def __init__(
        self,
        config: Any,
        *,
        seed: int,
        demo: bool = False,
        limit: float = VIRTUAL_LIMIT,
        record: bool = False,
    ) -> None:
        self.config = config
        self.seed = seed
        self.limit = limit  # the virtual time one call may take (`SimStuck` beyond)
        # With `record`, the world's history (simnode/history.py), `t` in virtual seconds.
        self.recorder = Recorder(self.now) if record else None
        self.demo = demo
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._pending = 0
        self._finished: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._crash: BaseException | None = None
        self.cluster: Any = None
        self.client: AsgiClient | None = None
        self.clock: _DrivenClock | None = None

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> SimWorld:
        self._thread = threading.Thread(target=self._main, name=f"tasksim-sim-{self.seed}")
        self._thread.start()
        self._ready.wait()
        if self._crash is not None:
            self._thread.join()
            raise self._crash
        return self

    def __enter__(self) -> SimWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _main(self) -> None:
        clock = self.clock = _DrivenClock(self)

        async def root() -> None:
            run_inline()  # one thread: heavy work runs inline, not in a worker thread
            network = SimNetwork(self.seed)
            engine = SimEngine(self.seed, network, clock, epoch_millis_for(self.seed))
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(network.run)
                self._pending += 1  # the start-up is the first call
                async with engine.cluster(self.config, demo=self.demo, recorder=self.recorder) as (
                    cluster,
                    client,
                ):
                    self.cluster, self.client = cluster, client
                    self._pending -= 1
                    self._ready.set()
                    await trio.sleep_forever()

        try:
            with deterministic_scheduling(self.seed), gc_tuned():
                trio.run(root, clock=clock)
        except BaseException as e:  # reported to the driver; a world never takes it down
            self._crash = e
        finally:
            self._ready.set()
            self._stopped.set()
            for job in self._finished:
                job.done.set()

    def close(self) -> None:
        if self._thread is None:
            return
        if not self._stopped.is_set() and self._token is not None and self._nursery is not None:
            nursery = self._nursery
            try:
                self._token.run_sync_soon(nursery.cancel_scope.cancel)
            except trio.RunFinishedError:
                pass
        self._thread.join()
        self._thread = None

    # -- calls ----------------------------------------------------------------------------------

    def _release(self) -> None:
        finished, self._finished = self._finished, []
        for job in finished:
            job.done.set()

    async def _run(self, job: _Job) -> None:
        try:
            job.result = await _bounded(
                job.fn, "a call into the simulated world", self.limit, self.seed
            )
        except BaseException as e:
            job.error = e
            if isinstance(e, trio.Cancelled):
                raise
        finally:
            self._pending -= 1
            self._finished.append(job)

    def _submit(self, job: _Job) -> None:
        assert self._nursery is not None
        self._pending += 1
        self._nursery.start_soon(self._run, job)

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn()` in the world (its virtual time moves meanwhile) and return what it returns."""
        if self._stopped.is_set() or self._token is None:
            raise RuntimeError(f"the simulated world is not running: {self._crash!r}")
        job = _Job(fn)
        self._token.run_sync_soon(self._submit, job)
        # The world answers at a quiescent point; if it ends first (a crash while it shut down,
        # with this call queued and never started), say so instead of waiting forever.
        while not job.done.wait(1.0):
            if self._stopped.is_set():
                job.done.wait(1.0)  # the world's last act releases what it finished
                break
        if not job.done.is_set():
            raise RuntimeError(f"the simulated world crashed: {self._crash!r}")
        if job.error is not None:
            raise job.error
        if self._stopped.is_set() and self._crash is not None and job.result is None:
            raise RuntimeError(f"the simulated world crashed: {self._crash!r}")
        return job.result  # type: ignore[no-any-return]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        client = self.client
        assert client is not None
        return self.call(
            lambda: client.request(method, path, body, headers=headers, timeout=timeout)
        )

    def spawn(self, fn: Callable[[], Awaitable[T]]) -> SimPending[T]:
        """Start `fn()` in the world in the background (a request that waits for a fault to heal,
        say) and return once it has run as far as it can without time passing. It moves on only
        while the driver waits in a call, like the rest of the world; `result()` waits for it."""
        pending: SimPending[T] = SimPending(self)

        async def start() -> None:
            assert self._nursery is not None
            pending._event = trio.Event()
            self._nursery.start_soon(pending._run, fn)

        self.call(start)
        return pending

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass."""
        self.call(lambda: trio.sleep(seconds))

    def now(self) -> float:
        """The world's virtual time (seconds since it started)."""
        assert self.clock is not None
        return self.clock.current_time()


class SimPending(Generic[T]):
    """A call running in the background of a `SimWorld` (`SimWorld.spawn`)."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self._event: trio.Event | None = None
        self._finished = False
        self._result: Any = None
        self._error: BaseException | None = None

    async def _run(self, fn: Callable[[], Awaitable[T]]) -> None:
        try:
            self._result = await fn()
        except BaseException as e:
            self._error = e
            if isinstance(e, trio.Cancelled):
                raise
        finally:
            self._finished = True
            assert self._event is not None
            self._event.set()

    def done(self) -> bool:
        return self._finished

    def result(self, timeout: float | None = None) -> T:
        """Its answer, once it has one; `TimeoutError` after `timeout` virtual seconds without."""
        if not self._finished:
            event = self._event
            assert event is not None

            async def wait() -> None:
                with trio.move_on_after(math.inf if timeout is None else timeout):
                    await event.wait()

            self.world.call(wait)
        if not self._finished:
            raise TimeoutError(f"no answer within {timeout}s (virtual)")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]
