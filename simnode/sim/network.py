"""The simulation engine's network: in-process node hosts and the in-memory links between them.

Every node of a simulated cluster is a `SimHost` in one trio run: its `Node` (the same runtime the
node processes run), its `SimTransport`, and a cancel scope that is its "process". A call between
nodes goes through the shared call driver (simnode/driver.py: fault decisions, deadlines, the call's
state on a faulty link) and is carried by this module instead of gRPC:

    caller ── SimTransport._send ──► delivery (seeded latency) ──► callee host: handlers.serve
    caller ◄── RESPONSE event ◄── response (seeded latency) ◄──────┘

- Latency: each request and each response waits a seeded random 0…`jitter` seconds of virtual time
  (default 0.2–0.5 ms), so that different seeds explore different interleavings; the draws come from
  one rng keyed by the run's seed and taken in the (deterministic) order of the run.
- Kill: the host's scope is cancelled (its tasks, handlers and registry are gone); every call it was
  serving answers `node_disconnected_exception`, a call that arrives later `node_not_connected`.
  Calls the dead node had made are cancelled with it, and their callees hear it at once (a `RunTask`
  child sees "channel was closed"), as they do when a process dies and its connections reset.
- Pause: the host's "process" is frozen at its edges: a request to it waits before its handler
  starts, an answer it produced waits before it leaves, a call it makes waits before it is sent,
  and a cancellation sent to it waits to be heard — until resume. Work already running inside the
  paused node finishes in virtual time, but nothing of it can be seen from outside before resume:
  that is what a SIGSTOPped process looks like from its peers.
- Restart: a new `Node` (empty registry) under the same name, id and address.
- The control channel (`call_control`: SetRules, GetRules, Inspect) is never faulted; a dead node is
  `node_not_connected`, a paused one waits (until resume or the caller's timeout).

One trio run, no threads, no sockets. Insertion-ordered dicts everywhere, never sets of objects, so
that iteration order (and therefore scheduling) does not depend on memory addresses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import trio
from google.protobuf.message import Message

from simnode._wire import control_pb2 as cpb
from simnode.control import inspection, rule_set_from_pb, rule_set_to_pb
from simnode.discovery import DiscoveryNode
from simnode.driver import (
    Call,
    CallDriver,
    node_disconnected,
    node_not_connected,
    receive_timeout,
)
from simnode.errors import OpenSearchError, first_leaf, internal_error
from simnode.faults import FaultTable, LinkEvent, RuleSet
from simnode.handlers import METHODS, CalleeLink, serve
from simnode.node import Node

DEFAULT_JITTER = (0.0002, 0.0005)  # seconds of virtual latency per message, min and max


class _Delivery(CalleeLink):
    """One call's trip to its callee and back, and its callee link (simnode/handlers.py)."""

    def __init__(self, call: Call, caller: SimTransport) -> None:
        super().__init__()
        self.call = call
        self.caller = caller
        self.host: SimHost | None = None


class SimHost:
    """One simulated node "process": its node, its transport and its run state."""

    def __init__(self, network: SimNetwork, node: Node, transport: SimTransport) -> None:
        self.network = network
        self.node = node
        self.transport = transport
        self.alive = True
        self.paused = False
        self._resumed = trio.Event()
        self.scope = trio.CancelScope()
        self.nursery: trio.Nursery | None = None
        self.serving: dict[_Delivery, None] = {}
        self.started = trio.Event()

    @property
    def name(self) -> str:
        return self.node.local.name

    async def running(self) -> None:
        """Return once the host is not paused (at once when it is not)."""
        while self.paused and self.alive:
            await self._resumed.wait()

    def pause(self) -> None:
        if self.alive:
            self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._resumed.set()
        self._resumed = trio.Event()

    async def _run(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.node.run)
                self.nursery = nursery
                self.started.set()
                await trio.sleep_forever()


