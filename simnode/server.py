"""The gRPC server of a node: grpcio worker threads hop into the trio loop that owns the node.

The bridge is the one python-stack.md §1 measured: a sync `grpc.server` whose handlers call
`trio.from_thread.run(...)`. The RPC's deadline becomes the trio cancel scope's deadline, and the
RPC's termination (client cancel, client death, deadline) cancels the scope through
`run_sync_soon`. What the node does with a call — the slow-node rule, the handler table, `RunTask`'s
"channel was closed" — is simnode/handlers.py's `serve`, shared with the simulation engine.

An `OpenSearchError` raised by the node travels back in the trailing metadata
(`tasksim-error-bin`, an `ErrorCause`), so the caller re-raises the same error.

Never call `server.stop()` on the trio thread: handlers blocked in `from_thread.run` wait for
that very loop. `NodeServer.stop()` does it from a worker thread.

Faults: `_FaultInterceptor` is the callee's interceptor. It hands each `Node` (and `MlNode`) call's
envelope (caller, method, sequence number from the metadata) to `_bridge`, which asks the process's
`FaultTable` on the trio thread: a slow node waits there before the handler runs (the caller's
deadline and cancellation still apply). The `Control` service (simnode/control.py) is served by the
same server and is never intercepted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import trio

from simnode._wire import control_pb2 as cpb
from simnode._wire import control_pb2_grpc as control_grpc
from simnode._wire import ml_pb2 as mlpb
from simnode._wire import ml_pb2_grpc as ml_pb_grpc
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from simnode.control import inspection, rule_set_from_pb, rule_set_to_pb
from simnode.errors import OpenSearchError, first_leaf, internal_error
from simnode.faults import FaultTable
from simnode.handlers import CalleeLink, serve
from simnode.history import Event, attach, registry_listener
from simnode.node import Node
from simnode.transport import (
    ERROR_METADATA_KEY,
    FROM_METADATA_KEY,
    SEQ_METADATA_KEY,
    TransportTls,
)
from simnode.wire import error_to_pb

T = TypeVar("T")

SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),  # two servers must never share a port silently
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
]
# Each in-flight RunTask (a child task on this node) and each keeper stream pins one worker.
DEFAULT_MAX_WORKERS = 512
# The services whose calls faults may touch (the `Control` service never).
FAULTED_SERVICES = ("/tasksim.v1.Node/", "/tasksim.v1.MlNode/")

# How long a history stream waits for a node's next event before it looks whether its caller is
# still there.
EVENTS_POLL = 0.5
# How long it gathers more events after the first before it ships them (few large batches).
EVENTS_LINGER = 0.05

# The envelope of the call the current grpc worker thread is serving (set by the interceptor
# right before the handler runs in the same thread, read once by `_bridge`).
_serving = threading.local()


class _FaultInterceptor(grpc.ServerInterceptor):
    """Wraps every unary `Node`/`MlNode` handler so that `_bridge` knows who calls and which call
    it is."""

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        name: str = handler_call_details.method or ""
        prefix = next((p for p in FAULTED_SERVICES if name.startswith(p)), None)
        if handler is None or handler.unary_unary is None or prefix is None:
            return handler
        method = name[len(prefix) :]
        meta = dict(handler_call_details.invocation_metadata or ())
        src = str(meta.get(FROM_METADATA_KEY, ""))
        try:
            seq = int(meta.get(SEQ_METADATA_KEY, 0))
        except ValueError:
            seq = 0
        behavior = handler.unary_unary

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            _serving.envelope = (src, method, seq)
            try:
                return behavior(request, context)
            finally:
                _serving.envelope = None

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _CallState(CalleeLink):
    """One RPC's callee link (simnode/handlers.py), touched only on the trio thread, except
    `answered`: set by the handler thread once the trio side returned, so that the termination
    callback of a call that was answered normally costs no trip into the loop (nothing is left
    there to cancel). Termination (client cancel, client death, deadline) is `caller_gone`."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = False


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(
        self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable | None = None
    ) -> None:
        self.node = node
        self.token = token
        self.faults = faults if faults is not None else node.transport.faults

    def _bridge(self, context: grpc.ServicerContext, method: str, request: Any) -> Any:
        state = _CallState()
        token = self.token

        def on_terminated() -> None:
            if state.answered:
                return
            try:
                token.run_sync_soon(state.caller_gone)
            except trio.RunFinishedError:
                pass

        context.add_callback(on_terminated)
        remaining = context.time_remaining()
        served = getattr(_serving, "envelope", None)
        _serving.envelope = None
        src, seq = ("", 0) if served is None else (served[0], served[2])

        async def runner() -> tuple[bool, Any]:
            with trio.CancelScope() as scope:
                if remaining is not None:
                    scope.deadline = trio.current_time() + remaining
                state.scope = scope
                if state.gone:
                    scope.cancel()
                answer = await serve(
                    self.node, self.faults, method, request, src=src, seq=seq, link=state
                )
                return True, answer
            return False, None

        try:
            try:
                ok, result = trio.from_thread.run(runner, trio_token=token)
            finally:
                state.answered = True
        except trio.RunFinishedError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "node shutting down")
        except Exception as e:  # an OpenSearchError, or a bug: the caller gets a 500 `exception`
            err = internal_error(e)  # an OpenSearchError (also inside a group) stays itself
            if not isinstance(first_leaf(e), OpenSearchError):
                self.node.log_bug(e, "a request")
            context.set_trailing_metadata(
                ((ERROR_METADATA_KEY, error_to_pb(err).SerializeToString()),)
            )
            context.abort(grpc.StatusCode.UNKNOWN, f"{err.type}: {err.reason}")
        if not ok:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        return result

    def ListTasks(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, "ListTasks", request)  # type: ignore[no-any-return]

    def CancelTasks(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, "CancelTasks", request)  # type: ignore[no-any-return]

    def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.ServicerContext
    ) -> pb.GetTaskResponse:
        return self._bridge(context, "GetTask", request)  # type: ignore[no-any-return]

    def BanParent(self, request: pb.BanParentRequest, context: grpc.ServicerContext) -> pb.Empty:
        return self._bridge(context, "BanParent", request)  # type: ignore[no-any-return]

    def StoreResult(
        self, request: pb.StoreResultRequest, context: grpc.ServicerContext
    ) -> pb.Empty:
        return self._bridge(context, "StoreResult", request)  # type: ignore[no-any-return]

    def Rethrottle(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, "Rethrottle", request)  # type: ignore[no-any-return]

    def RunTask(
        self, request: pb.RunTaskRequest, context: grpc.ServicerContext
    ) -> pb.RunTaskResponse:
        return self._bridge(context, "RunTask", request)  # type: ignore[no-any-return]

    def StartTask(
        self, request: pb.RunTaskRequest, context: grpc.ServicerContext
    ) -> pb.StartTaskResponse:
        return self._bridge(context, "StartTask", request)  # type: ignore[no-any-return]

    def SetClusterState(self, request: pb.ClusterState, context: grpc.ServicerContext) -> pb.Empty:
        return self._bridge(context, "SetClusterState", request)  # type: ignore[no-any-return]

    def Status(self, request: pb.Empty, context: grpc.ServicerContext) -> pb.NodeStatus:
        return self._bridge(context, "Status", request)  # type: ignore[no-any-return]

    def Watch(self, request: pb.Empty, context: grpc.ServicerContext) -> Iterator[pb.WatchEvent]:
        done = threading.Event()
        context.add_callback(done.set)
        done.wait()
        return iter(())


