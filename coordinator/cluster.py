"""The cluster as the coordinator process runs it.

The coordinator process is itself a node of the cluster: a coordinating-only node (roles `[]` by
default) with its own registry (`Cluster.local`) and gRPC server, so that REST-entry tasks such as
`cluster:monitor/tasks/lists` live in a real registry and peers can reach it. Around it: the node
processes (the `Supervisor`), and the cluster state — who is in the cluster, and the cluster
settings of `PUT _cluster/settings` (coordinator/settings.py decides them) — which this process
publishes to every node.

Membership follows OpenSearch's follower checks (`cluster.fault_detection.follower_check.*`: every
1 s, 10 s timeout, 3 retries; a refused connection fails at once): a node that stops answering leaves
the cluster, every request still waiting on it fails with `node_disconnected_exception`, and its
bans are dropped. A node that answers again (resumed, restarted) joins again. Without that a request
to a hung node with no `timeout` would wait forever, as it would in a cluster without fault
detection. The coordinator plays the elected cluster manager's part for publication; the cluster
state names the first `cluster_manager` node as the elected one, as users expect to see it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from coordinator import settings
from coordinator.engine import NodeHosts
from coordinator.indices import DocumentStore, Index, Indices, Timing
from coordinator.results import GetTaskResult, TaskResultsIndex
from coordinator.security import TlsFiles
from coordinator.supervisor import NodeSpec, Supervisor, SupervisorError
from simnode import jsontext
from simnode._wire import node_pb2 as pb
from simnode.discovery import (
    DEFAULT_ATTRIBUTES,
    DEFAULT_ROLES,
    ClusterState,
    DiscoveryNode,
    cluster_uuid_for,
    node_id_for,
)
from simnode.errors import IndexNotFoundError, OpenSearchError
from simnode.history import Recorder, attach
from simnode.node import Node
from simnode.transport import TransportTls
from simnode.wire import cluster_state_to_pb, error_from_pb, task_info_from_pb

PUBLISH_TIMEOUT = 5.0
READY_PUBLISH_TIMEOUT = 30.0


@dataclass(frozen=True)
class FaultDetection:
    """OpenSearch's follower-check settings."""

    enabled: bool = True
    interval: float = 1.0
    timeout: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class NodeConfig:
    name: str
    roles: tuple[str, ...] = DEFAULT_ROLES
    attributes: tuple[tuple[str, str], ...] = DEFAULT_ATTRIBUTES


@dataclass(frozen=True)
class ClusterConfig:
    nodes: tuple[NodeConfig, ...] = field(
        default_factory=lambda: tuple(NodeConfig(f"node-{i}") for i in range(1, 4))
    )
    cluster_name: str = "tasksim"
    seed: int | str = field(default_factory=lambda: secrets.randbelow(2**31))
    coordinator_name: str = "coordinator"
    coordinator_roles: tuple[str, ...] = ()
    coordinator_attributes: tuple[tuple[str, str], ...] = DEFAULT_ATTRIBUTES
    host: str = "127.0.0.1"
    transport_port: int = 0
    fault_detection: FaultDetection = FaultDetection()
    log_dir: Path | None = None
    max_live_tasks: int | None = None  # per node (tasksim.node.max_live_tasks)
    transport_tls: TlsFiles | None = None  # mutual TLS between the processes
    # Where node processes run: `loopback` (all on 127.0.0.1) or `netns` (each in its own network
    # namespace and address, coordinator/engine/netns.py; needs root).
    hosts: str = "loopback"

    @classmethod
    def with_nodes(cls, count: int, **kwargs: Any) -> ClusterConfig:
        return cls(nodes=tuple(NodeConfig(f"node-{i}") for i in range(1, count + 1)), **kwargs)


