"""The call driver: one RPC's life from the caller's side, shared by every transport.

Node and coordinator logic call `await transport.call(node, method, request, timeout=...)`. Whatever
carries the bytes (gRPC between processes, or the in-memory links of the simulation engine), the
caller's side of a call is the same and lives here, once:

- the fault decision before the call leaves (`FaultTable.decide`, simnode/faults.py): a `delay`
  waits first, a `disconnect` fails fast with `connect_transport_exception ... DISCONNECT:
  simulated`, the other verdicts start the call in the state `CALL_TABLE` gives it;
- the deadline: the per-request timeout → `receive_timeout_transport_exception`
  (`[name][address][action] request_id [n] timed out after [Nms]`);
- the call's state on its link, fed the RPC's completion, the caller giving up, and a re-decision
  whenever the rules change; the effects the table answers with (send, cancel the RPC, deliver,
  fail the caller with `node_disconnected_exception`) are carried out by the transport's four hooks
  (`_open`, `_send`, `_cancel`, `_finish`), the only part that differs between transports;
- `node_left`: the node left the cluster, every call still waiting on it fails with
  `node_disconnected_exception`.

The other OpenSearch transport errors a transport may raise (`node_not_connected_exception` when
nothing listens at the address) are built by the functions below, so that both transports word them
alike. No grpc here, no sockets: only trio and the pure fault model.

Determinism: calls are kept in insertion-ordered dicts, never in sets, so that the order in which a
rule change re-decides them (and therefore what the simulation engine schedules) does not depend on
object addresses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

import trio
from google.protobuf.message import Message

from simnode.discovery import DiscoveryNode
from simnode.errors import (
    ConnectTransportError,
    NodeDisconnectedError,
    OpenSearchError,
    ReceiveTimeoutTransportError,
)
from simnode.faults import (
    CallState,
    Effect,
    Envelope,
    FaultTable,
    LinkEvent,
    Verdict,
    link_event,
    start_call,
    step,
)

# The OpenSearch action name each RPC stands for, used in transport error messages.
ACTION_OF_METHOD = {
    "ListTasks": "cluster:monitor/tasks/lists[n]",
    "CancelTasks": "cluster:admin/tasks/cancel[n]",
    "GetTask": "cluster:monitor/task/get",
    "BanParent": "internal:admin/tasks/ban",
    "StoreResult": "indices:data/write/index",
    "Rethrottle": "cluster:admin/reindex/rethrottle[n]",
    "RunTask": "internal:tasksim/task/run",
    "StartTask": "internal:tasksim/task/start",
    "SetClusterState": "internal:cluster/coordination/publish_state",
    "Status": "cluster:monitor/nodes/info[n]",
}
# The `MlNode` service's methods (proto/tasksim/v1/ml.proto) and the ML Commons actions they carry.
ML_ACTION_OF_METHOD = {
    "DeployModel": "cluster:admin/opensearch/ml/deploy_model_on_nodes[n]",
    "UndeployModel": "cluster:admin/opensearch/ml/undeploy_model[n]",
    "RegisterModel": "cluster:admin/opensearch/ml/forward",
    "TrainModel": "cluster:admin/opensearch/ml/train",
    "SyncUp": "cluster:admin/opensearch/ml/syncup[n]",
}
ACTION_OF_METHOD.update(ML_ACTION_OF_METHOD)
# Errors that mean the request never got an answer from the callee (not a delivery).
_NOT_DELIVERED = (
    "node_not_connected_exception",
    "node_disconnected_exception",
    "receive_timeout_transport_exception",
    "connect_transport_exception",
)


class NodeNotConnectedError(OpenSearchError):
    type = "node_not_connected_exception"
    status = 500


def receive_timeout(
    node: DiscoveryNode, action: str, request_id: int, elapsed_ms: int
) -> OpenSearchError:
    return ReceiveTimeoutTransportError(
        f"[{node.name}][{node.transport_address}][{action}] request_id [{request_id}] "
        f"timed out after [{elapsed_ms}ms]"
    )


def node_disconnected(node: DiscoveryNode, action: str) -> OpenSearchError:
    return NodeDisconnectedError(f"[{node.name}][{node.transport_address}][{action}] disconnected")


def node_not_connected(node: DiscoveryNode) -> OpenSearchError:
    return NodeNotConnectedError(f"[{node.name}][{node.transport_address}] Node not connected")


def simulated_disconnect(node: DiscoveryNode) -> OpenSearchError:
    """What MockTransportService's fail-to-send-no-connect rule throws."""
    return ConnectTransportError(f"[{node.name}][{node.transport_address}] DISCONNECT: simulated")


