"""The nemesis: the coordinator's fault controller, for REST (`/_sim/faults`, `/_sim/nodes`), the
Python client and the scenario runner.

It owns the run's rule table — rules in install order, several per fault id — and its version,
which goes up with every change. Every change is pushed, whole, to every process (the coordinating
node included) over the control channel, which faults never touch; each process acknowledges the
version it applied and `applied` records it. A process that cannot hear (paused, dead) is skipped
and catches up when it is resumed or restarted. Process faults go to the supervisor (kill, pause,
resume) or the cluster (restart, which keeps membership right), through the node-host
interface (coordinator/engine/), whichever engine runs the nodes.

Every fault has a level. `transport` (the default) rules are the ones above. `net` faults become
packet rules (coordinator/netfaults.py) that the node hosts' packet filter installs — nftables in
the nodes' network namespaces (coordinator/engine/netns.py); hosts without one (loopback, sim)
refuse them with a 400. Each change reinstalls the whole packet rule set, so a removed fault's
packets flow again at once.

`heal()` is the one way back to a clean cluster and is idempotent: clear every rule (both levels),
resume every paused node, restart every dead one, and push until every process runs the empty rule
set.

It decides nothing about what a fault does (simnode/faults.py) and never touches a registry.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio

from coordinator.cluster import Cluster
from coordinator.engine import NodeHosts
from coordinator.faultspec import (
    FaultSpec,
    LinkFault,
    Partition,
    rule_to_json,
    to_packet_rules,
    to_rules,
)
from coordinator.netfaults import PacketRule, nft_tag
from coordinator.supervisor import SupervisorError
from simnode._wire import control_pb2 as cpb
from simnode.control import rule_set_to_pb
from simnode.discovery import DiscoveryNode
from simnode.driver import Transport
from simnode.errors import IllegalArgumentError, OpenSearchError, ResourceNotFoundError
from simnode.faults import Rule, RuleSet

PUSH_TIMEOUT = 2.0
INSPECT_TIMEOUT = 1.0


class Nemesis:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.rules: list[Rule] = []  # transport level
        self.packet_rules: list[PacketRule] = []  # net level
        self.levels: dict[str, str] = {}  # every installed fault's id → level, in install order
        self.version = 0
        self.applied: dict[str, int] = {}
        self.push_errors: dict[str, str] = {}  # why the last push to a process failed
        self._lock = trio.Lock()
        self._ids = itertools.count(1)

    @property
    def transport(self) -> Transport:
        return self.cluster.transport

    @property
    def hosts(self) -> NodeHosts:
        return self.cluster.hosts

    @property
    def coordinator_name(self) -> str:
        return self.cluster.local.local.name

    def names(self) -> list[str]:
        """Every process of the run: the coordinating node, then the nodes in configured order."""
        return [self.coordinator_name, *(n.name for n in self.cluster.config.nodes)]

    def _check_node(self, name: str) -> None:
        if name == self.coordinator_name:
            raise IllegalArgumentError(
                f"[{name}] is the coordinating node: it runs in this process and cannot be "
                "killed, paused or restarted"
            )
        if name not in self.hosts.names():
            raise ResourceNotFoundError(
                f"no node named [{name}] (nodes: {', '.join(self.names()[1:])})"
            )

    def _address(self, name: str) -> DiscoveryNode:
        if name == self.coordinator_name:
            return self.cluster.local.local
        st = self.hosts.state(name)
        host = st.control_host or st.host  # netns: an address no packet rule names
        return DiscoveryNode(id=st.id, name=name, host=host, ip=host, port=st.port)

    def _can_hear(self, name: str) -> bool:
        if name == self.coordinator_name:
            return True
        return self.hosts.can_hear(name)

    # -- the rule table ---------------------------------------------------------------------------

    async def _push(self, names: list[str] | None = None) -> dict[str, bool]:
        """Send the current rule set to `names` (default: everyone); who acknowledged it."""
        message = rule_set_to_pb(
            RuleSet(self.version, str(self.cluster.config.seed), tuple(self.rules))
        )
        acked: dict[str, bool] = {}

        async def one(name: str) -> None:
            if not self._can_hear(name):
                self.push_errors[name] = "paused or dead"
                acked[name] = False
                return
            try:
                ack = await self.transport.call_control(
                    self._address(name), "SetRules", message, timeout=PUSH_TIMEOUT
                )
            except OpenSearchError as e:
                self.push_errors[name] = e.reason
                acked[name] = False
                return
            self.applied[name] = ack.version
            acked[name] = ack.version == self.version
            if acked[name]:
                self.push_errors.pop(name, None)
            else:
                self.push_errors[name] = f"acknowledged version {ack.version}"

        async with trio.open_nursery() as nursery:
            for name in names if names is not None else self.names():
                nursery.start_soon(one, name)
        return {n: acked[n] for n in self.names() if n in acked}

    async def _catch_up(self) -> None:
        stale = [n for n in self.names() if self.applied.get(n, 0) != self.version]
        if stale:
            await self._push(stale)

    async def install(self, specs: list[FaultSpec]) -> dict[str, Any]:
        async with self._lock:
            known = self.names()
            taken = {*self.levels, *(r.id for r in self.rules)}
            new: list[Rule] = []
            new_packets: list[PacketRule] = []
            ids: list[str] = []
            for spec in specs:
                fault_id = spec.id or self._next_id(spec.kind, taken)
                if fault_id in taken:
                    raise IllegalArgumentError(f"a fault with id [{fault_id}] is installed already")
                if spec.level == "net" and self.hosts.net is None:
                    raise IllegalArgumentError(
                        f"fault [{fault_id}]: level [net] cuts packets between network "
                        "namespaces, and this cluster's nodes share the machine's loopback: start "
                        "it with `tasksim up --hosts netns` (or use level [transport])"
                    )
                try:
                    if spec.level == "net":
                        new_packets.extend(to_packet_rules(spec, fault_id, known))
                    else:
                        new.extend(to_rules(spec, fault_id, known))
                except ValueError as e:
                    raise IllegalArgumentError(str(e)) from e
                taken.add(fault_id)
                ids.append(fault_id)
            try:  # validate before storing: a rule the wire cannot carry would fail every push
                rule_set_to_pb(RuleSet(self.version + 1, "0", (*self.rules, *new)))
            except ValueError as e:
                raise IllegalArgumentError(f"the fault cannot be sent to the nodes: {e}") from e
            self.rules.extend(new)
            for fault_id, spec in zip(ids, specs, strict=True):
                self.levels[fault_id] = spec.level
            self.version += 1
            if new_packets:
                self.packet_rules.extend(new_packets)
                await self._apply_packets()
            acked = await self._push()
            for fault_id, spec in zip(ids, specs, strict=True):
                if spec.level == "net":
                    rules = [r.to_json() for r in new_packets if r.fault == fault_id]
                else:
                    rules = [rule_to_json(r) for r in new if r.id == fault_id]
                self._record_fault(fault_id, spec, rules)
            return {"acknowledged": True, "version": self.version, "ids": ids, "nodes": acked}

    async def _apply_packets(self) -> None:
        """Install the current packet rules; a failure is a 500 that says why (the rules stay
        recorded, so that a remove or a heal still takes them out)."""
        if self.hosts.net is None:
            return
        try:
            await self.hosts.net.apply(list(self.packet_rules))
        except SupervisorError as e:
            raise OpenSearchError(f"the packet rules could not be installed: {e}") from e

    def _record(self, type: str, **fields: Any) -> None:
        if self.cluster.recorder is not None:
            self.cluster.recorder.record(type, **fields)

    def _record_fault(self, fault_id: str, spec: FaultSpec, rules: list[dict[str, Any]]) -> None:
        """`nodes`: who the fault cuts off — for a partition, every node outside the coordinating
        node's side; for a link or a slow node, every node its rules name (empty: all)."""
        if isinstance(spec, Partition):
            groups = [set(g) for g in spec.groups]
            listed = set().union(*groups)
            groups.append({n for n in self.names() if n not in listed})
            mine = next(g for g in groups if self.coordinator_name in g)
            names = sorted(n for n in self.names() if n not in mine)
        elif isinstance(spec, LinkFault):  # the names it gives, whatever its level
            names = sorted({*spec.from_, *spec.to})
        else:
            names = sorted({*spec.node, *spec.from_})
        self._record(
            "fault_start",
            fault=fault_id,
            kind=spec.kind,
            level=spec.level,
            nodes=names,
            rules=rules,
            version=self.version,
        )

    def _record_ends(self, before: list[str]) -> None:
        """`fault_end` for every fault of `before` (ids) that is no longer installed."""
        for fault_id in before:
            if fault_id not in self.levels:
                self._record("fault_end", fault=fault_id, version=self.version)

    def _next_id(self, kind: str, taken: set[str]) -> str:
        while True:
            candidate = f"{kind}-{next(self._ids)}"
            if candidate not in taken:
                return candidate

    async def remove(self, fault_id: str) -> dict[str, Any]:
        async with self._lock:
            if fault_id not in self.levels:
                raise ResourceNotFoundError(f"fault [{fault_id}] is not installed")
            before = list(self.levels)
            del self.levels[fault_id]
            self.rules = [r for r in self.rules if r.id != fault_id]
            self.version += 1
            if any(r.fault == fault_id for r in self.packet_rules):
                self.packet_rules = [r for r in self.packet_rules if r.fault != fault_id]
                await self._apply_packets()
            acked = await self._push()
            self._record_ends(before)
            return {"acknowledged": True, "version": self.version, "nodes": acked}

    async def clear(self) -> dict[str, Any]:
        async with self._lock:
            before = self._forget_all()
            self.version += 1
            await self._apply_packets()
            acked = await self._push()
            self._record_ends(before)
            return {"acknowledged": True, "version": self.version, "nodes": acked}

    def _forget_all(self) -> list[str]:
        """Every rule of both levels forgotten (not yet applied); the ids that were installed."""
        before = list(self.levels)
        self.rules, self.packet_rules, self.levels = [], [], {}
        return before

    async def describe_live(self) -> dict[str, Any]:
        """`describe()`, and for each net-level fault the packets its rules cut so far."""
        out = self.describe()
        if self.hosts.net is not None and any(v == "net" for v in self.levels.values()):
            try:
                counts = await self.hosts.net.counts()
            except SupervisorError:
                counts = {}
            for fault in out["faults"]:
                if fault["level"] == "net":
                    fault["packets_cut"] = counts.get(nft_tag(fault["id"]), 0)
        return out

    def describe(self) -> dict[str, Any]:
        faults: dict[str, list[dict[str, Any]]] = {k: [] for k in self.levels}
        for rule in self.rules:
            faults.setdefault(rule.id, []).append(rule_to_json(rule))
        for packet in self.packet_rules:
            faults.setdefault(packet.fault, []).append(packet.to_json())
        return {
            "version": self.version,
            "faults": [
                {"id": k, "level": self.levels.get(k, "transport"), "rules": v}
                for k, v in faults.items()
            ],
            "nodes": {
                n: {"applied_version": self.applied.get(n, 0), "can_hear": self._can_hear(n)}
                for n in self.names()
            },
        }

    # -- process faults ---------------------------------------------------------------------------

    async def kill(self, name: str) -> dict[str, Any]:
        self._check_node(name)
        async with self._lock:
            await self.hosts.kill(name)  # dead when we answer
            self._record("kill", node=name)
            self.applied.pop(name, None)
        return self.process_state(name)

    async def pause(self, name: str) -> dict[str, Any]:
        self._check_node(name)
        async with self._lock:
            await self.hosts.pause(name)
            self._record("pause", node=name)
        return self.process_state(name)

    async def resume(self, name: str) -> dict[str, Any]:
        self._check_node(name)
        async with self._lock:
            await self.hosts.resume(name)
            self._record("resume", node=name)
            await self._catch_up()
        return self.process_state(name)

    async def restart(self, name: str) -> dict[str, Any]:
        self._check_node(name)
        async with self._lock:
            self.applied.pop(name, None)
            self._record("restart", node=name)
            try:
                await self.cluster.restart(name)
            except SupervisorError as e:
                raise OpenSearchError(str(e)) from e
            await self._catch_up()
        return self.process_state(name)

    async def heal(self) -> dict[str, Any]:
        """Clear every rule, resume every paused node, restart every dead one. Idempotent."""
        async with self._lock:
            states = [self.hosts.state(n) for n in self.hosts.names()]
            resumed = [s.name for s in states if s.alive and s.paused]
            dead = [s.name for s in states if not s.alive]
            before = self._forget_all()
            self.version += 1
            errors: list[str] = []
            try:
                await self._apply_packets()
            except OpenSearchError as e:
                errors.append(e.reason)
            for name in resumed:
                await self.hosts.resume(name)
            self._record_ends(before)
            for name in resumed:
                self._record("resume", node=name)
            # The empty rule set first: a restart publishes the cluster state, which the old
            # rules could still lose (and a black-holed publication waits out its timeout).
            acked = await self._push()
            restarted: list[str] = []
            for name in dead:
                self.applied.pop(name, None)
                self._record("restart", node=name)
                try:
                    await self.cluster.restart(name)
                    restarted.append(name)
                except SupervisorError as e:
                    errors.append(str(e))
            if restarted:
                await self._catch_up()
                acked = {n: self.applied.get(n) == self.version for n in self.names()}
            # A node that missed a publication under the old rules gets the current state.
            await self.cluster.catch_up()
            self._record("heal", resumed=resumed, restarted=restarted)
            report: dict[str, Any] = {
                "acknowledged": all(acked.values()) and not errors,
                "version": self.version,
                "resumed": resumed,
                "restarted": restarted,
                "nodes": acked,
            }
            errors += [f"[{n}] {e}" for n, e in self.push_errors.items() if not acked.get(n)]
            if errors:
                report["errors"] = errors
            return report

    def process_state(self, name: str) -> dict[str, Any]:
        if name == self.coordinator_name:
            me = self.cluster.local.local
            return {
                "name": name,
                "id": me.id,
                "transport_address": me.transport_address,
                "coordinator": True,
                "alive": True,
                "paused": False,
                "in_cluster": True,
                "rules_version": self.applied.get(name, 0),
            }
        st = self.hosts.state(name)
        return {
            "name": name,
            "id": st.id,
            "transport_address": f"{st.host}:{st.port}",
            "pid": st.pid,
            "alive": st.alive,
            "paused": st.paused,
            "in_cluster": self.cluster.in_cluster(name),
            "restarts": st.restarts,
            "rules_version": self.applied.get(name, 0),
        }

    # -- ground truth -----------------------------------------------------------------------------

    async def inspect(self, *, tasks: bool) -> dict[str, Any]:
        """Every process's bans (and live tasks), read over the control channel."""
        out: dict[str, Any] = {}

        async def one(name: str) -> None:
            entry = self.process_state(name)
            if not self._can_hear(name):
                entry["reachable"] = False
                out[name] = entry
                return
            try:
                msg = await self.transport.call_control(
                    self._address(name),
                    "Inspect",
                    cpb.InspectRequest(tasks=tasks),
                    timeout=INSPECT_TIMEOUT,
                )
            except OpenSearchError as e:
                entry["reachable"] = False
                entry["error"] = e.xcontent()
                out[name] = entry
                return
            entry["reachable"] = True
            entry["rules_version"] = msg.rules_version
            entry["bans"] = [
                {"parent_task_id": b.parent_task_id, "reason": b.reason, "mark": b.mark}
                for b in msg.bans
            ]
            entry["hits"] = {h.rule_id: h.hits for h in msg.hits}
            if tasks:
                entry["tasks"] = [
                    {
                        "id": t.id,
                        "parent_task_id": t.parent_task_id or None,
                        "action": t.action,
                        "cancellable": t.cancellable,
                        "cancelled": t.cancelled,
                        "start_time_in_millis": t.start_time_in_millis,
                    }
                    for t in msg.tasks
                ]
            out[name] = entry

        async with trio.open_nursery() as nursery:
            for name in self.names():
                nursery.start_soon(one, name)
        return {n: out[n] for n in self.names()}
