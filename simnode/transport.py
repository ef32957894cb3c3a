"""The gRPC transport: how one tasksim process calls another over the network.

The caller's side of a call — fault decisions, deadlines, the call's state on a faulty link and the
OpenSearch transport errors — is the call driver shared by every transport (simnode/driver.py).
This module only carries its effects over gRPC and translates what gRPC reports:

- the remote handler raised → that error itself (OpenSearch unwraps `RemoteTransportException`),
  carried in the trailing metadata (`tasksim-error-bin`);
- DEADLINE_EXCEEDED → `receive_timeout_transport_exception`;
- the connection dropped under an in-flight request → `node_disconnected_exception`;
- nothing listens at the node's address → `node_not_connected_exception`.

The gRPC bridge is the one measured in python-stack.md §1: `stub.M.future()` + a done-callback that
wakes trio through `run_sync_soon`; trio cancellation cancels the RPC (the server sees it). A
long-lived `Watch` call per channel ("keeper") keeps grpcio's channel-spin thread from being started
on every fan-out. grpc is imported only here and in server.py (DESIGN.md rule 3). The caller's name
and the call's sequence number travel in the metadata, so the callee's interceptor (server.py)
decides on the same envelope. `call_control` is the control channel: it never consults the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import trio
from google.protobuf.message import Message

from simnode._wire import control_pb2_grpc as control_grpc
from simnode._wire import ml_pb2_grpc as ml_pb_grpc
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from simnode.discovery import DiscoveryNode
from simnode.driver import (
    ACTION_OF_METHOD,
    ML_ACTION_OF_METHOD,
    Call,
    CallDriver,
    NodeNotConnectedError,
    Transport,
    node_disconnected,
    node_not_connected,
    receive_timeout,
    simulated_disconnect,
)
from simnode.errors import OpenSearchError, TransportError
from simnode.faults import FaultTable, LinkEvent
from simnode.wire import error_from_pb

__all__ = [
    "ACTION_OF_METHOD",
    "ML_ACTION_OF_METHOD",
    "GrpcTransport",
    "NodeNotConnectedError",
    "Transport",
    "TransportTls",
    "node_disconnected",
    "node_not_connected",
    "receive_timeout",
    "simulated_disconnect",
]

ERROR_METADATA_KEY = "tasksim-error-bin"
# Who calls, and the call's sequence number on that link: the callee's fault envelope.
FROM_METADATA_KEY = "tasksim-from"
SEQ_METADATA_KEY = "tasksim-seq"

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
        self.calls: dict[Call, None] = {}  # calls on this channel that are not done
        self.retired = False  # the node left: close once no call owes the node anything

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.cancel()
        self.channel.close()


class GrpcTransport(CallDriver):
    """The gRPC `Transport`. One channel per node address; call from the trio thread only."""

    def __init__(
        self,
        *,
        keepers: bool = False,
        tls: TransportTls | None = None,
        faults: FaultTable | None = None,
    ) -> None:
        super().__init__(faults)
        self._tls = tls
        self._channels: dict[str, _Channel] = {}
        self._retired: list[_Channel] = []
        self._control_channels: dict[str, _Channel] = {}
        self._keepers = keepers

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

    # -- the call driver's hooks -----------------------------------------------------------------

    def _open(self, call: Call) -> None:
        ch = self._channel(call.node)
        ch.calls[call] = None
        call.link = ch

    def _send(self, call: Call) -> None:
        ch: _Channel = call.link
        remaining = call.deadline - trio.current_time()
        timeout = None if math.isinf(remaining) else max(remaining, 0.001)
        stub = ch.ml_stub if call.method in ML_ACTION_OF_METHOD else ch.stub
        multicallable: Any = getattr(stub, call.method)
        metadata = [
            (FROM_METADATA_KEY, self.faults.local),
            (SEQ_METADATA_KEY, str(call.env.seq)),
        ]
        call.outcome = multicallable.future(call.request, timeout=timeout, metadata=metadata)
        token = trio.lowlevel.current_trio_token()

        def _on_done(_f: object) -> None:
            try:
                token.run_sync_soon(self._event, call, LinkEvent.RESPONSE)
            except trio.RunFinishedError:
                pass

        call.outcome.add_done_callback(_on_done)

    def _cancel(self, call: Call) -> None:
        if call.outcome is not None:
            call.outcome.cancel()

    def _finish(self, call: Call) -> Any:
        try:
            return call.outcome.result()
        except grpc.RpcError as e:
            raise self._translate(
                e, call.node, call.action, call.request_id, call.elapsed_ms()
            ) from None

    def _forgotten(self, call: Call) -> None:
        ch: _Channel = call.link
        ch.calls.pop(call, None)
        if ch.retired and not ch.calls and ch in self._retired:
            self._retired.remove(ch)
            ch.close()

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

    def control_stream(self, node: DiscoveryNode, method: str, request: Message) -> Any:
        """A server-streaming call on the control channel (never faulted): a blocking iterator of
        messages, for a worker thread; `.cancel()` ends it."""
        address = node.transport_address
        ch = self._control_channels.get(address)
        if ch is None:
            ch = self._control_channels[address] = _Channel(address, self._tls)
        return getattr(ch.control, method)(request, wait_for_ready=True)

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
        super().node_left(node_id)
        ch = self._channels.pop(node_id, None)
        if ch is not None:
            self._retire(ch)

    def close(self) -> None:
        for ch in [*self._channels.values(), *self._retired, *self._control_channels.values()]:
            ch.close()
        self._channels.clear()
        self._retired.clear()
        self._control_channels.clear()
