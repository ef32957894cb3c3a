"""Start a real tasksim cluster (the `tasksim up` process) from a test, and always stop it.

`running_cluster()` starts `python -m coordinator up --port 0 ...` — the same code as the `tasksim`
command, from the same installation as this module — waits for its ready line, and on exit, also
when the test failed, sends SIGTERM, then SIGKILL, to the coordinator and to every node process it
started. `RunningCluster` is what a test holds: the URL, the nodes (name, id, address, roles), plain
`request/get/post` (errors are answers, never exceptions), the node processes (psutil), and `sim`,
the fault client (coordinator/client.py). `TasksimCluster` is that harness API as a protocol: a
simulated cluster (simcluster.py, the `sim` engine) offers the same.

It starts processes and reads their output; it never decides what a cluster does and never imports
from the project's own tests.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from coordinator.client import WALL_CLOCK, Clock
from coordinator.testing.faults import Faults

# The directory that holds the `coordinator` and `simnode` packages: node processes run this code.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
READY = re.compile(r"REST API on (https?)://[^\s/]+:(\d+)")
NODE_LINE = re.compile(r"^\s+(\S+)\s+(\S{22})\s+(\S+)\s+roles=(\S*)$")


@dataclass
class Node:
    name: str
    id: str
    address: str
    roles: list[str]


class TasksimCluster(Protocol):
    """What a test holds, on either engine: `RunningCluster` (real) or `SimCluster` (sim)."""

    @property
    def engine(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def nodes(self) -> list[Node]: ...

    @property
    def names(self) -> list[str]: ...

    @property
    def sim(self) -> Faults: ...

    @property
    def clock(self) -> Clock: ...

    def node(self, name: str) -> Node: ...

    def name_of(self, node_id: str) -> str: ...

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any, dict[str, str]]: ...

    def get(self, path: str, **kw: Any) -> tuple[int, Any]: ...

    def post(self, path: str, **kw: Any) -> tuple[int, Any]: ...


class ClusterNodes:
    """What both engines' clusters derive from their `nodes` and `request`: node look-ups by name
    and id, and `get`/`post`."""

    nodes: list[Node]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def names(self) -> list[str]:
        """Every node name, the coordinating node first."""
        return [n.name for n in self.nodes]

    def name_of(self, node_id: str) -> str:
        return next((n.name for n in self.nodes if n.id == node_id), node_id)

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, **kw)
        return status, body

    def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("POST", path, **kw)
        return status, body


@dataclass
class RunningCluster(ClusterNodes):
    process: subprocess.Popen[str]
    port: int
    nodes: list[Node] = field(default_factory=list)
    scheme: str = "http"
    # Basic-auth credentials `request()` sends unless given other headers' Authorization.
    auth: tuple[str, str] | None = None
    # Everything the coordinator printed so far (stdout and stderr), line by line.
    output: list[str] = field(default_factory=list)
    # The history the cluster records (`tasksim up --record`), when it records one.
    history: Path | None = None

    engine = "real"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def clock(self) -> Clock:
        """The machine's clock: a real cluster runs on wall time."""
        return WALL_CLOCK

    @property
    def sim(self) -> Faults:
        """Fault injection, ground truth and `POST /_sim/tasks` over this cluster's REST API."""
        return Faults(self.url, history=self.history)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, parsed JSON or text, headers) — errors are answers too, never exceptions."""
        headers = dict(headers or {})
        if self.auth is not None and "Authorization" not in headers:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        context = None
        if self.scheme == "https":  # the cluster's certificate is self-signed (curl --insecure)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), dict(e.headers)
        text = raw.decode()
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text, hdrs

    def node_processes(self) -> list[psutil.Process]:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c for c in children if _is_node(c)]

    def node_process(self, name: str) -> psutil.Process:
        for p in self.node_processes():
            if _arg(p, "--name") == name:
                return p
        raise LookupError(name)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def _is_node(p: psutil.Process) -> bool:
    cmd = _cmdline(p)
    return "-m" in cmd and "simnode" in cmd


def _arg(p: psutil.Process, flag: str) -> str | None:
    cmd = _cmdline(p)
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def start_cluster(
    *args: str,
    nodes: int = 3,
    seed: int = 7,
    timeout: float = 60,
    new_session: bool = False,
    auth: tuple[str, str] | None = None,
) -> RunningCluster:
    """Start `tasksim up --port 0 --nodes N --seed S ARGS...` and wait until it is ready.

    With `--config FILE` among `args`, `nodes` must be the number of nodes the file names."""
    count = [] if "--config" in args else ["--nodes", str(nodes)]
    cmd = [sys.executable, "-m", "coordinator", "up", "--port", "0", *count, "--seed", str(seed)]
    cmd += args
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=PACKAGE_ROOT,
        start_new_session=new_session,  # its own process group, for a Ctrl-C to the group
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    stdout = proc.stdout

    output: list[str] = []

    def pump() -> None:  # a daemon thread: the coordinator's stdout must never fill up
        for line in stdout:
            output.append(line.rstrip("\n"))
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True, name="tasksim-stdout").start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    cluster: RunningCluster | None = None
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if cluster is None:
            if m := READY.search(line):
                cluster = RunningCluster(
                    proc, int(m.group(2)), scheme=m.group(1), auth=auth, output=output
                )
            continue
        if m2 := NODE_LINE.match(line):
            roles = [] if m2.group(4) == "-" else m2.group(4).split(",")
            cluster.nodes.append(Node(m2.group(1), m2.group(2), m2.group(3), roles))
        if len(cluster.nodes) == nodes + 1:
            if "--record" in args:
                cluster.history = Path(args[args.index("--record") + 1])
            return cluster
    stop_cluster(proc)
    raise RuntimeError("tasksim did not become ready:\n" + "\n".join(seen))


def stop_cluster(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the coordinator, then SIGKILL it and any node process still alive."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def running_cluster(
    *args: str, nodes: int = 3, seed: int = 7, auth: tuple[str, str] | None = None
) -> Iterator[RunningCluster]:
    cluster = start_cluster(*args, nodes=nodes, seed=seed, auth=auth)
    try:
        yield cluster
    finally:
        stop_cluster(cluster.process)


def cluster_section_yaml(
    nodes: Sequence[tuple[str, Sequence[str]]],
    *,
    fault_detection: dict[str, Any] | bool | None = None,
) -> str:
    """A bare `cluster` section (what `tasksim up --config` reads): named nodes with their roles,
    and the follower checks (`False`: none; a dict: interval/timeout/retries; None: defaults)."""
    lines = ["nodes:"]
    for name, roles in nodes:
        lines.append(f"  - name: {json.dumps(name)}")
        lines.append(f"    roles: {json.dumps(list(roles))}")
    if fault_detection is False:
        lines.append("fault_detection: false")
    elif isinstance(fault_detection, dict):
        lines.append("fault_detection: " + json.dumps(fault_detection))
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running_cluster_of(
    nodes: Sequence[tuple[str, Sequence[str]]],
    *args: str,
    seed: int = 7,
    fault_detection: dict[str, Any] | bool | None = None,
) -> Iterator[RunningCluster]:
    """A cluster of named nodes with roles (`[("node-1", ["data"]), ...]`), via `--config`."""
    with tempfile.TemporaryDirectory(prefix="tasksim-shape-") as tmp:
        config = Path(tmp) / "cluster.yaml"
        config.write_text(cluster_section_yaml(nodes, fault_detection=fault_detection))
        with running_cluster("--config", str(config), *args, nodes=len(nodes), seed=seed) as c:
            yield c