class NodeEvents:
    """A node's events, numbered from 1, kept until the control channel shipped them.

    The trio thread appends (`record`); a gRPC worker thread takes batches (`take`), waiting for
    new ones. Nothing is recorded until `enable()` (a subscriber arrived), so a node nobody
    records costs nothing. Times are `clock()` on the node (the coordinator rebases them).
    """

    def __init__(self, node: str, clock: Callable[[], float]) -> None:
        self.node = node
        self.clock = clock
        self.enabled = False
        self._events: list[tuple[int, Event]] = []
        self._seq = 0
        self._cond = threading.Condition()

    def enable(self) -> None:
        self.enabled = True

    def record(self, type: str, **fields: Any) -> None:
        if not self.enabled:
            return
        event: Event = {"t": self.clock(), "type": type, "node": self.node, **fields}
        with self._cond:
            self._seq += 1
            event["seq"] = self._seq
            self._events.append((self._seq, event))
            self._cond.notify_all()

    def take(self, after: int, timeout: float, *, linger: float = 0.0) -> list[Event]:
        """The events numbered above `after` (waits up to `timeout` for one, then `linger` more
        seconds for what follows it, so that a busy node ships few large batches); older ones
        are dropped, as the caller acknowledged them by asking for what follows."""
        with self._cond:
            if not self._events or self._events[-1][0] <= after:
                self._cond.wait(timeout)
            fresh = bool(self._events) and self._events[-1][0] > after
        if fresh and linger > 0:
            time.sleep(linger)
        with self._cond:
            self._events = [(s, e) for s, e in self._events if s > after]
            return [e for _, e in self._events]

    @property
    def last_seq(self) -> int:
        return self._seq


