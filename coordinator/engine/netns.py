"""The `netns` node hosts: every node process in its own network namespace, with its own address.

What it owns: the private network of one cluster, from creation to removal, and the nftables
rules that `level: net` faults install in it. What it must never do: touch a namespace, link,
route or rule that is not this cluster's, or one of another cluster whose owner still lives.

The network. A cluster gets a random id (6 hex digits) and a /24 in 10.213.0.0/16 that overlaps no
route of the machine (checked under a lock, against `ip route show table all`, before anything is
made). tasksim then makes:

- a router namespace `tsim-<id>-r` holding a bridge `tsim-<id>`;
- one namespace per node, `tsim-<id>-n<i>` (i in configured order), whose `eth0` (address
  `.<i+1>`) is a veth into the bridge;
- one veth from the machine's own namespace into the bridge, `tsim-<id>-c`, with address `.1`: the
  coordinating node's transport listens there. The REST API stays on 127.0.0.1;
- a second address per node, `.<i+129>`, on which the node serves the control channel alone (rule
  pushes, inspection, histories): no packet rule names it, so a `level: net` fault never cuts it.

Node processes are the supervisor's (fork+exec on its spawner thread): the command is
`ip netns exec tsim-<id>-n<i> python -m simnode ...`, and `ip` execs the node in place (same pid,
same parent, so PR_SET_PDEATHSIG still ties it to us). Each node listens on its own address, port
9300 as OpenSearch does. Kill, pause and restart are the `real` engine's; a restarted node keeps its
namespace, so its address and port.

Packet faults. `apply()` installs compiled `PacketRule`s (coordinator/netfaults.py): one table
`inet tasksim` per node namespace, with an `input` and an `output` chain, rebuilt whole in one nft
transaction on every change (so a removed fault's rules go, and only they: every rule carries its
fault id in a comment). A rule drops or resets packets where they arrive (the receiving node's
`input`), or where they leave when the receiver is the coordinating node (the sender's `output`):
the machine's own namespace is never given a rule. A reset rule lets resets through: the callee's
reset to a rejected request leaves by the link's other half, whose rule would otherwise eat it.

Guaranteed removal. The state file `/run/tasksim/<id>.json`, written before anything is made,
names the owner (pid and start time) and everything the cluster makes. `stop()` removes it all
(namespaces take their veths, bridge and nftables tables with them). A coordinator killed with
SIGKILL cannot; `clean_stale()` — run by every `tasksim up --hosts netns` and by `tasksim clean` —
removes what a state file lists whose owner is dead (its pid gone, or reused by another process),
and only names that carry that file's `tsim-<id>` prefix. A live owner's files, and anything no
state file lists, are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio

from coordinator.engine.real import ProcessHosts
from coordinator.netfaults import PacketRule, nft_comment, nft_tag
from coordinator.supervisor import NodeSpec, Supervisor, SupervisorError
from simnode.transport import TransportTls

PREFIX = "tsim-"
STATE_DIR = Path(os.environ.get("TASKSIM_RUN_DIR", "/run/tasksim"))
POOL = ipaddress.IPv4Network("10.213.0.0/16")
NODE_PORT = 9300  # every node has its own address: each listens on OpenSearch's transport port
TABLE = "inet tasksim"
CMD_TIMEOUT = 30.0
CONTROL_OFFSET = 128  # node i: `.<i+1>` its transport, `.<i+129>` its control channel
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


class NetnsError(SupervisorError):
    """The network could not be made or changed (one clear line)."""


def effective_capabilities() -> int:
    """This process's effective capability bits (0 when they cannot be read)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff")), 16)
    except (OSError, StopIteration, ValueError):
        return 0


def netns_problem() -> str | None:
    """Why this machine cannot run `--hosts netns` (one line), or None."""
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"--hosts netns needs the '{tool}' command (Debian package {package})"
    if os.geteuid() != 0:
        caps = effective_capabilities()
        if not (caps >> CAP_NET_ADMIN) & 1 or not (caps >> CAP_SYS_ADMIN) & 1:
            return (
                "--hosts netns needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network "
                "namespaces"
            )
    return None


