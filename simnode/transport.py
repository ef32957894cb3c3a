"""How one tasksim process calls another: the `Transport` interface and its gRPC implementation.

Node and coordinator logic call `await transport.call(node, method, request, timeout=...)` and get a
protobuf response or an `OpenSearchError` that says what OpenSearch's transport layer would:

- the remote handler raised → that error itself (OpenSearch unwraps `RemoteTransportException`);
- the per-request timeout passed → `receive_timeout_transport_exception`
  (`[name][address][action] request_id [n] timed out after [Nms]`);
- the connection dropped under an in-flight request, or the node left the cluster while we waited
  → `node_disconnected_exception` (`[name][address][action] disconnected`);
- nothing listens at the node's address → `node_not_connected_exception`
  (`[name][address] Node not connected`).

The gRPC bridge is the one measured in python-stack.md §1: `stub.M.future()` + a done-callback that
wakes trio through `run_sync_soon`; trio cancellation cancels the RPC (the server sees it). A
long-lived `Watch` call per channel ("keeper") keeps grpcio's channel-spin thread from being started
on every fan-out. grpc is imported only here and in server.py (DESIGN.md rule 3).

Faults: this is the caller's interceptor. Every call asks `FaultTable.decide` (simnode/faults.py)
before it leaves and again whenever the rules change, and carries out what the call's state table
says: fail fast (`connect_transport_exception ... DISCONNECT: simulated`), hold the request, lose
it, let the receiver act but drop the answer, or deliver late what a black-hole held. The caller's
name and the call's sequence number travel in the metadata, so the callee's interceptor (server.py)
decides on the same envelope. `call_control` is the control channel: it never consults the rules.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import trio
from google.protobuf.message import Message

from simnode._wire import control_pb2_grpc as control_grpc
from simnode._wire import ml_pb2_grpc as ml_pb_grpc
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from simnode.discovery import DiscoveryNode
from simnode.errors import (
    ConnectTransportError,
    NodeDisconnectedError,
    OpenSearchError,
    ReceiveTimeoutTransportError,
    TransportError,
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
from simnode.wire import error_from_pb

ERROR_METADATA_KEY = "tasksim-error-bin"
# Who calls, and the call's sequence number on that link: the callee's fault envelope.
FROM_METADATA_KEY = "tasksim-from"
SEQ_METADATA_KEY = "tasksim-seq"

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

CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),  # a dropped request must not be retried behind our back
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


@dataclass(frozen=True)
class TransportTls:
    """Mutual TLS between tasksim processes: every process presents `cert` (with `key`) and
    trusts `ca`; peers are checked against `server_name`, whatever address they publish."""

    cert: bytes
    key: bytes
    ca: bytes
    server_name: str = "tasksim-node"

    @classmethod
    def from_files(
        cls, cert: str | Path, key: str | Path, ca: str | Path | None = None
    ) -> TransportTls:
        cert_bytes = Path(cert).read_bytes()
        ca_bytes = Path(ca).read_bytes() if ca is not None else cert_bytes
        return cls(cert_bytes, Path(key).read_bytes(), ca_bytes)


class NodeNotConnectedError(OpenSearchError):
    type = "node_not_connected_exception"
    status = 500


# The longest deadline handed to gRPC (~31 years): beyond it a call waits on trio's deadline only.
MAX_GRPC_TIMEOUT = 1e9


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
    faults: FaultTable

    async def call(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
    ) -> Any: ...

    def node_left(self, node_id: str) -> None: ...


class _Channel:
    def __init__(self, address: str, tls: TransportTls | None = None) -> None:
        self.address = address
        if tls is None:
            self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
            )
            options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", tls.server_name)]
            self.channel = grpc.secure_channel(address, credentials, options=options)
        self.stub = pb_grpc.NodeStub(self.channel)
        self.ml_stub = ml_pb_grpc.MlNodeStub(self.channel)
        self.control = control_grpc.ControlStub(self.channel)
        self.keeper: Any = None
        self.calls: set[_Call] = set()  # calls on this channel that are not done
        self.retired = False  # the node left: close once no call owes the node anything

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.cancel()
        self.channel.close()


class _Call:
    """One RPC to a peer and where it stands on its link (simnode/faults.py `CALL_TABLE`).

    It outlives its caller when a black-hole owes the receiver a cancellation."""

    __slots__ = (
        "action",
        "channel",
        "deadline",
        "env",
        "failure",
        "finished",
        "future",
        "metadata",
        "method",
        "node",
        "request",
        "state",
    )

    def __init__(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        metadata: list[tuple[str, str]],
        deadline: float,
        env: Envelope,
        channel: _Channel,
    ) -> None:
        self.node = node
        self.method = method
        self.action = ACTION_OF_METHOD.get(method, method)
        self.request = request
        self.metadata = metadata
        self.deadline = deadline
        self.env = env
        self.channel = channel
        self.state = CallState.QUEUED
        self.future: Any = None
        self.finished = trio.Event()
        self.failure: OpenSearchError | None = None


class GrpcTransport:
    """The gRPC `Transport`. One channel per node address; call from the trio thread only."""

    def __init__(
        self,
        *,
        keepers: bool = False,
        tls: TransportTls | None = None,
        faults: FaultTable | None = None,
    ) -> None:
        self._tls = tls
        self._channels: dict[str, _Channel] = {}
        self._retired: list[_Channel] = []
        self._calls: dict[str, set[_Call]] = {}  # by node id: calls not done yet
        self._control_channels: dict[str, _Channel] = {}
        self._request_ids = itertools.count(1)
        self._keepers = keepers
        self.faults = faults if faults is not None else FaultTable()
        self.faults.on_change(self._rules_changed)

    def next_request_id(self) -> int:
        """A fresh transport request id (also for requests sent through the local shortcut)."""
        return next(self._request_ids)

    def _channel(self, node: DiscoveryNode) -> _Channel:
        address = node.transport_address
        ch = self._channels.get(node.id)
        if ch is None or ch.address != address:
            if ch is not None:
                self._retire(ch)
            ch = _Channel(address, self._tls)
            if self._keepers:
                ch.keeper = ch.stub.Watch(pb.Empty())
            self._channels[node.id] = ch
        return ch

    def _retire(self, ch: _Channel) -> None:
        if ch.calls:
            ch.retired = True
            self._retired.append(ch)
        else:
            ch.close()

    async def call(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
        metadata: list[tuple[str, str]] | None = None,
    ) -> Any:
        action = ACTION_OF_METHOD.get(method, method)
        request_id = self.next_request_id()
        started = trio.current_time()
        deadline = math.inf if timeout is None else started + timeout

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
        if decision.verdict is Verdict.FAIL:
            raise simulated_disconnect(node)
        meta = [
            *(metadata or ()),
            (FROM_METADATA_KEY, self.faults.local),
            (SEQ_METADATA_KEY, str(env.seq)),
        ]
        ch = self._channel(node)
        call = _Call(node, method, request, meta, deadline, env, ch)
        call.state, effects = start_call(decision.verdict)
        ch.calls.add(call)
        self._calls.setdefault(node.id, set()).add(call)
        self._apply(call, effects)
        try:
            with trio.move_on_at(deadline):
                await call.finished.wait()
        except BaseException:
            self._event(call, LinkEvent.GIVE_UP)
            raise
        if not call.finished.is_set():
            self._event(call, LinkEvent.GIVE_UP)
            raise timed_out()
        if call.failure is not None:
            raise call.failure
        try:
            return call.future.result()
        except grpc.RpcError as e:
            elapsed_ms = int((trio.current_time() - started) * 1000)
            raise self._translate(e, node, action, request_id, elapsed_ms) from None

    # -- what the call state table says to do (trio thread) --------------------------------------

    def _event(self, call: _Call, event: LinkEvent) -> None:
        if call.state is CallState.DONE:
            return
        call.state, effects = step(call.state, event)
        self._apply(call, effects)
        if call.state is CallState.DONE:
            self._forget(call)

    def _apply(self, call: _Call, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            if effect is Effect.SEND:
                self._send(call)
            elif effect is Effect.CANCEL_RPC:
                if call.future is not None:
                    call.future.cancel()
            elif effect is Effect.DELIVER:
                call.finished.set()
            elif effect is Effect.FAIL_CALLER and not call.finished.is_set():
                call.failure = node_disconnected(call.node, call.action)
                call.finished.set()

    def _send(self, call: _Call) -> None:
        remaining = call.deadline - trio.current_time()
        # A deadline gRPC cannot represent (past int64 nanoseconds since the epoch, e.g.
        # `timeout=100000d`) would expire at once: none instead; trio's deadline still ends it.
        timeout = None if remaining > MAX_GRPC_TIMEOUT else max(remaining, 0.001)
        stub = call.channel.ml_stub if call.method in ML_ACTION_OF_METHOD else call.channel.stub
        multicallable: Any = getattr(stub, call.method)
        call.future = multicallable.future(call.request, timeout=timeout, metadata=call.metadata)
        token = trio.lowlevel.current_trio_token()

        def _on_done(_f: object) -> None:
            try:
                token.run_sync_soon(self._event, call, LinkEvent.RESPONSE)
            except trio.RunFinishedError:
                pass

        call.future.add_done_callback(_on_done)

    def _forget(self, call: _Call) -> None:
        calls = self._calls.get(call.node.id)
        if calls is not None:
            calls.discard(call)
        ch = call.channel
        ch.calls.discard(call)
        if ch.retired and not ch.calls and ch in self._retired:
            self._retired.remove(ch)
            ch.close()

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

    def held_calls(self) -> int:
        """Calls a fault holds or owes (queued, clogged, lost, muted): for tests and inspection."""
        return sum(
            1
            for calls in self._calls.values()
            for call in calls
            if call.state not in (CallState.OPEN, CallState.DONE)
        )

    # -- the control channel (never faulted) -----------------------------------------------------

    async def call_control(
        self, node: DiscoveryNode, method: str, request: Message, *, timeout: float
    ) -> Any:
        """A call on the control channel: no fault rule applies; errors as for `call`."""
        address = node.transport_address
        ch = self._control_channels.get(address)
        if ch is None:
            ch = self._control_channels[address] = _Channel(address, self._tls)
        future = getattr(ch.control, method).future(request, timeout=timeout, wait_for_ready=True)
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def _on_done(_f: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(_on_done)
        started = trio.current_time()
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        try:
            return future.result()
        except grpc.RpcError as e:
            elapsed_ms = int((trio.current_time() - started) * 1000)
            action = f"internal:tasksim/control/{method}"
            raise self._translate(e, node, action, 0, elapsed_ms) from None

    @staticmethod
    def _translate(
        e: grpc.RpcError, node: DiscoveryNode, action: str, request_id: int, elapsed_ms: int
    ) -> OpenSearchError:
        call: Any = e
        code = call.code()
        for key, value in call.trailing_metadata() or ():
            if key == ERROR_METADATA_KEY:
                msg = pb.ErrorCause()
                msg.ParseFromString(value)
                return error_from_pb(msg)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return receive_timeout(node, action, request_id, elapsed_ms)
        if code == grpc.StatusCode.UNAVAILABLE:
            details = (call.details() or "").lower()
            # Not "connect" alone: "Connection reset by peer" is a dropped connection, not a
            # connection that could not be made.
            if "failed to connect" in details or "refused" in details or "no address" in details:
                return node_not_connected(node)
            return node_disconnected(node, action)
        return TransportError(
            f"[{node.name}][{node.transport_address}][{action}] {code.name}: {call.details()}"
        )

    def node_left(self, node_id: str) -> None:
        """The node left the cluster: every call waiting on it fails with node_disconnected.

        The connection closes — unless a black-hole still holds a cancellation for the node: then
        it closes once the link heals and the cancellation got through."""
        for call in list(self._calls.get(node_id, ())):
            if not call.finished.is_set():
                call.failure = node_disconnected(call.node, call.action)
                call.finished.set()
            self._event(call, LinkEvent.GIVE_UP)
        ch = self._channels.pop(node_id, None)
        if ch is not None:
            self._retire(ch)

    def close(self) -> None:
        for ch in [*self._channels.values(), *self._retired, *self._control_channels.values()]:
            ch.close()
        self._channels.clear()
        self._retired.clear()
        self._control_channels.clear()