class ControlServicer(control_grpc.ControlServicer):
    """The control channel: install fault rules, read the node's ground truth. Never faulted."""

    def __init__(self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable) -> None:
        self.node = node
        self.token = token
        self.faults = faults
        self.events = NodeEvents(node.local.name, time.monotonic)

    def _on_trio(self, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
        try:
            return trio.from_thread.run_sync(fn, trio_token=self.token)
        except trio.RunFinishedError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "node shutting down")
            raise  # unreachable: abort raises

    def SetRules(self, request: cpb.FaultRuleSet, context: grpc.ServicerContext) -> cpb.RulesAck:
        rule_set = rule_set_from_pb(request)

        def install() -> cpb.RulesAck:
            self.faults.install(rule_set)
            return cpb.RulesAck(node=self.faults.local, version=self.faults.version)

        return self._on_trio(context, install)

    def GetRules(
        self, request: cpb.GetRulesRequest, context: grpc.ServicerContext
    ) -> cpb.FaultRuleSet:
        return rule_set_to_pb(self.faults.current)

    def Inspect(self, request: cpb.InspectRequest, context: grpc.ServicerContext) -> cpb.Inspection:
        def inspect() -> cpb.Inspection:
            msg = inspection(self.node, self.faults, tasks=request.tasks)
            msg.events_seq = self.events.last_seq
            return msg

        return self._on_trio(context, inspect)

    def Events(
        self, request: cpb.EventsRequest, context: grpc.ServicerContext
    ) -> Iterator[cpb.EventBatch]:
        """The node's history events as they happen (simnode/history.py `NodeEvents`); the first
        subscriber turns recording on."""
        events = self.events

        def enable() -> None:
            if not events.enabled:
                events.enable()
                attach(self.node, registry_listener(events.record))

        self._on_trio(context, enable)
        after = request.after_seq
        pid = os.getpid()
        while context.is_active():
            batch = events.take(after, EVENTS_POLL, linger=EVENTS_LINGER)
            if not batch:
                continue
            after = batch[-1]["seq"]
            yield cpb.EventBatch(
                node=events.node,
                pid=pid,
                events=[
                    cpb.HistoryEvent(seq=e["seq"], t=e["t"], event_json=json.dumps(e))
                    for e in batch
                ],
            )


class MlNodeServicer(ml_pb_grpc.MlNodeServicer):
    """`MlNode`: the node's ML work (simnode/ml.py), over the same trio bridge as `Node`."""

    def __init__(
        self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable | None = None
    ) -> None:
        self._core = NodeServicer(node, token, faults)

    def DeployModel(
        self, request: mlpb.DeployModelRequest, context: grpc.ServicerContext
    ) -> mlpb.DeployModelResponse:
        return self._core._bridge(context, "DeployModel", request)  # type: ignore[no-any-return]

    def UndeployModel(
        self, request: mlpb.UndeployModelRequest, context: grpc.ServicerContext
    ) -> mlpb.UndeployModelResponse:
        return self._core._bridge(context, "UndeployModel", request)  # type: ignore[no-any-return]

    def RegisterModel(
        self, request: mlpb.RegisterModelRequest, context: grpc.ServicerContext
    ) -> mlpb.RegisterModelResponse:
        return self._core._bridge(context, "RegisterModel", request)  # type: ignore[no-any-return]

    def TrainModel(
        self, request: mlpb.TrainModelRequest, context: grpc.ServicerContext
    ) -> mlpb.TrainModelResponse:
        return self._core._bridge(context, "TrainModel", request)  # type: ignore[no-any-return]

    def SyncUp(
        self, request: mlpb.SyncUpRequest, context: grpc.ServicerContext
    ) -> mlpb.SyncUpResponse:
        return self._core._bridge(context, "SyncUp", request)  # type: ignore[no-any-return]


class NodeServer:
    """A grpc server for one `Node`: bind first (the node's address needs the port), then start."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        tls: TransportTls | None = None,
        also: tuple[str, ...] = (),
    ):
        """`also`: more addresses to serve on, at the same port (a node in a network namespace
        takes the coordinator's control channel on a second address)."""
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-node"),
            options=SERVER_OPTIONS,
            interceptors=[_FaultInterceptor()],
        )
        credentials = (
            None
            if tls is None
            else grpc.ssl_server_credentials(  # mutual TLS: a peer without our CA's cert is refused
                [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True
            )
        )
        self.port = port
        for address in (host, *also):
            try:
                if credentials is None:
                    bound = self._server.add_insecure_port(f"{address}:{self.port}")
                else:
                    bound = self._server.add_secure_port(f"{address}:{self.port}", credentials)
            except RuntimeError:
                bound = 0
            if bound == 0:
                raise OSError(
                    f"cannot bind the transport port {address}:{self.port} (address in use?)"
                )
            self.port = bound

    def start(self, node: Node, token: trio.lowlevel.TrioToken) -> None:
        faults = node.transport.faults
        faults.local = node.local.name
        pb_grpc.add_NodeServicer_to_server(NodeServicer(node, token, faults), self._server)
        ml_pb_grpc.add_MlNodeServicer_to_server(MlNodeServicer(node, token, faults), self._server)
        control_grpc.add_ControlServicer_to_server(
            ControlServicer(node, token, faults), self._server
        )
        self._server.start()

    async def stop(self, grace: float | None = 0.0) -> None:
        event: Any = self._server.stop(grace)
        await trio.to_thread.run_sync(event.wait)