def _run(cmd: list[str], stdin: str | None = None, *, check: bool = True) -> str:
    try:
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetnsError(f"{' '.join(cmd[:4])}: {e}") from None
    if check and done.returncode != 0:
        err = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise NetnsError(f"{' '.join(cmd[:5])}: {err}")
    return done.stdout


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), to tell a pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _owner_alive(pid: int, start: int | None) -> bool:
    return start is not None and _start_time(pid) == start


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One tasksim at a time chooses a subnet and makes its network, across processes."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = json.loads(_run(["ip", "-4", "-j", "route", "show", "table", "all"]) or "[]")
    used = []
    for route in out:
        dst = route.get("dst", "")
        if dst in ("", "default"):
            continue
        with contextlib.suppress(ValueError):
            used.append(ipaddress.ip_network(dst, strict=False))
    return used


def _claimed_subnets() -> set[str]:
    """Subnets that state files hold (a cluster being made has no route yet)."""
    claimed = set()
    for path in STATE_DIR.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            claimed.add(json.loads(path.read_text())["subnet"])
    return claimed


def choose_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    claimed = _claimed_subnets()
    for net in POOL.subnets(new_prefix=24):
        if str(net) in claimed or any(net.overlaps(u) for u in used):
            continue
        return net
    raise NetnsError(f"no free /24 in {POOL}: every one overlaps a route of this machine")