class Transport(Protocol):
    """What node and coordinator logic see of a transport."""

    faults: FaultTable

    def next_request_id(self) -> int: ...

    async def call(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
    ) -> Any: ...

    async def call_control(
        self, node: DiscoveryNode, method: str, request: Message, *, timeout: float
    ) -> Any: ...

    def node_left(self, node_id: str) -> None: ...

    def close(self) -> None: ...


class Call:
    """One RPC to a peer and where it stands on its link (simnode/faults.py `CALL_TABLE`).

    It outlives its caller when a black-hole owes the receiver a cancellation. `link` is the
    transport's own handle (a gRPC channel, an in-memory delivery), `outcome` what the RPC
    completed with (set by the transport before it reports `RESPONSE`)."""

    __slots__ = (
        "action",
        "deadline",
        "env",
        "failure",
        "finished",
        "link",
        "method",
        "node",
        "outcome",
        "request",
        "request_id",
        "started",
        "state",
    )

    def __init__(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        deadline: float,
        env: Envelope,
        request_id: int,
        started: float,
    ) -> None:
        self.node = node
        self.method = method
        self.action = ACTION_OF_METHOD.get(method, method)
        self.request = request
        self.deadline = deadline
        self.env = env
        self.request_id = request_id
        self.started = started
        self.state = CallState.QUEUED
        self.link: Any = None
        self.outcome: Any = None
        self.finished = trio.Event()
        self.failure: OpenSearchError | None = None

    def elapsed_ms(self) -> int:
        return int((trio.current_time() - self.started) * 1000)


