"""Recording a run of the real engine: the coordinator process writes the history.

The coordinator's own events (client operations, faults, membership, its coordinating node's task
lifecycle) are recorded in place. Every node process ships its events over the control channel
(`Control.Events`, a stream that faults never touch): a subscription is opened as soon as the
supervisor sees the node ready — before it joins the cluster, so nothing it does is missed — and
each batch is added to the history as it arrives, rebased on the run's clock (nodes stamp events
with the machine's monotonic clock, which every process on it shares). A killed node loses only
what it had not sent yet, and the history says where its record ends (`record_end`, with the last
sequence number received).

Threads: each subscription is read by one worker thread (the stream is a blocking iterator) that
hands batches to the trio loop; only the loop touches the recorder.
"""

from __future__ import annotations

import collections
import json
import math
import time
from pathlib import Path
from typing import Any

import trio

from coordinator.cluster import Cluster, ClusterConfig
from coordinator.engine.real import ProcessHosts
from coordinator.supervisor import NodeProcess
from simnode._wire import control_pb2 as cpb
from simnode.discovery import node_id_for
from simnode.errors import OpenSearchError
from simnode.history import Event, JsonlWriter, Recorder, header

FLUSH_INTERVAL = 0.5
INGEST_INTERVAL = 0.1
SYNC_TIMEOUT = 2.0
# How long a dead node's stream may still deliver what was in flight before it is cut.
STREAM_GRACE = 1.0


def run_header(config: ClusterConfig, *, engine: str = "real", **extra: Any) -> dict[str, Any]:
    """The header of a run of `config`: the engine, the seed, every node (the coordinating node
    first) with its id and roles."""
    nodes: list[dict[str, Any]] = [
        {
            "name": config.coordinator_name,
            "id": node_id_for(config.seed, config.coordinator_name),
            "roles": list(config.coordinator_roles),
            "coordinator": True,
        },
        *(
            {"name": n.name, "id": node_id_for(config.seed, n.name), "roles": list(n.roles)}
            for n in config.nodes
        ),
    ]
    return header(engine=engine, seed=config.seed, nodes=nodes, **extra)


class Recording:
    """The history of one coordinator run, written to `path` (kept in memory when None)."""

    def __init__(self, cluster: Cluster, path: Path | None, **header_extra: Any) -> None:
        self.cluster = cluster
        self.t0 = time.monotonic()
        # the wall clock at the start: a test can cut the part of the history it covered
        self.head = run_header(cluster.config, started_unix=round(time.time(), 3), **header_extra)
        self.writer = JsonlWriter(path, self.head).open() if path is not None else None
        self.recorder = Recorder(self.clock, sink=self.writer, keep=self.writer is None)
        self._nursery: trio.Nursery | None = None
        self._following: dict[str, tuple[int, int]] = {}  # node → (pid, last seq received)
        self._threads = trio.CapacityLimiter(math.inf)
        # Batches the stream threads received, for the trio thread (deque appends are atomic).
        self._inbox: collections.deque[tuple[str, int, list[Event]]] = collections.deque()
        self._closed = False
        cluster.recorder = self.recorder
        hosts = cluster.hosts
        if not isinstance(hosts, ProcessHosts):
            raise ValueError(f"this recording is the real engine's, not the {hosts.engine} one's")
        self.hosts = hosts
        hosts.supervisor.on_start.append(self._started)

    def clock(self) -> float:
        return time.monotonic() - self.t0

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the subscriptions; take in what the nodes sent, flush the file now and then."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            last_flush = trio.current_time()
            while True:
                await trio.sleep(INGEST_INTERVAL)
                self._ingest()
                if self.writer is not None and trio.current_time() - last_flush >= FLUSH_INTERVAL:
                    self.writer.flush()
                    last_flush = trio.current_time()

    def _ingest(self) -> None:
        """Add what the node streams received, rebased on the run's clock (trio thread)."""
        while self._inbox:
            name, pid, batch = self._inbox.popleft()
            if self._closed or self._following.get(name, (0, 0))[0] != pid:
                continue
            for event in batch:
                event["t"] = round(float(event["t"]) - self.t0, 6)
                self.recorder.add(event)
            self._following[name] = (pid, int(batch[-1]["seq"]))

    def _started(self, proc: NodeProcess) -> None:
        if self._nursery is not None and not self._closed:
            self._nursery.start_soon(self._follow, proc)

    async def _follow(self, proc: NodeProcess) -> None:
        name = proc.spec.name
        pid = proc.pid
        self._following[name] = (pid, 0)
        self.recorder.record("record_start", node=name, pid=pid)
        address = self.hosts.control_node(proc.spec.name)
        stream = self.hosts.transport.control_stream(address, "Events", cpb.EventsRequest())

        def consume() -> None:
            # No trip into the loop per batch: the loop takes the inbox every INGEST_INTERVAL.
            try:
                for message in stream:
                    if message.events:
                        batch = [json.loads(e.event_json) for e in message.events]
                        self._inbox.append((name, pid, batch))
            except Exception:  # the stream ended: the node is gone or the run stops
                return

        async def watch(done: trio.Event) -> None:
            # The stream ends by itself when the process dies; should it not, a grace period
            # for what is still in flight, then it is cut.
            await proc.process.wait()
            with trio.move_on_after(STREAM_GRACE):
                await done.wait()
            stream.cancel()

        try:
            async with trio.open_nursery() as nursery:
                done = trio.Event()
                nursery.start_soon(watch, done)
                await trio.to_thread.run_sync(
                    consume, abandon_on_cancel=True, limiter=self._threads
                )
                done.set()
                nursery.cancel_scope.cancel()
        finally:
            stream.cancel()
        # A killed process closes its sockets a moment before it can be reaped: give it that.
        with trio.move_on_after(STREAM_GRACE):
            await proc.process.wait()
        self._ingest()
        if not self._closed and self._following.get(name, (0, 0))[0] == pid:
            _, last = self._following.pop(name)
            reason = "process_ended" if not proc.alive else "stream_closed"
            self.recorder.record("record_end", node=name, reason=reason, last_seq=last, pid=pid)

    async def sync(self, timeout: float = SYNC_TIMEOUT) -> None:
        """Take in every event the nodes recorded so far (before the run stops: a node stopped a
        moment after its last events would otherwise lose what it had not shipped yet)."""
        wanted: dict[str, int] = {}

        async def ask(name: str) -> None:
            proc = self.hosts.supervisor.nodes.get(name)
            if proc is None or not proc.alive or proc.paused:
                return
            address = self.hosts.control_node(proc.spec.name)
            try:
                msg = await self.hosts.transport.call_control(
                    address, "Inspect", cpb.InspectRequest(), timeout=timeout
                )
            except OpenSearchError:
                return
            wanted[name] = msg.events_seq

        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for name in list(self._following):
                    nursery.start_soon(ask, name)
            while True:
                self._ingest()
                behind = [
                    n for n, seq in wanted.items() if self._following.get(n, (0, seq))[1] < seq
                ]
                if not behind:
                    return
                await trio.sleep(INGEST_INTERVAL / 2)

    def close(self) -> None:
        """End every node's record (`stopped`) and write the history out, ordered."""
        if self._closed:
            return
        self._ingest()
        for name, (pid, last) in sorted(self._following.items()):
            self.recorder.record("record_end", node=name, reason="stopped", last_seq=last, pid=pid)
        self._closed = True
        self._following.clear()
        if self.writer is not None:
            self.writer.close()
