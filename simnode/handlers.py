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

A node calling itself takes the loopback link (`loopback`, through `Node.send`): the same handlers
with `local=True`, no faults, the caller's timeout.

Handlers take and return protobuf messages; an `OpenSearchError` they raise is the call's answer.
Runs on the node's trio loop; no grpc here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from google.protobuf.message import Message

from simnode._wire import node_pb2 as pb
from simnode.driver import ACTION_OF_METHOD, receive_timeout
from simnode.faults import Envelope, FaultTable, Side, Verdict
from simnode.ml import MlWorker
from simnode.node import Node
from simnode.wire import cluster_state_from_pb


class CalleeLink:
    """How the callee learns that its caller went away (its deadline, its cancellation, its
    death), for one call, on any transport: `caller_gone()` cancels the handler's `scope` — or,
    once the handler asked for `channel_closed()`, sets that event instead. Touched on the node's
    trio loop only."""

    def __init__(self) -> None:
        self.gone = False
        self.scope: trio.CancelScope | None = None
        self.closed: trio.Event | None = None

    def caller_gone(self) -> None:
        self.gone = True
        if self.scope is not None:
            self.scope.cancel()
        if self.closed is not None:
            self.closed.set()

    def channel_closed(self) -> trio.Event:
        """From now on, the caller going away does not cancel the handler: it sets this event."""
        assert self.scope is not None
        self.scope.deadline = math.inf
        self.scope = None
        self.closed = trio.Event()
        if self.gone:
            self.closed.set()
        return self.closed


# The last cluster state message decoded, and what it decoded to. The in-memory links of the sim
# engine deliver the one message a publication builds to every node: decoding it once, not once per
# node, keeps a publication to N nodes O(N) instead of O(N²). (ClusterState is immutable; a gRPC
# server gets a new message object per call, so there the cache never hits.)
_decoded: list[Any] = [None, None]


async def _set_cluster_state(node: Node, req: Any) -> Message:
    if _decoded[0] is not req:
        _decoded[0], _decoded[1] = req, cluster_state_from_pb(req)
    node.set_cluster_state(_decoded[1])
    return pb.Empty()


async def _start_task(node: Node, req: Any) -> Message:
    return node.start_task(req)


async def _status(node: Node, req: Any) -> Message:
    return node.status()


Handler = Callable[[Node, Any], Awaitable[Message]]


def _table(*, local: bool) -> dict[str, Handler]:
    """Every method a node serves, for calls over the transport (`local=False`: `transport`
    tasks) or through the loopback link (`local=True`: `direct` tasks)."""

    def ml(part: str) -> Handler:
        return lambda node, req: getattr(MlWorker.of(node), part)(req, local=local)

    return {
        "ListTasks": lambda node, req: node.list_tasks(req, local=local),
        "CancelTasks": lambda node, req: node.cancel_tasks(req, local=local),
        "GetTask": lambda node, req: node.get_task(req, local=local),
        "BanParent": lambda node, req: node.ban_parent(req, local=local),
        "StoreResult": lambda node, req: node.store_result(req, local=local),
        "Rethrottle": lambda node, req: node.rethrottle(req, local=local),
        "StartTask": _start_task,
        "Status": _status,
        "DeployModel": ml("deploy_model"),
        "UndeployModel": ml("undeploy_model"),
        "RegisterModel": ml("register_model"),
        "TrainModel": ml("train_model"),
        "SyncUp": ml("sync_up"),
    }


# Over the transport: every method of the `Node` and `MlNode` services but `RunTask` (see `serve`:
# its caller going away is a "channel closed", not a cancellation) and `Watch` (the gRPC
# transport's keeper stream, not a node operation); the cluster state is published to peers only.
HANDLERS: dict[str, Handler] = {**_table(local=False), "SetClusterState": _set_cluster_state}
METHODS = frozenset({*HANDLERS, "RunTask"})

# The loopback link: a node calling itself. As in OpenSearch's `TransportService.sendLocalRequest`
# the request never touches a connection — no fault rule applies, no callee rule — and the tasks it
# registers are `direct`, not `transport`.
LOOPBACK: dict[str, Handler] = {
    **_table(local=True),
    "RunTask": lambda node, req: node.run_task(req, local=True),
}


async def loopback(node: Node, method: str, request: Any, *, timeout: float | None) -> Message:
    """`node` calls itself: the handler at once, under the same timeout a peer's call would have
    (`receive_timeout_transport_exception` when it passes)."""
    request_id = node.transport.next_request_id()
    started = trio.current_time()
    with trio.move_on_after(math.inf if timeout is None else timeout):
        return await LOOPBACK[method](node, request)
    elapsed_ms = int((trio.current_time() - started) * 1000)
    raise receive_timeout(node.local, ACTION_OF_METHOD[method], request_id, elapsed_ms)


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