class CallDriver:
    """The caller's side of every call, for any transport. Call from the owning trio loop only.

    Subclasses carry the effects out: `_open` (a call is about to start: attach `call.link`),
    `_send` (put the request on the wire), `_cancel` (the receiver must hear that the caller went
    away), `_finish` (the outcome of a delivered call: return it or raise the OpenSearch error),
    and optionally `_forgotten` (the call is done on its link)."""

    def __init__(self, faults: FaultTable | None = None) -> None:
        self._calls: dict[str, dict[Call, None]] = {}  # by node id: calls not done yet
        self._request_ids = itertools.count(1)
        self.faults = faults if faults is not None else FaultTable()
        self.faults.on_change(self._rules_changed)
        # Told of every call's fate for the run's history (simnode/history.py): `rpc_send`, then
        # `rpc_deliver` or `rpc_drop` with the verdict that decided it. None: nobody listens.
        self.listener: Callable[[str, dict[str, Any]], None] | None = None
        self._verdicts: dict[Call, str] = {}  # the last non-pass verdict of a call, when recorded

    def next_request_id(self) -> int:
        """A fresh transport request id (also for requests sent through the local shortcut)."""
        return next(self._request_ids)

    # -- the hooks -------------------------------------------------------------------------------

    def _open(self, call: Call) -> None:
        """The call is about to start on its link (before any effect)."""

    def _send(self, call: Call) -> None:
        raise NotImplementedError

    def _cancel(self, call: Call) -> None:
        raise NotImplementedError

    def _finish(self, call: Call) -> Any:
        raise NotImplementedError

    def _forgotten(self, call: Call) -> None:
        """The call is done on its link."""

    # -- a call ----------------------------------------------------------------------------------

    async def call(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
    ) -> Any:
        request_id = self.next_request_id()
        started = trio.current_time()
        deadline = math.inf if timeout is None else started + timeout
        action = ACTION_OF_METHOD.get(method, method)

        def timed_out() -> OpenSearchError:
            elapsed_ms = int((trio.current_time() - started) * 1000)
            return receive_timeout(node, action, request_id, elapsed_ms)

        env = self.faults.envelope(node.name, method)
        decision = self.faults.decide(env)
        if decision.verdict is Verdict.DELAY:
            with trio.move_on_at(deadline):
                await trio.sleep(decision.delay)
            if trio.current_time() >= deadline:
                raise timed_out()
            decision = self.faults.decide(env, skip_delays=True)
        listener = self.listener
        if listener is not None:
            base = {"to": node.name, "method": method, "call": request_id}
            listener("rpc_send", {**base, "verdict": decision.verdict.value})
        if decision.verdict is Verdict.FAIL:
            if listener is not None:
                listener("rpc_drop", {**base, "verdict": Verdict.FAIL.value})
            raise simulated_disconnect(node)
        call = Call(node, method, request, deadline, env, request_id, started)
        if listener is not None and decision.verdict is not Verdict.PASS:
            self._verdicts[call] = decision.verdict.value
        self._open(call)
        call.state, effects = start_call(decision.verdict)
        self._calls.setdefault(node.id, {})[call] = None
        self._apply(call, effects)
        try:
            if math.isinf(deadline):  # no scope when there is no deadline: fan-outs are wide
                await call.finished.wait()
            else:
                with trio.move_on_at(deadline):
                    await call.finished.wait()
        except BaseException:
            self._event(call, LinkEvent.GIVE_UP)
            self._recorded(call, "rpc_drop", "caller_gone")
            raise
        if not call.finished.is_set():
            self._event(call, LinkEvent.GIVE_UP)
            self._recorded(call, "rpc_drop", "timeout")
            raise timed_out()
        if call.failure is not None:
            self._recorded(call, "rpc_drop", call.failure.type)
            raise call.failure
        try:
            answer = self._finish(call)
        except OpenSearchError as e:
            if e.type in _NOT_DELIVERED:
                self._recorded(call, "rpc_drop", e.type)
            else:
                self._recorded(call, "rpc_deliver", None, error=e.type)
            raise
        self._recorded(call, "rpc_deliver", None)
        return answer

    def _recorded(self, call: Call, kind: str, why: str | None, **extra: Any) -> None:
        """Record how `call` ended: the verdict that decided it first, else `why`."""
        verdict = self._verdicts.pop(call, None)
        if self.listener is None:
            return
        fields = {"to": call.node.name, "method": call.method, "call": call.request_id}
        if kind == "rpc_drop" or verdict is not None:
            fields["verdict"] = verdict or why or "pass"
        self.listener(kind, {**fields, **extra})

    # -- what the call state table says to do ----------------------------------------------------

    def _event(self, call: Call, event: LinkEvent) -> None:
        if call.state is CallState.DONE:
            return
        call.state, effects = step(call.state, event, unbounded=math.isinf(call.deadline))
        self._apply(call, effects)
        if call.state is CallState.DONE:
            self._forget(call)

    def _apply(self, call: Call, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            if effect is Effect.SEND:
                self._send(call)
            elif effect is Effect.CANCEL_RPC:
                self._cancel(call)
            elif effect is Effect.DELIVER:
                call.finished.set()
            elif effect is Effect.FAIL_CALLER and not call.finished.is_set():
                call.failure = node_disconnected(call.node, call.action)
                call.finished.set()

    def _forget(self, call: Call) -> None:
        calls = self._calls.get(call.node.id)
        if calls is not None:
            calls.pop(call, None)
        self._forgotten(call)

    def _rules_changed(self) -> None:
        """The rules changed: every call not done yet hears what its link does now."""
        for calls in list(self._calls.values()):
            for call in list(calls):
                decision = self.faults.decide(call.env, skip_delays=True, count=False)
                before = call.state
                self._event(call, link_event(decision.verdict))
                if decision.verdict is not Verdict.PASS and call.state is not before:
                    hits = self.faults.hits
                    hits[decision.rule_id] = hits.get(decision.rule_id, 0) + 1
                    if self.listener is not None:
                        self._verdicts[call] = decision.verdict.value

    def held_calls(self) -> int:
        """Calls a fault holds or owes (queued, clogged, lost, muted): for tests and inspection."""
        return sum(
            1
            for calls in self._calls.values()
            for call in calls
            if call.state not in (CallState.OPEN, CallState.DONE)
        )

    def node_left(self, node_id: str) -> None:
        """The node left the cluster: every call waiting on it fails with node_disconnected."""
        for call in list(self._calls.get(node_id, ())):
            if not call.finished.is_set():
                call.failure = node_disconnected(call.node, call.action)
                call.finished.set()
            self._event(call, LinkEvent.GIVE_UP)