@dataclass
class Network:
    """One cluster's namespaces and links, and the state file that lists them."""

    id: str
    subnet: ipaddress.IPv4Network
    names: list[str]  # node names in configured order
    owner: int = field(default_factory=os.getpid)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}"

    @property
    def router(self) -> str:
        return f"{self.prefix}-r"

    @property
    def uplink(self) -> str:
        return f"{self.prefix}-c"

    def namespace(self, name: str) -> str:
        return f"{self.prefix}-n{self.names.index(name) + 1}"

    @property
    def namespaces(self) -> list[str]:
        return [self.namespace(n) for n in self.names] + [self.router]

    def address(self, index: int) -> str:
        """`.1` the coordinating node, `.2`... the nodes in order."""
        return str(self.subnet.network_address + 1 + index)

    def address_of(self, name: str) -> str:
        return self.address(self.names.index(name) + 1)

    def control_address_of(self, name: str) -> str:
        """A node's second address, for the control channel alone: no packet rule names it."""
        return self.address(self.names.index(name) + 1 + CONTROL_OFFSET)

    @property
    def state_file(self) -> Path:
        return STATE_DIR / f"{self.id}.json"

    def write_state(self) -> None:
        state = {
            "id": self.id,
            "owner_pid": self.owner,
            "owner_start": _start_time(self.owner),
            "subnet": str(self.subnet),
            "namespaces": self.namespaces,
            "links": [self.uplink],
            "nodes": {
                n: {"namespace": self.namespace(n), "address": self.address_of(n)}
                for n in self.names
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def create(self) -> None:
        """Make everything; on any failure remove what was made and raise."""
        try:
            with _locked():
                self.subnet = choose_subnet()
                self.write_state()
                self._create()
        except BaseException:
            self.destroy()
            raise

    def _create(self) -> None:
        bridge = self.prefix
        length = self.subnet.prefixlen
        _run(["ip", "-batch", "-"], "".join(f"netns add {ns}\n" for ns in self.namespaces))
        lines = ["link set lo up", f"link add {bridge} type bridge", f"link set {bridge} up"]
        for i, name in enumerate(self.names, start=1):
            lines += [
                f"link add n{i} type veth peer name eth0 netns {self.namespace(name)}",
                f"link set n{i} master {bridge}",
                f"link set n{i} up",
            ]
        lines += [
            f"link add c type veth peer name {self.uplink} netns {os.getpid()}",
            f"link set c master {bridge}",
            "link set c up",
        ]
        _run(["ip", "-n", self.router, "-batch", "-"], "\n".join(lines) + "\n")
        _run(["ip", "addr", "add", f"{self.address(0)}/{length}", "dev", self.uplink])
        _run(["ip", "link", "set", self.uplink, "up"])
        for name in self.names:
            batch = (
                "link set lo up\n"
                f"addr add {self.address_of(name)}/{length} dev eth0\n"
                f"addr add {self.control_address_of(name)}/{length} dev eth0\n"
                "link set eth0 up\n"
            )
            _run(["ip", "-n", self.namespace(name), "-batch", "-"], batch)

    def destroy(self) -> None:
        remove_listed(self.prefix, [self.uplink], self.namespaces, kill=False)
        self.state_file.unlink(missing_ok=True)


def _existing_namespaces() -> set[str]:
    out = _run(["ip", "-j", "netns", "list"], check=False) or "[]"
    try:
        return {n["name"] for n in json.loads(out)}
    except (ValueError, KeyError, TypeError):
        return set()


def remove_listed(
    prefix: str, links: Sequence[str], namespaces: Sequence[str], *, kill: bool
) -> list[str]:
    """Delete the links and namespaces named (only those that carry `prefix`); what was removed.
    `kill`: first SIGKILL the processes still inside those namespaces (a dead owner's nodes)."""
    removed = []
    for link in links:
        if link.startswith(prefix) and _run(["ip", "link", "show", link], check=False):
            _run(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    existing = _existing_namespaces()
    for ns in namespaces:
        if not ns.startswith(prefix) or ns not in existing:
            continue
        if kill:
            for pid in _run(["ip", "netns", "pids", ns], check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
        _run(["ip", "netns", "del", ns], check=False)
        removed.append(f"netns {ns}")
    return removed


def clean_stale() -> list[str]:
    """Remove what SIGKILLed coordinators left (their state files say what); what was removed.
    Nothing of a live owner's, nothing without the state file's own `tsim-<id>` prefix."""
    if not STATE_DIR.is_dir():
        return []
    removed: list[str] = []
    with _locked():
        for path in sorted(STATE_DIR.glob("*.json")):
            try:
                state = json.loads(path.read_text())
                cid = str(state["id"])
                pid, start = int(state["owner_pid"]), state.get("owner_start")
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if path.stem != cid or not all(c in "0123456789abcdef" for c in cid) or len(cid) != 6:
                continue
            if _owner_alive(pid, start):
                continue
            prefix = f"{PREFIX}{cid}"
            removed += remove_listed(
                prefix, list(state.get("links", [])), list(state.get("namespaces", [])), kill=True
            )
            path.unlink(missing_ok=True)
            removed.append(f"state {path}")
    return removed


def parse_counts(listing: str) -> dict[str, int]:
    """`nft -j list table inet tasksim` → packets counted per fault tag."""
    try:
        items = json.loads(listing)["nftables"] if listing.strip() else []
    except (ValueError, KeyError, TypeError):
        return {}
    counts: dict[str, int] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule or not str(rule.get("comment", "")).startswith("tasksim:"):
            continue
        tag = str(rule["comment"])[len("tasksim:") :]
        for expr in rule.get("expr", []):
            if isinstance(expr, dict) and "counter" in expr:
                counts[tag] = counts.get(tag, 0) + int(expr["counter"].get("packets", 0))
    return counts


def render_rules(
    rules: Sequence[PacketRule], net: Network, coordinator: str, ports: dict[str, int]
) -> dict[str, list[str]]:
    """Each node namespace's nft rules (`chain` + statement) for `rules`, in install order."""
    out: dict[str, list[str]] = {net.namespace(n): [] for n in net.names}

    def addr(name: str) -> str:
        return net.address(0) if name == coordinator else net.address_of(name)

    for rule in rules:
        # Both addresses: the control channel (a node's second address) is never cut.
        match = f"ip saddr {addr(rule.src)} ip daddr {addr(rule.dst)}"
        if rule.dst != coordinator:
            ns, chain = net.namespace(rule.dst), "input"
        else:
            ns, chain = net.namespace(rule.src), "output"
        if rule.port == "dst":
            match += f" tcp dport {ports[rule.dst]}"
        elif rule.port == "src":
            match += f" tcp sport {ports[rule.src]}"
        if rule.p < 1.0:
            match += f" numgen random mod 1000 < {round(rule.p * 1000)}"
        # A reset is answered with a reset, which must not be cut by the link's other half (the
        # answers' rule sees the reset leave): resets pass reset rules.
        verdict = (
            "drop"
            if rule.verdict == "drop"
            else "meta l4proto tcp tcp flags & rst == 0 reject with tcp reset"
        )
        tag = nft_comment(rule.fault)  # `counter`: `nft list ruleset` shows what each rule cut
        out[ns].append(f"add rule {TABLE} {chain} {match} counter {verdict} comment {tag}")
    return out


class NetnsHosts(ProcessHosts):
    """Node processes in network namespaces (see the module docstring)."""

    def __init__(
        self,
        supervisor: Supervisor,
        names: list[str],
        coordinator: str,
        tls: TransportTls | None = None,
    ) -> None:
        super().__init__(supervisor, tls)
        self.network = Network(secrets.token_hex(3), POOL, list(names))
        self.coordinator = coordinator
        self.net = self
        supervisor.wrap = self._wrap
        self._tables: set[str] = set()  # namespaces that hold a tasksim table
        self._cut: dict[str, int] = {}  # packets cut under earlier installs, by fault tag
        self._made = False

    def _wrap(self, spec: NodeSpec, cmd: list[str]) -> list[str]:
        ns = self.network.namespace(spec.name)
        control = self.network.control_address_of(spec.name)
        return ["ip", "netns", "exec", ns, *cmd, "--control-host", control]

    def control_host(self, spec: NodeSpec) -> str:
        return self.network.control_address_of(spec.name)

    # -- the network -------------------------------------------------------------------------------

    def host_of(self, name: str, default: str) -> str:
        if name == self.coordinator:
            return self.network.address(0)
        return self.network.address_of(name)

    def bind_local(self, host: str, port: int) -> int:
        if not self._made:
            problem = netns_problem()
            if problem is not None:
                raise NetnsError(problem)
            clean_stale()
            self.network.create()
            self._made = True
        try:
            return super().bind_local(self.network.address(0), port)
        except BaseException:
            self.network.destroy()
            self._made = False
            raise

    async def start(self, spec: NodeSpec) -> int:
        spec = replace(spec, host=self.network.address_of(spec.name), port=spec.port or NODE_PORT)
        return await super().start(spec)

    async def _read_counts(self) -> dict[str, int]:
        """Packets each fault's rules cut since they were last installed, by comment tag."""
        counts: dict[str, int] = {}

        async def one(ns: str) -> None:
            cmd = ["ip", "netns", "exec", ns, "nft", "-j", "list", "table", *TABLE.split()]
            out = await trio.to_thread.run_sync(lambda: _run(cmd, check=False))
            for tag, packets in parse_counts(out).items():
                counts[tag] = counts.get(tag, 0) + packets

        async with trio.open_nursery() as nursery:
            for ns in sorted(self._tables):
                nursery.start_soon(one, ns)
        return counts

    async def counts(self) -> dict[str, int]:
        """Packets each installed fault's rules cut so far, by fault id tag (`nft_tag`)."""
        now = await self._read_counts()
        return {tag: self._cut.get(tag, 0) + now.get(tag, 0) for tag in {*self._cut, *now}}

    async def apply(self, rules: Sequence[PacketRule]) -> None:
        """Install exactly `rules` (every namespace's tasksim table rebuilt in one transaction)."""
        # Rebuilding a table zeroes its counters: keep what the faults that stay have cut.
        kept = {nft_tag(r.fault) for r in rules}
        for tag, packets in (await self._read_counts()).items():
            self._cut[tag] = self._cut.get(tag, 0) + packets
        self._cut = {tag: n for tag, n in self._cut.items() if tag in kept}
        ports = {
            n: self.supervisor.get(n).port for n in self.network.names if n in self.supervisor.nodes
        }
        ports[self.coordinator] = self._local_port
        per_ns = render_rules(rules, self.network, self.coordinator, ports)

        async def one(ns: str, lines: list[str]) -> None:
            if not lines:
                if ns in self._tables:
                    await trio.to_thread.run_sync(
                        _run, ["ip", "netns", "exec", ns, "nft", "delete", "table", *TABLE.split()]
                    )
                    self._tables.discard(ns)
                return
            script = (
                f"table {TABLE} {{\n"
                "  chain input { type filter hook input priority 0; policy accept; }\n"
                "  chain output { type filter hook output priority 0; policy accept; }\n"
                "}\n"
                f"flush table {TABLE}\n" + "\n".join(lines) + "\n"
            )
            await trio.to_thread.run_sync(
                lambda: _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], script)
            )
            self._tables.add(ns)

        try:
            async with trio.open_nursery() as nursery:
                for ns, lines in per_ns.items():
                    nursery.start_soon(one, ns, lines)
        except BaseExceptionGroup as group:
            found = group.subgroup(NetnsError)
            if found is None:
                raise
            raise NetnsError(str(found.exceptions[0])) from None

    @property
    def _local_port(self) -> int:
        assert self._server is not None
        return self._server.port

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            if self._made:
                await trio.to_thread.run_sync(self.network.destroy)
                self._made = False


def describe_network(hosts: NetnsHosts) -> str:
    net = hosts.network
    return f"  network: namespaces {net.prefix}-*, subnet {net.subnet} (state {net.state_file})"