class SimTransport(CallDriver):
    """The in-memory `Transport` of one simulated node."""

    def __init__(self, network: SimNetwork, faults: FaultTable | None = None) -> None:
        super().__init__(faults)
        self.network = network
        self.host: SimHost | None = None  # set when the host is attached

    # -- the call driver's hooks -----------------------------------------------------------------

    def _send(self, call: Call) -> None:
        delivery = _Delivery(call, self)
        call.link = delivery
        self.network._send(delivery)

    def _cancel(self, call: Call) -> None:
        delivery: _Delivery | None = call.link
        if delivery is not None:
            self.network.spawn(self.network._give_up, delivery)

    def _finish(self, call: Call) -> Any:
        if isinstance(call.outcome, OpenSearchError):
            raise call.outcome
        return call.outcome

    # -- the control channel (never faulted) -----------------------------------------------------

    async def call_control(
        self, node: DiscoveryNode, method: str, request: Message, *, timeout: float
    ) -> Any:
        started = trio.current_time()
        host = self.network.host_of(node)
        if host is None or not host.alive:
            raise node_not_connected(node)
        with trio.move_on_after(timeout):
            await host.running()
            if not host.alive:
                raise node_not_connected(node)
            return self.network.control(host, method, request)
        elapsed_ms = int((trio.current_time() - started) * 1000)
        raise receive_timeout(node, f"internal:tasksim/control/{method}", 0, elapsed_ms)

    def close(self) -> None:
        pass


