"""The gRPC server of a node: grpcio worker threads hop into the trio loop that owns the node.

The bridge is the one python-stack.md §1 measured: a sync `grpc.server` whose handlers call
`trio.from_thread.run(...)`. The RPC's deadline becomes the trio cancel scope's deadline, and the
RPC's termination (client cancel, client death, deadline) cancels the scope through
`run_sync_soon`. `RunTask` is different on purpose: when its caller goes away the child task is not
killed but *cancelled* the OpenSearch way ("channel was closed"), and reacts as its spec says.

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

import math
import threading
from collections.abc import Awaitable, Callable, Iterator
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
from simnode.faults import Envelope, FaultTable, Side, Verdict
from simnode.ml import MlWorker
from simnode.node import Node
from simnode.transport import (
    ERROR_METADATA_KEY,
    FROM_METADATA_KEY,
    SEQ_METADATA_KEY,
    TransportTls,
)
from simnode.wire import cluster_state_from_pb, error_to_pb

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


class _CallState:
    """Trio-side state of one RPC; touched only on the trio thread, except `answered`: set by the
    handler thread once the trio side returned, so that the termination callback of a call that was
    answered normally costs no trip into the loop (nothing is left there to cancel)."""

    def __init__(self) -> None:
        self.answered = False
        self.terminated = False
        self.scope: trio.CancelScope | None = None
        self.closed: trio.Event | None = None

    def terminate(self) -> None:
        self.terminated = True
        if self.scope is not None:
            self.scope.cancel()
        if self.closed is not None:
            self.closed.set()


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(
        self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable | None = None
    ) -> None:
        self.node = node
        self.token = token
        self.faults = faults if faults is not None else node.transport.faults

    def _bridge(
        self,
        context: grpc.ServicerContext,
        fn: Callable[[_CallState], Awaitable[T]],
    ) -> T:
        state = _CallState()
        token = self.token

        def on_terminated() -> None:
            if state.answered:
                return
            try:
                token.run_sync_soon(state.terminate)
            except trio.RunFinishedError:
                pass

        context.add_callback(on_terminated)
        remaining = context.time_remaining()
        served = getattr(_serving, "envelope", None)
        _serving.envelope = None
        faults = self.faults

        async def runner() -> tuple[bool, T | None]:
            with trio.CancelScope() as scope:
                if remaining is not None:
                    scope.deadline = trio.current_time() + remaining
                state.scope = scope
                if state.terminated:
                    scope.cancel()
                if served is not None and faults.rules:
                    src, method, seq = served
                    env = Envelope(src, faults.local, method, seq, Side.SERVER)
                    decision = faults.decide(env)
                    if decision.verdict is Verdict.DELAY:
                        await trio.sleep(decision.delay)  # a slow node
                return True, await fn(state)
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
        return result  # type: ignore[return-value]

    def ListTasks(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, lambda _s: self.node.list_tasks(request, local=False))

    def CancelTasks(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, lambda _s: self.node.cancel_tasks(request, local=False))

    def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.ServicerContext
    ) -> pb.GetTaskResponse:
        return self._bridge(context, lambda _s: self.node.get_task(request, local=False))

    def BanParent(self, request: pb.BanParentRequest, context: grpc.ServicerContext) -> pb.Empty:
        return self._bridge(context, lambda _s: self.node.ban_parent(request, local=False))

    def StoreResult(
        self, request: pb.StoreResultRequest, context: grpc.ServicerContext
    ) -> pb.Empty:
        return self._bridge(context, lambda _s: self.node.store_result(request, local=False))

    def Rethrottle(
        self, request: pb.TasksRequest, context: grpc.ServicerContext
    ) -> pb.TasksResponse:
        return self._bridge(context, lambda _s: self.node.rethrottle(request, local=False))

    def RunTask(
        self, request: pb.RunTaskRequest, context: grpc.ServicerContext
    ) -> pb.RunTaskResponse:
        async def run(state: _CallState) -> pb.RunTaskResponse:
            # The child is not killed when its caller goes away: it is cancelled, OpenSearch's way.
            assert state.scope is not None
            state.scope.deadline = math.inf
            state.scope = None
            state.closed = trio.Event()
            if state.terminated:
                state.closed.set()
            return await self.node.run_task(request, local=False, channel_closed=state.closed)

        return self._bridge(context, run)

    def StartTask(
        self, request: pb.RunTaskRequest, context: grpc.ServicerContext
    ) -> pb.StartTaskResponse:
        async def start(_s: _CallState) -> pb.StartTaskResponse:
            return self.node.start_task(request)

        return self._bridge(context, start)

    def SetClusterState(self, request: pb.ClusterState, context: grpc.ServicerContext) -> pb.Empty:
        async def apply(_s: _CallState) -> pb.Empty:
            self.node.set_cluster_state(cluster_state_from_pb(request))
            return pb.Empty()

        return self._bridge(context, apply)

    def Status(self, request: pb.Empty, context: grpc.ServicerContext) -> pb.NodeStatus:
        async def status(_s: _CallState) -> pb.NodeStatus:
            return self.node.status()

        return self._bridge(context, status)

    def Watch(self, request: pb.Empty, context: grpc.ServicerContext) -> Iterator[pb.WatchEvent]:
        done = threading.Event()
        context.add_callback(done.set)
        done.wait()
        return iter(())


class ControlServicer(control_grpc.ControlServicer):
    """The control channel: install fault rules, read the node's ground truth. Never faulted."""

    def __init__(self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable) -> None:
        self.node = node
        self.token = token
        self.faults = faults

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
        return self._on_trio(
            context, lambda: inspection(self.node, self.faults, tasks=request.tasks)
        )


