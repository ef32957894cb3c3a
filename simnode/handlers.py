"""The callee's side of every call: a node's method → handler table and the rules a callee applies
before its handler runs. The gRPC server (simnode/server.py) and the simulation engine's in-memory
links (simnode/sim/network.py) both serve calls through `serve`, so a node answers alike on both.

What a callee does, in order:
1. a `slow` fault rule decided on the callee's side (`Side.SERVER`, simnode/faults.py) makes the node
   wait before the handler runs (the caller's deadline and cancellation still apply);
2. the handler runs. For most methods the caller going away (its deadline, its cancellation, its
   death) cancels the handler. `RunTask` is different on purpose: a child task is not killed when
   its caller goes away, it is *cancelled* the OpenSearch way ("channel was closed") and reacts as
   its spec says — the link switches to that mode through `CalleeLink.channel_closed`.

Handlers take and return protobuf messages; an `OpenSearchError` they raise is the call's answer.
Runs on the node's trio loop; no grpc here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio
from google.protobuf.message import Message

from simnode._wire import node_pb2 as pb
from simnode.discovery import ClusterState
from simnode.faults import Envelope, FaultTable, Side, Verdict
from simnode.ml import MlWorker
from simnode.node import Node
from simnode.wire import cluster_state_from_pb


class CalleeLink(Protocol):
    """How the callee learns that its caller went away."""

    def channel_closed(self) -> trio.Event:
        """From now on, the caller going away does not cancel the handler: it sets this event."""
        ...


class _LastState:
    """The sim engine hands one publication's message object to every node: decode it once (a
    `ClusterState` is immutable, so the nodes may share it). Over gRPC every message is new and
    this never hits."""

    message: Any = None
    state: ClusterState | None = None

    @classmethod
    def decode(cls, message: Any) -> ClusterState:
        if cls.state is None or message is not cls.message:
            cls.message, cls.state = message, cluster_state_from_pb(message)
        return cls.state


async def _set_cluster_state(node: Node, req: Any) -> Message:
    node.set_cluster_state(_LastState.decode(req))
    return pb.Empty()


async def _start_task(node: Node, req: Any) -> Message:
    return node.start_task(req)


async def _status(node: Node, req: Any) -> Message:
    return node.status()


Handler = Callable[[Node, Any], Awaitable[Message]]

# Every method of the `Node` and `MlNode` services but `RunTask` (see `serve`) and `Watch` (the
# gRPC transport's keeper stream, not a node operation).
HANDLERS: dict[str, Handler] = {
    "ListTasks": lambda node, req: node.list_tasks(req, local=False),
    "CancelTasks": lambda node, req: node.cancel_tasks(req, local=False),
    "GetTask": lambda node, req: node.get_task(req, local=False),
    "BanParent": lambda node, req: node.ban_parent(req, local=False),
    "StoreResult": lambda node, req: node.store_result(req, local=False),
    "Rethrottle": lambda node, req: node.rethrottle(req, local=False),
    "StartTask": _start_task,
    "SetClusterState": _set_cluster_state,
    "Status": _status,
    "DeployModel": lambda node, req: MlWorker.of(node).deploy_model(req, local=False),
    "UndeployModel": lambda node, req: MlWorker.of(node).undeploy_model(req, local=False),
    "RegisterModel": lambda node, req: MlWorker.of(node).register_model(req, local=False),
    "TrainModel": lambda node, req: MlWorker.of(node).train_model(req, local=False),
    "SyncUp": lambda node, req: MlWorker.of(node).sync_up(req, local=False),
}
METHODS = frozenset({*HANDLERS, "RunTask"})


async def serve(
    node: Node,
    faults: FaultTable,
    method: str,
    request: Any,
    *,
    src: str,
    seq: int,
    link: CalleeLink,
) -> Message:
    """Serve one call from `src` (its sequence number `seq` on that link) on `node`."""
    if src and faults.rules:
        decision = faults.decide(Envelope(src, faults.local, method, seq, Side.SERVER))
        if decision.verdict is Verdict.DELAY:
            await trio.sleep(decision.delay)  # a slow node
    if method == "RunTask":
        closed = link.channel_closed()
        return await node.run_task(request, local=False, channel_closed=closed)
    return await HANDLERS[method](node, request)
