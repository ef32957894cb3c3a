"""The trio runtime of one node: it owns the registry and runs what the registry describes.

What lives here: the node side of the Tasks API (`cluster:monitor/tasks/lists[n]`,
`cluster:admin/tasks/cancel[n]`, `cluster:monitor/task/get`), simulated task trees whose children run
on peers (a child on another node is a `RunTask` call that answers when the child is done, the way a
transport child request does), and OpenSearch's cancellation service: cancel a task, ban its children
on every node that holds one (`internal:admin/tasks/ban`), recursively, and lift the bans when the
children and the task are gone.

Handlers take and return protobuf messages so that every transport (gRPC today, in-memory later)
carries the same logic. `local=True` means the request came through the loopback link (`send` to
this node itself) and the task type is `direct`; over the transport it is `transport`.

Rules: only the trio loop touches the registry; every background activity runs in `self._nursery`,
started by `spawn`, which contains a bug: any exception that escapes background work (a Python
error, not only an `OpenSearchError`) is logged with its traceback on the node's log (stderr) and
ends that work alone — the nursery, and with it the node, keeps serving. Work that belongs to a task
or a request turns a bug into that task's or request's failure first (a 500 `exception`,
`simnode.errors.internal_error`). Time comes from `Clock` (trio's clock, so a MockClock gives
virtual time).

Test hook: a `TaskSpec.bug` of "work" makes the task's work raise `SimulatedBug`, "cancel" makes
the node's cancellation of the task raise it (`POST /_sim/tasks {"bug": ...}`, README).
"""

from __future__ import annotations

import logging
import math
import os
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from simnode import bulk_by_scroll, jsontext
from simnode._wire import node_pb2 as pb
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import (
    IllegalArgumentError,
    IllegalStateError,
    NoSuchNodeError,
    OpenSearchError,
    OpenSearchTimeoutError,
    ResourceNotFoundError,
    SimulatedBug,
    TaskCancelledError,
    internal_error,
)
from simnode.registry import (
    BUG_CANCEL,
    BUG_WORK,
    DIRECT,
    ON_CANCEL_MODES,
    TRANSPORT,
    Headers,
    Registry,
    Task,
    TaskFilter,
    check_live_tasks,
    task_headers,
)
from simnode.taskid import EMPTY_TASK_ID, TaskId
from simnode.transport import Transport
from simnode.wire import (
    discovery_node_to_pb,
    error_from_pb,
    error_to_pb,
    headers_from_pb,
    headers_to_pb,
    task_info_to_pb,
)

LIST_ACTION = "cluster:monitor/tasks/lists"
CANCEL_ACTION = "cluster:admin/tasks/cancel"
GET_ACTION = "cluster:monitor/task/get"
BAN_ACTION = "internal:admin/tasks/ban"
RETHROTTLE_ACTION = "cluster:admin/reindex/rethrottle"
DEFAULT_WAIT_FOR_COMPLETION_TIMEOUT = 30.0
log = logging.getLogger("tasksim.node")
# How much later than an enclosing transport deadline a wait for completion may time out.
TRANSPORT_DEADLINE_FIRST = 0.1


class Clock:
    """Wall-clock milliseconds and monotonic nanoseconds, both driven by trio's clock.

    By default the wall clock starts at the machine's time when the node starts; the simulation
    engine passes a fixed `epoch_millis` for trio time `t0` (virtual time 0), so that no wall time
    is read."""

    def __init__(self, epoch_millis: int | None = None, t0: float | None = None) -> None:
        self._epoch_millis = time.time_ns() // 1_000_000 if epoch_millis is None else epoch_millis
        self._t0 = trio.current_time() if t0 is None else t0

    def now_nanos(self) -> int:
        return int(trio.current_time() * 1e9)

    def now_millis(self) -> int:
        return self._epoch_millis + int((trio.current_time() - self._t0) * 1000)


# The last (old state, new state) → ids that left. On the sim engine every node applies the same
# publication (the same two immutable objects): computing it once keeps a publication O(N).
_last_diff: list[Any] = [None, None, []]


def _nodes_gone(old: ClusterState, new: ClusterState) -> list[str]:
    """The ids of `old`'s nodes that `new` no longer has, in `old`'s order."""
    if _last_diff[0] is old and _last_diff[1] is new:
        return list(_last_diff[2])
    gone = [n.id for n in old.nodes if new.get(n.id) is None]
    _last_diff[:] = [old, new, gone]
    return list(gone)


def java_object_name(task: Task) -> str:
    """What `Task.toString()` prints in OpenSearch (no override → `Class@hash`)."""
    cls = (
        "org.opensearch.tasks.CancellableTask" if task.cancellable else "org.opensearch.tasks.Task"
    )
    if task.action.startswith("indices:data/write/") and task.action.endswith(
        ("reindex", "update/byquery", "delete/byquery")
    ):
        cls = "org.opensearch.index.reindex.BulkByScrollTask"
    elif task.action.startswith("indices:data/read/search"):
        cls = "org.opensearch.action.search.SearchTask"
    # Stable across processes (a seed replays byte for byte), unlike hash() of a str.
    return f"{cls}@{zlib.crc32(f'{task.node_id}:{task.id}'.encode()) & 0x7FFFFFFF:x}"


