"""The `real` engine's node hosts: node processes over gRPC on loopback.

Processes are the supervisor's (coordinator/supervisor.py: fork+exec, READY handshake, signals);
the coordinating node is served by a gRPC `NodeServer` in this process; calls go through the gRPC
transport (simnode/transport.py). Pause and resume return once the kernel says the process is
(no longer) stopped — signals land asynchronously.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psutil
import trio

from coordinator.cat import NodeStats
from coordinator.engine import HostState, PacketFilter
from coordinator.supervisor import NodeSpec, Supervisor
from simnode.discovery import DiscoveryNode
from simnode.node import Clock, Node
from simnode.server import NodeServer
from simnode.transport import GrpcTransport, TransportTls

KILL_WAIT = 5.0


async def until_stopped(pid: int, *, stopped: bool, timeout: float = 2.0) -> None:
    """Signals land asynchronously: wait until the process is (no longer) stopped."""
    with trio.move_on_after(timeout):
        while True:
            try:
                status = psutil.Process(pid).status()
            except psutil.Error:
                return
            if (status == psutil.STATUS_STOPPED) == stopped:
                return
            await trio.sleep(0.005)


class ProcessHosts:
    engine = "real"
    net: PacketFilter | None = None

    def __init__(self, supervisor: Supervisor, tls: TransportTls | None = None) -> None:
        self.supervisor = supervisor
        self._tls = tls
        self.transport = GrpcTransport(keepers=True, tls=tls)
        self._server: NodeServer | None = None

    def clock(self) -> Clock | None:
        return None

    def host_of(self, name: str, default: str) -> str:
        return default

    def bind_local(self, host: str, port: int) -> int:
        self._server = NodeServer(host, port, tls=self._tls)
        return self._server.port

    async def serve_local(self, node: Node, nursery: trio.Nursery) -> None:
        assert self._server is not None, "bind_local() first"
        await nursery.start(node.run)
        self._server.start(node, trio.lowlevel.current_trio_token())

    async def start(self, spec: NodeSpec) -> int:
        return (await self.supervisor.start(spec)).port

    async def restart(self, name: str) -> int:
        return (await self.supervisor.restart(name)).port

    async def kill(self, name: str) -> None:
        self.supervisor.kill(name)
        with trio.move_on_after(KILL_WAIT):
            await self.supervisor.get(name).process.wait()  # dead when we answer

    async def pause(self, name: str) -> None:
        self.supervisor.pause(name)
        await until_stopped(self.supervisor.get(name).pid, stopped=True)

    async def resume(self, name: str) -> None:
        self.supervisor.resume(name)
        await until_stopped(self.supervisor.get(name).pid, stopped=False)

    def names(self) -> list[str]:
        return list(self.supervisor.nodes)

    def control_host(self, spec: NodeSpec) -> str:
        """The address the control channel reaches the node at."""
        return spec.host

    def control_node(self, name: str) -> DiscoveryNode:
        """The node as the control channel (rules, inspection, history) calls it."""
        proc = self.supervisor.get(name)
        return replace(proc.spec, host=self.control_host(proc.spec)).discovery_node(proc.port)

    def state(self, name: str) -> HostState:
        proc = self.supervisor.get(name)
        return HostState(
            name=name,
            id=proc.spec.id,
            host=proc.spec.host,
            control_host=self.control_host(proc.spec),
            port=proc.port,
            alive=proc.alive,
            paused=proc.paused and proc.alive,
            restarts=proc.restarts,
            pid=proc.pid,
        )

    def can_hear(self, name: str) -> bool:
        proc = self.supervisor.nodes.get(name)
        return proc is not None and proc.alive and not proc.paused

    def stats_reader(self) -> Callable[[int], NodeStats]:
        from coordinator.rest_cat import process_stats

        cpu = round(psutil.cpu_percent(interval=None))  # since the previous call, machine-wide
        return lambda pid: process_stats(pid, cpu)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
        await self.supervisor.stop_all()
        self.transport.close()
