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
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import trio
from google.protobuf.message import Message

from simnode._wire import ml_pb2_grpc as ml_pb_grpc
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from simnode.discovery import DiscoveryNode
from simnode.errors import (
    NodeDisconnectedError,
    OpenSearchError,
    ReceiveTimeoutTransportError,
    TransportError,
)
from simnode.wire import error_from_pb

ERROR_METADATA_KEY = "tasksim-error-bin"

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


class Transport(Protocol):
    async def call(
        self,
        node: DiscoveryNode,
        method: str,
        request: Message,
        *,
        timeout: float | None = None,
    ) -> Any: ...

    def node_left(self, node_id: str) -> None: ...


class _Pending:
    """An in-flight call, so that a node leaving the cluster can fail it."""

    __slots__ = ("event", "future", "left")

    def __init__(self, future: Any, event: trio.Event) -> None:
        self.future = future
        self.event = event
        self.left = False


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
        self.keeper: Any = None

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.cancel()
        self.channel.close()


class GrpcTransport:
    """The gRPC `Transport`. One channel per node address; call from the trio thread only."""

    def __init__(self, *, keepers: bool = False, tls: TransportTls | None = None) -> None:
        self._tls = tls
        self._channels: dict[str, _Channel] = {}
        self._pending: dict[str, set[_Pending]] = {}
        self._request_ids = itertools.count(1)
        self._keepers = keepers

    def next_request_id(self) -> int:
        """A fresh transport request id (also for requests sent through the local shortcut)."""
        return next(self._request_ids)

    def _channel(self, node: DiscoveryNode) -> _Channel:
        address = node.transport_address
        ch = self._channels.get(node.id)
        if ch is None or ch.address != address:
            if ch is not None:
                ch.close()
            ch = _Channel(address, self._tls)
            if self._keepers:
                ch.keeper = ch.stub.Watch(pb.Empty())
            self._channels[node.id] = ch
        return ch

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
        channel = self._channel(node)
        stub = channel.ml_stub if method in ML_ACTION_OF_METHOD else channel.stub
        multicallable: Any = getattr(stub, method)
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        started = trio.current_time()
        future = multicallable.future(request, timeout=timeout, metadata=metadata)
        pending = _Pending(future, done)
        self._pending.setdefault(node.id, set()).add(pending)

        def _on_done(_f: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(_on_done)
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        finally:
            self._pending[node.id].discard(pending)
        if pending.left:
            raise node_disconnected(node, action)
        try:
            return future.result()
        except grpc.RpcError as e:
            elapsed_ms = int((trio.current_time() - started) * 1000)
            raise self._translate(e, node, action, request_id, elapsed_ms) from None

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
        """The node left the cluster: every call waiting on it fails with node_disconnected."""
        for pending in list(self._pending.get(node_id, ())):
            pending.left = True
            pending.future.cancel()
            pending.event.set()
        ch = self._channels.pop(node_id, None)
        if ch is not None:
            ch.close()

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