@dataclass(eq=False)
class _Running:
    """The runtime side of a simulated task: how its work learns it was cancelled (or
    rethrottled), and what it answers with."""

    task: Task
    bug: str = ""  # the test hook: where a simulated bug is raised ("work", "cancel")
    cancelled: trio.Event = field(default_factory=trio.Event)
    wake: trio.Event = field(default_factory=trio.Event)
    worker: bulk_by_scroll.WorkerState | None = None
    leader: bulk_by_scroll.LeaderState | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Outcome:
    info: pb.TaskInfo
    response_json: str | None
    error: OpenSearchError | None


class Node:
    def __init__(
        self,
        local: DiscoveryNode,
        transport: Transport,
        *,
        cluster: ClusterState | None = None,
        max_live_tasks: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.local = local
        self.max_live_tasks = max_live_tasks
        self.transport = transport
        self.cluster = cluster or ClusterState(nodes=(local,))
        self.registry = Registry(local.id)
        self.pid = os.getpid()  # the process it runs in (0 on the simulation engine: none)
        self.clock: Clock | None = clock
        self._nursery: trio.Nursery | None = None
        self._done_waiters: dict[int, trio.Event] = {}
        self._children_waiters: dict[int, trio.Event] = {}
        self._running: dict[int, _Running] = {}
        # Set on the node that holds the `.tasks` index (the coordinating node).
        self.on_store_result: Callable[[pb.StoreResultRequest], None] | None = None
        # The documents of by-query operations (set by the coordinator on its own node).
        self.hit_source: bulk_by_scroll.HitSource | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the node's background work until cancelled."""
        if self.clock is None:
            self.clock = Clock()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None, "Node.run() is not running"
        return self._nursery

    def spawn(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `fn(*args)` in the node's nursery, contained: an exception that escapes it (a bug)
        is logged with its traceback and ends this work alone, never the node."""

        async def contained() -> None:
            try:
                await fn(*args)
            except Exception as e:
                self.log_bug(e, what)

        self.nursery.start_soon(contained)

    def log_bug(self, exc: BaseException, what: str) -> OpenSearchError:
        """Log a bug in `what` with its traceback (the node's log); the error its task or request
        fails with."""
        log.error(
            "a bug in %s on node [%s] (contained; the node keeps serving)",
            what,
            self.local.name,
            exc_info=exc,
        )
        return internal_error(exc)

    def _simulated_bug(self, task: Task, where: str) -> None:
        running = self._running.get(task.id)
        if running is not None and running.bug == where:
            raise SimulatedBug(f"simulated bug in the {where} of task [{task.task_id}]")

    def _now(self) -> tuple[int, int]:
        assert self.clock is not None
        return self.clock.now_millis(), self.clock.now_nanos()

    def register(
        self,
        action: str,
        *,
        local: bool,
        parent: TaskId = EMPTY_TASK_ID,
        headers: Headers = (),
        cancellable: bool = False,
        description: str = "",
        status: dict[str, Any] | None = None,
    ) -> Task:
        millis, nanos = self._now()
        return self.registry.register(
            action=action,
            type=DIRECT if local else TRANSPORT,
            parent=parent,
            headers=task_headers(headers),
            cancellable=cancellable,
            description=description,
            status=status,
            now_millis=millis,
            now_nanos=nanos,
        )

    def unregister(self, task: Task) -> None:
        self.registry.unregister(task)
        waiter = self._done_waiters.pop(task.id, None)
        if waiter is not None:
            waiter.set()

    async def wait_done(self, task: Task) -> None:
        if self.registry.get(task.id) is not task:
            return
        await self._done_waiters.setdefault(task.id, trio.Event()).wait()

    async def wait_children_done(self, task: Task) -> None:
        while task.child_nodes:
            await self._children_waiters.setdefault(task.id, trio.Event()).wait()

    def set_cluster_state(self, state: ClusterState) -> None:
        gone = _nodes_gone(self.cluster, state)
        self.cluster = state
        for node_id in gone:
            self.registry.remove_bans_of_node(node_id)
            self.transport.node_left(node_id)

    # -- cluster:monitor/tasks/lists[n] ----------------------------------------------------------

    def _process_tasks(self, req: pb.TasksRequest, *, for_cancel: bool) -> list[Task]:
        """`TransportTasksAction.processTasks` (and the cancel variant of §3.2)."""
        task_id = TaskId.parse(req.task_id)
        task_filter = TaskFilter(
            actions=tuple(req.actions),
            task_id=task_id,
            parent_task_id=TaskId.parse(req.parent_task_id),
            cancellable_only=for_cancel,
        )
        if not task_id.is_set():
            return self.registry.matching(task_filter)
        task = self.registry.get(task_id.id)
        if for_cancel:
            if task is not None and task.cancellable:
                if task_filter.match(task):
                    return [task]
                raise IllegalArgumentError(f"task [{task_id}] doesn't support this operation")
            if task is not None:
                raise IllegalArgumentError(f"task [{task_id}] doesn't support cancellation")
            raise ResourceNotFoundError(f"task [{task_id}] is not found")
        if task is None:
            raise ResourceNotFoundError(f"task [{task_id}] is missing")
        if not task_filter.match(task):
            raise ResourceNotFoundError(f"task [{task_id}] doesn't support this operation")
        return [task]

    async def _wait_for_completion(self, task: Task, deadline: float) -> None:
        # The caller's transport deadline (the RPC's, or the local shortcut's) started when the
        # request was sent, before this wait began; in OpenSearch it fires first (the node only
        # polls every 100 ms). Keep that order deterministic: never time out before it.
        outer = trio.current_effective_deadline()
        if outer != math.inf:
            deadline = max(deadline, outer + TRANSPORT_DEADLINE_FIRST)
        with trio.move_on_at(deadline):
            await self.wait_done(task)
            return
        raise OpenSearchTimeoutError(
            f"Timed out waiting for completion of [{java_object_name(task)}]"
        )

    async def list_tasks(self, req: pb.TasksRequest, *, local: bool) -> pb.TasksResponse:
        me = self.register(
            f"{LIST_ACTION}[n]",
            local=local,
            parent=TaskId.parse(req.parent_task),
            headers=headers_from_pb(req.headers),
        )
        try:
            tasks = self._process_tasks(req, for_cancel=False)
            if req.wait_for_completion:
                timeout = (
                    req.timeout_millis / 1000
                    if req.HasField("timeout_millis")
                    else DEFAULT_WAIT_FOR_COMPLETION_TIMEOUT
                )
                deadline = trio.current_time() + timeout
                for task in tasks:
                    if not task.action.startswith(LIST_ACTION):
                        await self._wait_for_completion(task, deadline)
            _, nanos = self._now()
            return pb.TasksResponse(
                tasks=[
                    task_info_to_pb(t.info(detailed=req.detailed, now_nanos=nanos)) for t in tasks
                ]
            )
        finally:
            self.unregister(me)

    # -- cluster:monitor/task/get ----------------------------------------------------------------

    async def get_task(
        self, req: pb.GetTaskRequest, *, local: bool, register: bool = True
    ) -> pb.GetTaskResponse:
        """`getRunningTaskFromNode`. A task that is not running here gives a response without
        `task`: the caller reads the `.tasks` index (the coordinator holds it). `register=False`
        is the coordinating node serving its own task inside the REST-entry task."""
        me = None
        if register:
            me = self.register(
                GET_ACTION,
                local=local,
                parent=TaskId.parse(req.parent_task),
                headers=headers_from_pb(req.headers),
            )
        try:
            task = self.registry.get(req.id)
            if task is None:
                return pb.GetTaskResponse()
            if req.wait_for_completion:
                timeout = (
                    req.timeout_millis / 1000
                    if req.HasField("timeout_millis")
                    else DEFAULT_WAIT_FOR_COMPLETION_TIMEOUT
                )
                await self._wait_for_completion(task, trio.current_time() + timeout)
            _, nanos = self._now()
            return pb.GetTaskResponse(
                completed=bool(req.wait_for_completion),
                task=task_info_to_pb(task.info(detailed=True, now_nanos=nanos)),
            )
        finally:
            if me is not None:
                self.unregister(me)

    # -- cluster:admin/tasks/cancel[n] -----------------------------------------------------------

    async def cancel_tasks(self, req: pb.TasksRequest, *, local: bool) -> pb.TasksResponse:
        headers = headers_from_pb(req.headers)
        me = self.register(
            f"{CANCEL_ACTION}[n]",
            local=local,
            parent=TaskId.parse(req.parent_task),
            headers=headers,
        )
        try:
            tasks = self._process_tasks(req, for_cancel=True)
            infos: dict[int, pb.TaskInfo] = {}
            failures: list[pb.TaskFailure] = []

            async def one(task: Task) -> None:
                try:
                    await self.cancel_task_and_descendants(
                        task, req.reason or "by user request", req.wait_for_completion, headers
                    )
                except Exception as e:  # an OpenSearchError, or a bug: this task's failure
                    error = (
                        e
                        if isinstance(e, OpenSearchError)
                        else self.log_bug(e, f"the cancellation of task [{task.task_id}]")
                    )
                    failures.append(
                        pb.TaskFailure(
                            node_id=self.local.id, task_id=task.id, reason=error_to_pb(error)
                        )
                    )
                    return
                _, nanos = self._now()
                infos[task.id] = task_info_to_pb(task.info(detailed=False, now_nanos=nanos))

            async with trio.open_nursery() as nursery:
                for task in tasks:
                    nursery.start_soon(one, task)
            return pb.TasksResponse(
                tasks=[infos[t.id] for t in tasks if t.id in infos], task_failures=failures
            )
        finally:
            self.unregister(me)

    async def cancel_task_and_descendants(
        self, task: Task, reason: str, wait_for_completion: bool, headers: Headers
    ) -> None:
        """`TaskCancellationService.cancelTaskAndDescendants` (reference §3.3)."""
        child_nodes = [n for n, count in task.child_nodes.items() if count > 0]
        millis, nanos = self._now()
        if self.registry.cancel(task, reason, now_millis=millis, now_nanos=nanos):
            running = self._running.get(task.id)
            if running is not None:
                running.cancelled.set()
                if running.worker is not None:  # WorkerBulkByScrollTaskState.handleCancel
                    running.worker.rethrottle(math.inf, nanos)
                    running.wake.set()
        if not child_nodes:
            self._simulated_bug(task, BUG_CANCEL)
            if wait_for_completion:
                await self.wait_done(task)
            return
        # The protocol runs in the node's nursery, not in the caller: a caller that goes away (a
        # cancel request whose client hung up, a "channel was closed" watcher whose task just
        # ended) must not stop it half-way, or a ban would be set and never lifted.
        banned = trio.Event()
        completed = trio.Event()
        failures: list[OpenSearchError] = []

        async def protocol() -> None:
            try:
                try:
                    self._simulated_bug(task, BUG_CANCEL)
                    await self._ban_on_nodes(
                        task, child_nodes, reason, wait_for_completion, headers
                    )
                except OpenSearchError as e:
                    failures.append(e)
                except Exception as e:  # a bug: this cancellation fails, the node serves on
                    failures.append(self.log_bug(e, f"the cancellation of task [{task.task_id}]"))
                finally:
                    banned.set()
                await self.wait_children_done(task)
                await self.wait_done(task)
            finally:
                completed.set()  # a waiting cancel request always ends
            # Bans are lifted once the children and the task are done, success or failure.
            await self._unban_on_nodes(task, child_nodes, headers)

        self.spawn(f"the cancellation protocol of task [{task.task_id}]", protocol)
        await banned.wait()
        if failures:
            raise failures[0]
        if wait_for_completion:
            await completed.wait()

    def _node(self, node_id: str) -> DiscoveryNode | None:
        return self.cluster.get(node_id)

    async def _ban_on_nodes(
        self, task: Task, node_ids: list[str], reason: str, wait: bool, headers: Headers
    ) -> None:
        request = pb.BanParentRequest(
            parent_task_id=str(task.task_id),
            ban=True,
            reason=reason,
            wait_for_completion=wait,
            headers=headers_to_pb(headers),
        )
        errors: list[OpenSearchError] = []

        async def one(node_id: str) -> None:
            try:
                await self.send(node_id, "BanParent", request)
            except OpenSearchError as e:
                # A ban to a node that is gone is no failure (isNodeClosedException).
                if e.type not in (
                    "node_disconnected_exception",
                    "node_not_connected_exception",
                    "connect_transport_exception",
                    "node_closed_exception",
                    "no_such_node_exception",
                ):
                    errors.append(e)

        async with trio.open_nursery() as nursery:
            for node_id in node_ids:
                nursery.start_soon(one, node_id)
        if errors:
            raise errors[0]

    async def _unban_on_nodes(self, task: Task, node_ids: list[str], headers: Headers) -> None:
        request = pb.BanParentRequest(
            parent_task_id=str(task.task_id), ban=False, headers=headers_to_pb(headers)
        )

        async def one(node_id: str) -> None:
            try:
                await self.send(node_id, "BanParent", request)
            except OpenSearchError:
                pass

        async with trio.open_nursery() as nursery:
            for node_id in node_ids:
                nursery.start_soon(one, node_id)

    async def send(
        self, node_id: str, method: str, request: Any, *, timeout: float | None = None
    ) -> Any:
        """Send to a node of the cluster: a peer through the transport, this node itself through
        the loopback link (simnode/handlers.py `loopback`: `direct` tasks, no faults)."""
        if node_id == self.local.id:
            from simnode.handlers import loopback  # handlers imports this module

            return await loopback(self, method, request, timeout=timeout)
        node = self._node(node_id)
        if node is None:
            raise NoSuchNodeError.of(node_id)
        return await self.transport.call(node, method, request, timeout=timeout)

    # -- internal:admin/tasks/ban ----------------------------------------------------------------

    async def ban_parent(self, req: pb.BanParentRequest, *, local: bool) -> pb.Empty:
        headers = headers_from_pb(req.headers)
        me = self.register(BAN_ACTION, local=local, headers=headers)
        try:
            parent = TaskId.parse(req.parent_task_id)
            if not req.ban:
                self.registry.remove_ban(parent)
                return pb.Empty()
            children = self.registry.set_ban(
                parent, req.reason, record=self._node(parent.node_id) is not None
            )
            async with trio.open_nursery() as nursery:
                for child in children:
                    nursery.start_soon(
                        self.cancel_task_and_descendants,
                        child,
                        req.reason,
                        req.wait_for_completion,
                        headers,
                    )
            return pb.Empty()
        finally:
            self.unregister(me)

    # -- simulated task trees --------------------------------------------------------------------

    def start_task(self, req: pb.RunTaskRequest) -> pb.StartTaskResponse:
        """Register the root(s) of a tree now, run them in the background, answer with the ids.

        A cancellable root whose parent is banned here fails at once (`Task cancelled before it
        started: ...`), as any registration does."""
        headers = headers_from_pb(req.headers)
        parent = TaskId.parse(req.parent_task)
        ids = []
        copies = max(1, req.copies)
        # All copies or none: a refused start must not leave some of them running.
        check_live_tasks(
            len(self.registry) + copies - 1, self.max_live_tasks, req.spec.action, self.local.name
        )
        for _ in range(copies):
            task = self._register_spec(req.spec, parent, headers, local=False)
            self.spawn(f"task [{task.task_id}]", self._run_background, task, req.spec, headers)
            ids.append(str(task.task_id))
        return pb.StartTaskResponse(task_id=ids[0], task_ids=ids)

    async def run_task(
        self,
        req: pb.RunTaskRequest,
        *,
        local: bool,
        channel_closed: trio.Event | None = None,
    ) -> pb.RunTaskResponse:
        """Run a task tree here until it is done: the child request of a parent elsewhere (or a
        REST-entry task the caller waits for). A failed task raises its error."""
        headers = headers_from_pb(req.headers)
        task = self._register_spec(req.spec, TaskId.parse(req.parent_task), headers, local=local)
        outcome = await self._run_registered(task, req.spec, headers, channel_closed)
        if outcome.error is not None:
            raise outcome.error
        answer = pb.RunTaskResponse(task=outcome.info)
        if outcome.response_json is not None:
            answer.response_json = outcome.response_json
        return answer

    async def _run_background(self, task: Task, spec: pb.TaskSpec, headers: Headers) -> None:
        await self._run_registered(task, spec, headers, None)

    def _register_spec(
        self, spec: pb.TaskSpec, parent: TaskId, headers: Headers, *, local: bool
    ) -> Task:
        if spec.on_cancel and spec.on_cancel not in ON_CANCEL_MODES:
            raise IllegalArgumentError(
                f"[on_cancel] must be one of {list(ON_CANCEL_MODES)} but was [{spec.on_cancel}]"
            )
        check_live_tasks(len(self.registry), self.max_live_tasks, spec.action, self.local.name)
        return self.register(
            spec.action,
            local=local,
            parent=parent,
            headers=headers,
            cancellable=spec.cancellable,
            description=spec.description,
            status=jsontext.loads(spec.status_json) if spec.HasField("status_json") else None,
        )

    async def _run_registered(
        self,
        task: Task,
        spec: pb.TaskSpec,
        headers: Headers,
        channel_closed: trio.Event | None,
    ) -> _Outcome:
        running = _Running(task, bug=spec.bug)
        self._running[task.id] = running
        try:
            failures: list[OpenSearchError] = []
            try:
                await self._run_work(running, spec, headers, channel_closed, failures)
            except Exception as e:  # a bug in the task's work: the task fails, the node serves on
                failures.insert(0, self.log_bug(e, f"task [{task.task_id}]"))
            response_json, error = self._outcome(running, spec, failures)
            _, nanos = self._now()
            if spec.store_result:
                await self._store_result(task, response_json, error, nanos)
            info = task_info_to_pb(task.info(detailed=False, now_nanos=nanos))
            return _Outcome(info, response_json, error)
        finally:
            del self._running[task.id]
            self.unregister(task)

    async def _run_work(
        self,
        running: _Running,
        spec: pb.TaskSpec,
        headers: Headers,
        channel_closed: trio.Event | None,
        failures: list[OpenSearchError],
    ) -> None:
        """The task's work, its children and its "channel was closed" watcher, until done."""
        task = running.task
        async with trio.open_nursery() as nursery:
            if channel_closed is not None:
                nursery.start_soon(self._cancel_when_closed, task, channel_closed, headers)
            async with trio.open_nursery() as work:
                if spec.children:

                    def child_failed(scope: trio.CancelScope = work.cancel_scope) -> None:
                        # A failed child fails the task at once: its own work stops too,
                        # unless it is a zombie that ignores its cancellation for a while.
                        if not (task.is_cancelled and spec.on_cancel == "ignore"):
                            scope.cancel()

                    work.start_soon(self._run_children, task, spec, headers, failures, child_failed)
                if spec.bulk_by_scroll.kind:
                    work.start_soon(self._bulk_by_scroll, running, spec, headers, failures)
                else:
                    work.start_soon(self._work, running, spec)
            nursery.cancel_scope.cancel()

    @staticmethod
    def _outcome(
        running: _Running, spec: pb.TaskSpec, failures: list[OpenSearchError]
    ) -> tuple[str | None, OpenSearchError | None]:
        """What the finished task answers: its own error, a child's failure, its cancellation,
        or its response (in that order)."""
        if spec.HasField("error"):
            return None, error_from_pb(spec.error)
        if failures:
            return None, failures[0]
        if running.response is not None:
            return jsontext.dumps(running.response), None
        cancelled = running.task.cancelled
        if cancelled is not None:
            return None, TaskCancelledError(f"cancelled task with reason: {cancelled.reason}")
        return (spec.response_json if spec.HasField("response_json") else "{}"), None

    async def _cancel_when_closed(self, task: Task, closed: trio.Event, headers: Headers) -> None:
        """The parent's channel closed (its node died or the call was cut): cancel, as
        `TaskManager.startTrackingCancellableChannelTask` does."""
        await closed.wait()
        if task.cancellable:
            await self.cancel_task_and_descendants(task, "channel was closed", False, headers)

    async def _work(self, running: _Running, spec: pb.TaskSpec) -> None:
        duration = math.inf if spec.duration_millis < 0 else spec.duration_millis / 1000
        mode = spec.on_cancel or "immediate"
        task = running.task
        self._simulated_bug(task, BUG_WORK)
        with trio.move_on_after(duration):
            if mode == "immediate":
                await running.cancelled.wait()
            elif mode == "checkpoint":
                interval = max(spec.checkpoint_millis, 1) / 1000
                while not task.is_cancelled:
                    await trio.sleep(interval)
            else:  # ignore: a zombie that keeps running for a while after the cancel
                await running.cancelled.wait()
                if spec.ignore_cancel_millis < 0:
                    await trio.sleep_forever()
                await trio.sleep(spec.ignore_cancel_millis / 1000)

    async def _run_children(
        self,
        task: Task,
        spec: pb.TaskSpec,
        headers: Headers,
        failures: list[OpenSearchError],
        on_failure: Callable[[], None],
    ) -> None:
        """Phase by phase; a phase with a failed child ends the task's work (`on_failure`)."""

        async def one(child: pb.ChildSpec) -> None:
            try:
                await self._run_child(task, child, headers, via_client=child.local_client)
            except OpenSearchError as e:
                failures.append(e)

        for phase in sorted({c.phase for c in spec.children}):
            async with trio.open_nursery() as nursery:
                for child in spec.children:
                    if child.phase == phase:
                        nursery.start_soon(one, child)
            if failures:
                on_failure()
                return

    async def _run_child(
        self, parent: Task, child: pb.ChildSpec, headers: Headers, *, via_client: bool = False
    ) -> pb.RunTaskResponse:
        """Send one child request and wait for its answer (raises the child's failure).

        A cancellable parent records the child's node first (`registerChildNode`), which fails
        once the parent is cancelled. `via_client`: an action the node runs on itself through its
        client (a `transport` task, like reindex's searches); otherwise a request to the local
        node takes the local shortcut (`direct`)."""
        target = child.node_id or self.local.id
        registered = False
        if parent.cancellable:
            self.registry.register_child_node(parent, target)
            registered = True
        try:
            if child.send_delay_millis > 0:
                await trio.sleep(child.send_delay_millis / 1000)
            request = pb.RunTaskRequest(
                spec=child.task, parent_task=str(parent.task_id), headers=headers_to_pb(headers)
            )
            if via_client and target == self.local.id:
                # A client on the node itself (reindex's searches): a `transport` task, not the
                # loopback link's `direct` one.
                answer: pb.RunTaskResponse = await self.run_task(request, local=False)
                return answer
            result: pb.RunTaskResponse = await self.send(target, "RunTask", request)
            return result
        finally:
            if registered:
                self.registry.unregister_child_node(parent, target)
                if not parent.child_nodes:
                    waiter = self._children_waiters.pop(parent.id, None)
                    if waiter is not None:
                        waiter.set()

    # -- stored results (the `.tasks` index) -----------------------------------------------------

    async def _store_result(
        self, task: Task, response_json: str | None, error: OpenSearchError | None, nanos: int
    ) -> None:
        """`TaskManager.storeResult`: send `task.result(...)` (detailed, without resource_stats)
        to the node holding `.tasks`. A store that fails is dropped, as a failed index write
        is only logged by OpenSearch's `LoggingTaskListener`."""
        target = self.cluster.tasks_index_node_id
        if not target:
            return
        info = replace(task.info(detailed=True, now_nanos=nanos), resource_stats=None)
        request = pb.StoreResultRequest(task=task_info_to_pb(info))
        if error is not None:
            request.error.CopyFrom(error_to_pb(error))
        elif response_json is not None:
            request.response_json = response_json
        try:
            await self.send(target, "StoreResult", request)
        except OpenSearchError:
            pass

    async def store_result(self, req: pb.StoreResultRequest, *, local: bool) -> pb.Empty:
        if self.on_store_result is None:
            raise IllegalStateError(f"node [{self.local.name}] does not hold the [.tasks] index")
        self.on_store_result(req)
        return pb.Empty()

    # -- bulk-by-scroll (reindex, update_by_query, delete_by_query) ------------------------------

    async def _bulk_by_scroll(
        self,
        running: _Running,
        spec: pb.TaskSpec,
        headers: Headers,
        failures: list[OpenSearchError],
    ) -> None:
        bbs = spec.bulk_by_scroll
        task = running.task
        started = trio.current_time()
        if bbs.slices > 1:
            await self._bulk_by_scroll_leader(running, spec, headers, failures)
        else:
            await self._bulk_by_scroll_worker(running, bbs, headers, failures)
        if failures:
            return
        took = int((trio.current_time() - started) * 1000)
        _, nanos = self._now()
        failed: list[dict[str, Any]] = []
        if running.leader is not None:
            status = running.leader.status(_reason(task))
            failed = running.leader.failures
        elif running.worker is not None:
            status = running.worker.status(nanos, _reason(task))
            failed = running.worker.failures
        else:
            status = bulk_by_scroll.Status()
        running.response = bulk_by_scroll.response(status, took, failures=failed)

    async def _bulk_by_scroll_worker(
        self,
        running: _Running,
        bbs: pb.BulkByScrollSpec,
        headers: Headers,
        failures: list[OpenSearchError],
    ) -> None:
        """`AbstractAsyncBulkByScrollAction`: scroll a batch, bulk it, throttle, again; a cancel
        is seen at the next batch (or wakes the throttle sleep) and ends with `canceled`. With an
        `operation`, the batches are real documents read and written through `hit_source`."""
        task = running.task
        worker = running.worker = bulk_by_scroll.WorkerState(
            kind=bbs.kind,
            total=0,
            requests_per_second=_rps(bbs.requests_per_second),
            slice_id=bbs.slice_id if bbs.HasField("slice_id") else None,
        )
        task.status_fn = lambda now: worker.status(now, _reason(task)).xcontent()
        if bbs.operation and self.hit_source is not None:
            await self._documents_worker(running, worker, bbs, headers, failures)
            return
        size = bbs.batch_size or bulk_by_scroll.DEFAULT_SCROLL_SIZE
        first = True
        while not task.is_cancelled:
            try:
                await self._run_child(task, _scroll_child(bbs, first), headers, via_client=True)
                if first:
                    worker.total = bbs.total
                    first = False
                docs = min(size, worker.remaining)
                if docs == 0:
                    return
                await self._run_child(task, _bulk_child(bbs, docs), headers, via_client=True)
            except OpenSearchError as e:
                if not task.is_cancelled:
                    failures.append(e)
                return
            worker.count_batch(docs)
            if worker.remaining == 0:
                return
            _, nanos = self._now()
            if worker.start_sleep(docs, nanos):
                await self._throttle_sleep(running, worker)

    async def _documents_worker(
        self,
        running: _Running,
        worker: bulk_by_scroll.WorkerState,
        bbs: pb.BulkByScrollSpec,
        headers: Headers,
        failures: list[OpenSearchError],
    ) -> None:
        """The worker on real documents: `onScrollResponse` → `prepareBulkRequest` (count the
        batch, cut to `max_docs`, run the script) → `sendBulkRequest` → `onBulkResponse` (count;
        failures end it) → throttle → the next scroll; `refreshAndFinish` at the end."""
        assert self.hit_source is not None
        task = running.task
        size = bbs.batch_size or bulk_by_scroll.DEFAULT_SCROLL_SIZE
        scroll: bulk_by_scroll.Scroll | None = None
        slice_id = bbs.slice_id if bbs.HasField("slice_id") else None
        try:
            while not task.is_cancelled:
                await self._run_child(
                    task, _scroll_child(bbs, scroll is None), headers, via_client=True
                )
                if scroll is None:
                    scroll = self.hit_source.open(bbs.operation, slice_id, max(1, bbs.slice_count))
                    worker.total = scroll.total
                hits = scroll.next_batch(size, worker.successfully_processed)
                if not hits or task.is_cancelled:
                    return
                worker.batches += 1
                # A large batch is worked a part at a time, so that the loop keeps serving
                # between parts (the script runs in `prepare`, the writes in `write`).
                parts = []
                for start in range(0, len(hits), DOCUMENTS_PER_TURN):
                    part = scroll.prepare(hits[start : start + DOCUMENTS_PER_TURN])
                    worker.noops += part.noops
                    parts.append(part)
                    await trio.lowlevel.checkpoint()
                requests = sum(part.size for part in parts)
                if requests > 0:
                    await self._run_child(
                        task, _bulk_child(bbs, requests), headers, via_client=True
                    )
                    failed = False
                    for part in parts:
                        written = scroll.write(part)
                        worker.count_written(written)
                        failed = failed or bool(written.failures)
                        await trio.lowlevel.checkpoint()
                    if failed or scroll.reached_max_docs(worker.successfully_processed):
                        return
                _, nanos = self._now()
                if worker.start_sleep(requests, nanos):
                    await self._throttle_sleep(running, worker)
        except OpenSearchError as e:
            if not task.is_cancelled:
                failures.append(e)
        finally:
            if scroll is not None:
                scroll.close(refresh=not task.is_cancelled and not failures)

    async def _throttle_sleep(self, running: _Running, worker: bulk_by_scroll.WorkerState) -> None:
        """Sleep until the throttle deadline; a rethrottle or a cancel wakes and re-reads it.

        The deadline is compared in the unit it was waited in (trio's seconds): `now_nanos()`
        truncates, so it can read 1 ns short of a deadline trio has already reached — and on
        virtual time, where no time passes while nothing sleeps, that looped forever."""
        while worker.sleep_until is not None:
            deadline = worker.sleep_until / 1e9
            wake = running.wake = trio.Event()
            with trio.move_on_at(deadline):
                await wake.wait()
            if not wake.is_set() or trio.current_time() >= worker.sleep_until / 1e9:
                break
        worker.end_sleep()

    async def _bulk_by_scroll_leader(
        self,
        running: _Running,
        spec: pb.TaskSpec,
        headers: Headers,
        failures: list[OpenSearchError],
    ) -> None:
        """`BulkByScrollParallelizationHelper.sendSubRequests`: one slice subtask per slice on
        this node, each with `requests_per_second / slices` and its share of the documents."""
        task = running.task
        bbs = spec.bulk_by_scroll
        leader = running.leader = bulk_by_scroll.LeaderState(bbs.slices)
        task.status_fn = lambda _now: leader.status(_reason(task)).xcontent()
        errors: list[OpenSearchError] = []

        async def one(slice_id: int) -> None:
            share = bbs.total // bbs.slices + (1 if slice_id < bbs.total % bbs.slices else 0)
            sub = pb.TaskSpec()
            sub.CopyFrom(spec)
            sub.store_result = False
            sub.bulk_by_scroll.slices = 1
            sub.bulk_by_scroll.slice_id = slice_id
            sub.bulk_by_scroll.slice_count = bbs.slices
            sub.bulk_by_scroll.total = share
            sub.bulk_by_scroll.requests_per_second = bbs.requests_per_second / bbs.slices
            try:
                answer = await self._run_child(
                    task, pb.ChildSpec(task=sub), headers, via_client=True
                )
                body = jsontext.loads(answer.response_json)
                leader.results[slice_id] = bulk_by_scroll.status_from_xcontent(body)
                leader.failures.extend(body.get("failures") or [])
            except OpenSearchError as e:
                leader.results[slice_id] = e
                errors.append(e)

        async with trio.open_nursery() as nursery:
            for slice_id in range(bbs.slices):
                nursery.start_soon(one, slice_id)
        if errors:
            failures.append(errors[0])

    # -- cluster:admin/reindex/rethrottle[n] -----------------------------------------------------

    async def rethrottle(self, req: pb.TasksRequest, *, local: bool) -> pb.TasksResponse:
        """`TransportRethrottleAction.taskOperation` on this node."""
        me = self.register(
            f"{RETHROTTLE_ACTION}[n]",
            local=local,
            parent=TaskId.parse(req.parent_task),
            headers=headers_from_pb(req.headers),
        )
        try:
            tasks = self._process_tasks(req, for_cancel=False)
            rps = req.requests_per_second if req.HasField("requests_per_second") else math.inf
            infos: list[pb.TaskInfo] = []
            failures: list[pb.TaskFailure] = []
            for task in tasks:
                try:
                    infos.append(self._rethrottle_task(task, rps))
                except OpenSearchError as e:
                    failures.append(
                        pb.TaskFailure(
                            node_id=self.local.id, task_id=task.id, reason=error_to_pb(e)
                        )
                    )
            return pb.TasksResponse(tasks=infos, task_failures=failures)
        finally:
            self.unregister(me)

    def _rethrottle_task(self, task: Task, rps: float) -> pb.TaskInfo:
        running = self._running.get(task.id)
        _, nanos = self._now()
        if running is not None and running.worker is not None:
            running.worker.rethrottle(rps, nanos)
            running.wake.set()
            return task_info_to_pb(task.info(detailed=True, now_nanos=nanos))
        if running is not None and running.leader is not None:
            leader = running.leader
            slices = [
                self._running[t.id]
                for t in self.registry.children_of(task.task_id)
                if t.id in self._running and self._running[t.id].worker is not None
            ]
            if not slices:
                return task_info_to_pb(task.info(detailed=True, now_nanos=nanos))
            statuses: list[bulk_by_scroll.Status | OpenSearchError | None] = [None] * leader.slices
            for sub in slices:
                assert sub.worker is not None
                sub.worker.rethrottle(rps / len(slices), nanos)
                sub.wake.set()
                status = sub.worker.status(nanos, _reason(sub.task))
                if status.slice_id is not None and status.slice_id < leader.slices:
                    statuses[status.slice_id] = status
            merged = bulk_by_scroll.merge(statuses, _reason(task)).xcontent()
            info = replace(task.info(detailed=True, now_nanos=nanos), status=merged)
            return task_info_to_pb(info)
        raise IllegalArgumentError(
            f"task [{task.id}] has not yet been initialized to the point where it knows how to "
            "rethrottle itself"
        )

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> pb.NodeStatus:
        return pb.NodeStatus(
            node=discovery_node_to_pb(self.local),
            live_tasks=len(self.registry),
            pid=self.pid,
            bans=[
                pb.Ban(parent_task_id=str(parent), reason=reason)
                for parent, reason in self.registry.bans.items()
            ],
        )


DOCUMENTS_PER_TURN = 100  # a by-query batch's hits prepared / written per turn of the loop


def _reason(task: Task) -> str | None:
    return task.cancelled.reason if task.cancelled is not None else None


def _rps(value: float) -> float:
    return math.inf if value <= 0 or math.isinf(value) else value


def _scroll_child(bbs: pb.BulkByScrollSpec, first: bool) -> pb.ChildSpec:
    """The batch's search: the scroll's first `indices:data/read/search`, then
    `indices:data/read/scroll`, each with one shard-level child per source shard."""
    sources = ", ".join(bbs.source_indices)
    shard_millis = max(1, bbs.batch_millis // 2)
    shard_action = (
        "indices:data/read/search[phase/query]"
        if first
        else ("indices:data/read/search[phase/query/scroll]")
    )
    children = [
        pb.ChildSpec(
            node_id=node_id,
            task=pb.TaskSpec(
                action=shard_action,
                cancellable=True,
                duration_millis=shard_millis,
                description=f"shardId[[{bbs.source_indices[0] if bbs.source_indices else ''}][{i}]]",
            ),
        )
        for i, node_id in enumerate(bbs.search_nodes)
    ]
    if first:
        action = "indices:data/read/search"
        description = (
            f"indices[{sources}], search_type[QUERY_THEN_FETCH], scroll[5m], "
            f'source[{{"size":{bbs.batch_size or 1000},"sort":[{{"_doc":{{"order":"asc"}}}}]}}]'
        )
    else:
        action = "indices:data/read/scroll"
        description = "scrollId[...]"
    return pb.ChildSpec(
        task=pb.TaskSpec(
            action=action,
            cancellable=True,
            duration_millis=0,
            description=description,
            children=children,
        )
    )


def _bulk_child(bbs: pb.BulkByScrollSpec, docs: int) -> pb.ChildSpec:
    """The batch's `indices:data/write/bulk` with one `bulk[s]` per primary it writes to."""
    target = bbs.dest_index or (bbs.source_indices[0] if bbs.source_indices else "")
    shards = list(bbs.bulk_nodes)
    per_shard = max(1, docs // max(1, len(shards)))
    children = [
        pb.ChildSpec(
            node_id=node_id,
            task=pb.TaskSpec(
                action="indices:data/write/bulk[s]",
                cancellable=False,
                duration_millis=max(1, bbs.batch_millis // 2),
                description=f"requests[{per_shard}], index[{target}][{i}]",
            ),
        )
        for i, node_id in enumerate(shards)
    ]
    return pb.ChildSpec(
        task=pb.TaskSpec(
            action="indices:data/write/bulk",
            cancellable=False,
            duration_millis=0,
            description=f"requests[{docs}], indices[{target}]",
            children=children,
        )
    )