def process_hosts(config: ClusterConfig) -> NodeHosts:
    """The `real` engine's hosts for `config`: node processes, gRPC, optional mutual TLS."""
    from coordinator.engine.real import ProcessHosts

    node_args: list[str] = []
    if config.max_live_tasks is not None:
        node_args += ["--max-live-tasks", str(config.max_live_tasks)]
    tls: TransportTls | None = None
    if config.transport_tls is not None:
        files = config.transport_tls
        ca = files.ca or files.cert
        node_args += ["--tls-cert", str(files.cert), "--tls-key", str(files.key)]
        node_args += ["--tls-ca", str(ca)]
        tls = TransportTls.from_files(files.cert, files.key, ca)
    supervisor = Supervisor(config.log_dir, tuple(node_args))
    if config.hosts == "netns":
        from coordinator.engine.netns import NetnsHosts

        names = [n.name for n in config.nodes]
        return NetnsHosts(supervisor, names, config.coordinator_name, tls)
    return ProcessHosts(supervisor, tls)


class Cluster:
    def __init__(self, config: ClusterConfig, hosts: NodeHosts | None = None) -> None:
        self.config = config
        self.hosts: NodeHosts = hosts if hosts is not None else process_hosts(config)
        self.transport = self.hosts.transport
        self.state = ClusterState(cluster_name=config.cluster_name)
        # the index model operations build their task trees from, and the indices' documents
        self.indices = Indices(documents=DocumentStore(seed=config.seed))
        self.results = TaskResultsIndex(self.indices, self._data_node_ids)
        self.timing = Timing()
        self._local: Node | None = None
        self._members: dict[
            str, DiscoveryNode
        ] = {}  # every supervised node, in or out of the state
        self._lock = trio.Lock()
        # The last cluster state version each node acknowledged: a node that missed a
        # publication (slow, paused) is sent the current state by its next follower check.
        self._applied: dict[str, int] = {}
        # The run's history (coordinator/history/recording.py), when it is recorded.
        self.recorder: Recorder | None = None
        # Called after `PUT _cluster/settings` changed a setting (the ML service listens).
        self.settings_listeners: list[Callable[[], None]] = []

    @property
    def local(self) -> Node:
        assert self._local is not None, "the cluster is not running"
        return self._local

    def spec_of(self, config: NodeConfig) -> NodeSpec:
        return NodeSpec(
            name=config.name,
            id=node_id_for(self.config.seed, config.name),
            roles=config.roles,
            attributes=config.attributes,
            host=self.hosts.host_of(config.name, self.config.host),
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start the coordinating node and every node process; stop them all on the way out."""
        cfg = self.config
        port = self.hosts.bind_local(cfg.host, cfg.transport_port)
        host = self.hosts.host_of(cfg.coordinator_name, cfg.host)
        me = DiscoveryNode(
            id=node_id_for(cfg.seed, cfg.coordinator_name),
            name=cfg.coordinator_name,
            host=host,
            ip=host,
            port=port,
            roles=cfg.coordinator_roles,
            attributes=cfg.coordinator_attributes,
        )
        self._local = Node(
            me, self.transport, max_live_tasks=cfg.max_live_tasks, clock=self.hosts.clock()
        )
        self._local.on_store_result = self._store_result
        if self.recorder is not None:
            attach(self._local, self.recorder.listener(me.name))
        try:
            async with trio.open_nursery() as nursery:
                await self.hosts.serve_local(self._local, nursery)
                await self._start_nodes([self.spec_of(n) for n in cfg.nodes])
                # The first publication is waited for (a loaded box may be slow): ready means
                # every node knows its peers.
                await self.publish(timeout=READY_PUBLISH_TIMEOUT)
                if cfg.fault_detection.enabled:
                    for name in self._members:
                        nursery.start_soon(self._follower_check, name)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.hosts.stop()

    async def _start_nodes(self, specs: list[NodeSpec]) -> None:
        errors: list[str] = []

        async def one(spec: NodeSpec) -> None:
            try:
                port = await self.hosts.start(spec)
            except SupervisorError as e:
                errors.append(str(e))
                return
            self._members[spec.name] = spec.discovery_node(port)

        async with trio.open_nursery() as nursery:
            for spec in specs:
                nursery.start_soon(one, spec)
        if errors:
            raise SupervisorError(sorted(errors)[0])
        # Keep the configured order (node-1, node-2, ...), whatever order they became ready in.
        self._members = {s.name: self._members[s.name] for s in specs}
        self._set_members(list(self._members))

    def _set_members(self, names: list[str]) -> None:
        nodes = (self.local.local, *(self._members[n] for n in names))
        manager = next((n.id for n in nodes if n.has_role("cluster_manager")), "")
        self.state = ClusterState(
            cluster_name=self.config.cluster_name,
            cluster_uuid=cluster_uuid_for(self.config.seed),
            version=self.state.version + 1,
            cluster_manager_node_id=manager,
            nodes=nodes,
            tasks_index_node_id=self.local.local.id,
            persistent_settings=self.state.persistent_settings,
            transient_settings=self.state.transient_settings,
        )

    async def publish(self, *, timeout: float = PUBLISH_TIMEOUT) -> None:
        """Send the current cluster state to every node in it (and apply it locally)."""
        self.local.set_cluster_state(self.state)
        message = cluster_state_to_pb(self.state)

        async with trio.open_nursery() as nursery:
            for node in self.state.nodes:
                if node.id != self.local.local.id:
                    nursery.start_soon(self._send_state, node, message, timeout)

    async def _send_state(
        self, node: DiscoveryNode, message: pb.ClusterState, timeout: float = PUBLISH_TIMEOUT
    ) -> None:
        try:
            await self.transport.call(node, "SetClusterState", message, timeout=timeout)
        except OpenSearchError:
            return  # the follower checker sends it again, or removes the node
        self._applied[node.id] = max(self._applied.get(node.id, 0), message.version)

    async def catch_up(self, names: list[str] | None = None, *, attempts: int = 3) -> None:
        """Send the current state to the members (`names`, default all) that have not acknowledged
        it: a publication lost to a fault, or to the stale connection of a restarted node. The
        follower checks do this too; without fault detection this is the only way back."""
        for attempt in range(attempts):
            stale = [
                n
                for n in self.state.nodes
                if n.id != self.local.local.id
                and (names is None or n.name in names)
                and self._applied.get(n.id, 0) < self.state.version
            ]
            if not stale:
                return
            if attempt:
                await trio.sleep(0.1 * attempt)
            message = cluster_state_to_pb(self.state)
            async with trio.open_nursery() as nursery:
                for node in stale:
                    nursery.start_soon(self._send_state, node, message)

    def _data_node_ids(self) -> list[str]:
        return [n.id for n in self.state.nodes if n.has_role("data")]

    def _store_result(self, req: pb.StoreResultRequest) -> None:
        """A node stored a finished task's result: the `.tasks` index lives here."""
        self.results.store(
            GetTaskResult(
                completed=True,
                task=task_info_from_pb(req.task),
                response=jsontext.loads(req.response_json)
                if req.HasField("response_json")
                else None,
                error=error_from_pb(req.error) if req.HasField("error") else None,
            ),
            trio.current_time(),
        )

    # -- cluster settings (the metadata's persistent and transient settings) -------------------

    def setting(self, key: str) -> Any:
        """A cluster setting's value in effect (coordinator/settings.py parses it)."""
        st = self.state
        return settings.value(key, dict(st.persistent_settings), dict(st.transient_settings))

    def check_auto_create(self, index: str) -> None:
        """`AutoCreateIndex.shouldAutoCreate`: call before a write creates `index`; raises the
        404 `index_not_found_exception` OpenSearch answers when `action.auto_create_index` says
        no (`no such index [x] and [action.auto_create_index] is [false]`)."""
        auto: settings.AutoCreate = self.setting("action.auto_create_index")
        reason = auto.allows(index)
        if reason is not None:
            err = IndexNotFoundError.of(index)
            err.reason = reason
            err.args = (reason,)
            raise err

    def auto_create(self, name: str) -> Index:
        """The index a write goes to: `name`, created (1 shard, 1 replica, dynamic mapping) when
        missing and `action.auto_create_index` allows it (else `check_auto_create`'s 404)."""
        existing = self.indices.get(name)
        if existing is not None:
            return existing
        self.check_auto_create(name)
        return self.indices.create(name, self._data_node_ids(), now=trio.current_time())

    def check_destructive(self, expression: str) -> None:
        """`DestructiveOperations.failDestructive`: call before deleting the indices `expression`
        names; with `action.destructive_requires_name` a wildcard or `_all` is a 400."""
        settings.fail_destructive(
            expression, bool(self.setting("action.destructive_requires_name"))
        )

    async def update_settings(
        self, persistent: Any, transient: Any, *, ack_timeout: float | None = None
    ) -> tuple[settings.Update, bool]:
        """`PUT _cluster/settings`: validate and apply (all or nothing), then publish the new
        cluster state, as the elected cluster manager does. Returns the update and whether every
        node acknowledged the new state within `ack_timeout` (default `PUBLISH_TIMEOUT`) — the
        answer's `acknowledged`. Raises `settings.SettingsError`."""
        timeout = PUBLISH_TIMEOUT if ack_timeout is None else min(ack_timeout, PUBLISH_TIMEOUT)
        acknowledged = True
        async with self._lock:
            st = self.state
            result = settings.update(
                dict(st.persistent_settings), dict(st.transient_settings), persistent, transient
            )
            if result.changed:
                self.state = replace(
                    st,
                    version=st.version + 1,
                    persistent_settings=tuple(sorted(result.persistent.items())),
                    transient_settings=tuple(sorted(result.transient.items())),
                )
                await self.publish(timeout=timeout)
                acknowledged = all(
                    self._applied.get(n.id, 0) >= self.state.version
                    for n in self.state.nodes
                    if n.id != self.local.local.id
                )
        if result.changed:
            for listener in self.settings_listeners:
                listener()
        return result, acknowledged

    # -- membership ------------------------------------------------------------------------------

    def in_cluster(self, name: str) -> bool:
        return self.state.by_name(name) is not None

    async def node_left(self, name: str) -> None:
        async with self._lock:
            if not self.in_cluster(name):
                return
            self._set_members([n for n in self._members if n != name and self.in_cluster(n)])
            if self.recorder is not None:
                self.recorder.record("node_left", node=name)
            await self.publish()

    async def node_joined(self, name: str) -> None:
        async with self._lock:
            if self.in_cluster(name):
                return
            self._set_members([n for n in self._members if n == name or self.in_cluster(n)])
            if self.recorder is not None:
                self.recorder.record("node_joined", node=name)
            await self.publish()

    async def _follower_check(self, name: str) -> None:
        fd = self.config.fault_detection
        failures = 0
        while True:
            await trio.sleep(fd.interval)
            node = self._members[name]
            try:
                await self.transport.call(node, "Status", pb.Empty(), timeout=fd.timeout)
            except OpenSearchError as e:
                failures += 1
                disconnected = e.type in (  # FollowersChecker: a ConnectTransportException
                    "node_not_connected_exception",
                    "node_disconnected_exception",
                    "connect_transport_exception",
                )
                if (disconnected or failures >= fd.retries) and self.in_cluster(name):
                    await self.node_left(name)
                continue
            failures = 0
            if not self.in_cluster(name):
                await self.node_joined(name)
            elif self._applied.get(node.id, 0) < self.state.version:
                await self._send_state(node, cluster_state_to_pb(self.state))

    # -- process faults (the supervisor's, with membership kept right) -------------------------

    async def restart(self, name: str) -> None:
        """Restart a node process: same name, id and port, a new process that lost its tasks.

        The node leaves the cluster and joins again, as a restarted OpenSearch node does (with or
        without fault detection): every node drops the bans the old process's tasks set (its task
        ids start from 1 again) and its connection to the old process, which gRPC would otherwise
        keep failing in reconnect backoff."""
        async with self._lock:
            if self.in_cluster(name):
                self._set_members([n for n in self._members if n != name and self.in_cluster(n)])
                if self.recorder is not None:
                    self.recorder.record("node_left", node=name)
                await self.publish()
        port = await self.hosts.restart(name)
        self._members[name] = replace(self._members[name], port=port)
        async with self._lock:
            self._set_members([n for n in self._members if n == name or self.in_cluster(n)])
            if self.recorder is not None:
                self.recorder.record("node_joined", node=name)
            await self.publish()
            await self.catch_up([name])