class MlNodeServicer(ml_pb_grpc.MlNodeServicer):
    """`MlNode`: the node's ML work (simnode/ml.py), over the same trio bridge as `Node`."""

    def __init__(
        self, node: Node, token: trio.lowlevel.TrioToken, faults: FaultTable | None = None
    ) -> None:
        self._core = NodeServicer(node, token, faults)
        self.worker = MlWorker.of(node)

    def DeployModel(
        self, request: mlpb.DeployModelRequest, context: grpc.ServicerContext
    ) -> mlpb.DeployModelResponse:
        return self._core._bridge(
            context, lambda _s: self.worker.deploy_model(request, local=False)
        )

    def UndeployModel(
        self, request: mlpb.UndeployModelRequest, context: grpc.ServicerContext
    ) -> mlpb.UndeployModelResponse:
        return self._core._bridge(
            context, lambda _s: self.worker.undeploy_model(request, local=False)
        )

    def RegisterModel(
        self, request: mlpb.RegisterModelRequest, context: grpc.ServicerContext
    ) -> mlpb.RegisterModelResponse:
        return self._core._bridge(
            context, lambda _s: self.worker.register_model(request, local=False)
        )

    def TrainModel(
        self, request: mlpb.TrainModelRequest, context: grpc.ServicerContext
    ) -> mlpb.TrainModelResponse:
        return self._core._bridge(context, lambda _s: self.worker.train_model(request, local=False))

    def SyncUp(
        self, request: mlpb.SyncUpRequest, context: grpc.ServicerContext
    ) -> mlpb.SyncUpResponse:
        return self._core._bridge(context, lambda _s: self.worker.sync_up(request, local=False))


class NodeServer:
    """A grpc server for one `Node`: bind first (the node's address needs the port), then start."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        tls: TransportTls | None = None,
    ):
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-node"),
            options=SERVER_OPTIONS,
            interceptors=[_FaultInterceptor()],
        )
        try:
            if tls is None:
                self.port = self._server.add_insecure_port(f"{host}:{port}")
            else:  # mutual TLS: a peer without a certificate we trust is refused
                credentials = grpc.ssl_server_credentials(
                    [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True
                )
                self.port = self._server.add_secure_port(f"{host}:{port}", credentials)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot bind the transport port {host}:{port} (address in use?)")

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