class SimNetwork:
    """Every host of one simulated cluster, and the tasks that carry messages between them.

    `run()` must be running (in the engine's nursery) before any host starts or any call is made."""

    def __init__(self, seed: int | str, *, jitter: tuple[float, float] = DEFAULT_JITTER) -> None:
        self.seed = seed
        self.jitter = jitter
        self.rng = random.Random(f"tasksim-network:{seed}")
        self._by_id: dict[str, SimHost] = {}
        self._nursery: trio.Nursery | None = None
        self.messages = 0  # requests and responses carried (the engine's event count)
        self.on_message: Callable[[str, Call], None] | None = None
        # The last SetRules message and its rules: the nemesis sends one message object to every
        # node, and a `RuleSet` is immutable, so the nodes share one decoded copy (a partition of a
        # 10 000-node cluster names ~10 000 nodes: a copy per node was 10^8 strings).
        self._rules: tuple[Any, RuleSet] | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None, "SimNetwork.run() is not running"
        self._nursery.start_soon(fn, *args)

    def transport(self) -> SimTransport:
        return SimTransport(self)

    # -- hosts -----------------------------------------------------------------------------------

    async def start(self, node: Node, transport: SimTransport) -> SimHost:
        """Start a host for `node` (a restart replaces the host of the same id)."""
        old = self._by_id.get(node.local.id)
        if old is not None and old.alive:
            self.kill(old.node.local.id)
        transport.faults.local = node.local.name
        node.pid = 0  # no process of its own
        host = SimHost(self, node, transport)
        transport.host = host
        self._by_id[node.local.id] = host
        self.spawn(host._run)
        await host.started.wait()
        return host

    def host_of(self, node: DiscoveryNode) -> SimHost | None:
        host = self._by_id.get(node.id)
        if host is None or host.node.local.transport_address != node.transport_address:
            return None
        return host

    def host(self, node_id: str) -> SimHost:
        return self._by_id[node_id]

    def kill(self, node_id: str) -> None:
        """The process is gone at once: its tasks, its registry, its connections."""
        host = self._by_id[node_id]
        if not host.alive:
            return
        host.alive = False
        host.paused = False
        host._resumed.set()
        for delivery in list(host.serving):
            self._respond(delivery, node_disconnected(delivery.call.node, delivery.call.action))
        host.serving.clear()
        host.scope.cancel()

    # -- carrying calls --------------------------------------------------------------------------

    def _latency(self) -> float:
        low, high = self.jitter
        return low + self.rng.random() * (high - low) if high > 0 else 0.0

    def _send(self, delivery: _Delivery) -> None:
        """Put a call on its way. The common case — a running caller, a live callee — is one task
        in the callee's nursery for the whole round trip; otherwise `_deliver` waits first."""
        call = delivery.call
        caller = delivery.caller.host
        host = self.host_of(call.node)
        if (caller is None or not caller.paused) and host is not None and host.alive:
            self._start_serving(host, delivery, arrived=False)
        else:
            self.spawn(self._deliver, delivery)

    async def _deliver(self, delivery: _Delivery) -> None:
        call = delivery.call
        caller = delivery.caller.host
        if caller is not None:
            await caller.running()  # a paused process sends nothing
            if not caller.alive:
                return
        await trio.sleep(self._latency())
        host = self.host_of(call.node)
        if host is None or not host.alive or host.nursery is None:
            self._count("request", call)
            self._respond(delivery, node_not_connected(call.node))
            return
        if delivery.gone:
            return  # the caller went away before the request arrived: nothing to serve
        self._start_serving(host, delivery, arrived=True)

    def _start_serving(self, host: SimHost, delivery: _Delivery, *, arrived: bool) -> None:
        assert host.nursery is not None
        delivery.host = host
        host.serving[delivery] = None
        # In the node's own nursery, as the node's work: when the node is killed, that nursery
        # stays open until its handlers have unwound, so a handler that starts background work
        # (a ban starting a cancellation) in the moment of its death does not find it closed.
        host.node.nursery.start_soon(self._serve, host, delivery, arrived)

    def _count(self, kind: str, call: Call) -> None:
        self.messages += 1
        if self.on_message is not None:
            self.on_message(kind, call)

    async def _serve(self, host: SimHost, delivery: _Delivery, arrived: bool) -> None:
        """The callee's side of one call, from the request's arrival to the answer's: a kill of
        the host ends it (the caller is told `node_disconnected_exception` by `kill`)."""
        call = delivery.call
        if not arrived:
            await trio.sleep(self._latency())
        self._count("request", call)
        await host.running()  # a paused process reads nothing
        outcome: Any = None
        if not delivery.gone:
            with trio.CancelScope(deadline=call.deadline) as scope:
                delivery.scope = scope
                try:
                    outcome = await serve(
                        host.node,
                        host.transport.faults,
                        call.method,
                        call.request,
                        src=call.env.src,
                        seq=call.env.seq,
                        link=delivery,
                    )
                except Exception as e:  # an OpenSearchError, or a bug: as the gRPC server does
                    outcome = internal_error(e)
                    if not isinstance(first_leaf(e), OpenSearchError):
                        host.node.log_bug(e, "a request")
            if scope.cancelled_caught:
                outcome = receive_timeout(
                    call.node, call.action, call.request_id, call.elapsed_ms()
                )
        await host.running()  # a paused process answers nothing
        await trio.sleep(self._latency())
        if host.serving.pop(delivery, "gone") == "gone":
            return  # killed meanwhile: the caller was told already
        self._count("response", call)
        caller = delivery.caller.host
        if caller is not None and caller.paused:
            self.spawn(self._carry_response, delivery, outcome)
        else:
            self._respond_now(delivery, outcome)

    def _respond(self, delivery: _Delivery, outcome: Any) -> None:
        self.spawn(self._carry_response, delivery, outcome)

    async def _carry_response(self, delivery: _Delivery, outcome: Any) -> None:
        """An answer that cannot be handed over at once (a paused caller, a refused request)."""
        caller = delivery.caller.host
        if caller is not None:
            await caller.running()
            if not caller.alive:
                return
        self._respond_now(delivery, outcome)

    def _respond_now(self, delivery: _Delivery, outcome: Any) -> None:
        call = delivery.call
        if call.finished.is_set():
            return
        call.outcome = outcome
        delivery.caller._event(call, LinkEvent.RESPONSE)

    async def _give_up(self, delivery: _Delivery) -> None:
        """The caller went away: the callee hears it (after a latency; a paused one at resume).

        A caller that went away because its process was killed is heard at once: its connections
        reset with its death, before the kill is over (the real engine's kill returns once the
        process is reaped, and its peers have seen the resets by then), as its own callers hear
        `node_disconnected` at once (`kill`)."""
        caller = delivery.caller.host
        if caller is None or caller.alive:
            await trio.sleep(self._latency())
        host = delivery.host
        if host is not None:
            await host.running()
        delivery.caller_gone()

    # -- the control channel ---------------------------------------------------------------------

    def control(self, host: SimHost, method: str, request: Any) -> Message:
        faults = host.transport.faults
        if method == "SetRules":
            if self._rules is None or self._rules[0] is not request:
                self._rules = (request, rule_set_from_pb(request))
            faults.install(self._rules[1])
            return cpb.RulesAck(node=faults.local, version=faults.version)
        if method == "GetRules":
            return rule_set_to_pb(faults.current)
        if method == "Inspect":
            return inspection(host.node, faults, tasks=request.tasks)
        raise ValueError(f"unknown control method [{method}]")


__all__ = ["METHODS", "SimHost", "SimNetwork", "SimTransport"]
