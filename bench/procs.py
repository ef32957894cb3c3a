"""The processes a benchmark runs against, started and always stopped by the benchmark.

- `cluster(n)`: `python -m coordinator up` (what `tasksim up` runs) with `n` node processes, on an
  HTTP port chosen here so that start-up is timed from spawn to the first `GET _tasks` that answers
  with every node (the coordinating node included) — what a user waiting for the cluster sees.
- `node()`: one bare `python -m simnode` process, driven over gRPC only.
- `http_floor()`: `python -m bench.http_floor`, tasksim's HTTP stack answering a constant.

Every context manager stops what it started, also when the benchmark fails: SIGTERM, then SIGKILL
for the process and every child it left behind. Nothing here measures anything but start-up.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NODE_LINE = re.compile(r"^\s+(\S+)\s+(\S{22})\s+(\S+)\s+roles=(\S*)$")
READY_TIMEOUT = 120.0
POLL_INTERVAL = 0.005
MIB = 1024 * 1024


class BenchProcessError(RuntimeError):
    """A benchmark process did not start (its output is in the message)."""


def child_env(root: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM `proc`, wait, then SIGKILL it and any descendant still alive."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        for p in family:  # a paused child never stops on its own
            with contextlib.suppress(psutil.Error):
                p.resume()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def _read_lines(proc: subprocess.Popen[bytes], count: int, timeout: float) -> list[str]:
    """`count` lines of the process's stdout, or fewer if it closes or the time runs out."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                break
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.decode(errors="replace").rstrip("\n"))
    return lines


# -- a tasksim cluster ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterNode:
    name: str
    id: str
    address: str  # host:port of its gRPC server


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    port: int
    ready_seconds: float  # spawn → the first GET _tasks answering with every node
    reported_seconds: float  # what the ready line says (coordinator start → REST up)
    nodes: list[ClusterNode] = field(default_factory=list)  # coordinator first

    @property
    def data_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.name != "coordinator"]

    def node_processes(self) -> list[psutil.Process]:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for c in children:
            with contextlib.suppress(psutil.Error):
                if "simnode" in c.cmdline():
                    out.append(c)
        return out

    def rss_mib(self) -> dict[str, float]:
        """Resident set size of each node process and of the coordinator process, in MiB."""
        sizes: dict[str, float] = {}
        for p in self.node_processes():
            with contextlib.suppress(psutil.Error):
                cmd = p.cmdline()
                sizes[cmd[cmd.index("--name") + 1]] = p.memory_info().rss / MIB
        with contextlib.suppress(psutil.Error):
            sizes["coordinator"] = psutil.Process(self.process.pid).memory_info().rss / MIB
        return sizes


def _answers_with_all(port: int, expected: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/_tasks")
        response = conn.getresponse()
        body = response.read()
        return response.status == 200 and len(json.loads(body)["nodes"]) == expected
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _wait_for_lines(log: Path, count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text(errors="replace").splitlines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(POLL_INTERVAL)


@contextlib.contextmanager
def cluster(
    nodes: int, *, seed: int = 7, extra: tuple[str, ...] = (), root: Path = ROOT
) -> Iterator[Cluster]:
    """A running `tasksim up --nodes <nodes>`; start-up timed from spawn to a full `GET _tasks`.

    `root` is the checkout whose code runs (another one than this, to compare two versions side
    by side). The coordinator's output goes to a file (a pipe nobody reads could fill up and stall
    it)."""
    port = free_port()
    cmd = [sys.executable, "-m", "coordinator", "up", "--port", str(port), "--nodes", str(nodes)]
    cmd += ["--seed", str(seed), *extra]
    log = Path(tempfile.mkdtemp(prefix="tasksim-bench-")) / "coordinator.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(root),
            cwd=root,
        )
    try:
        deadline = started + READY_TIMEOUT
        while not _answers_with_all(port, nodes + 1):
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise BenchProcessError(
                    f"tasksim up --nodes {nodes} did not start:\n{log.read_text(errors='replace')}"
                )
            time.sleep(POLL_INTERVAL)
        ready = time.perf_counter() - started
        lines = _wait_for_lines(log, nodes + 2, timeout=30)
        m = re.search(r"ready in ([0-9.]+)s", lines[0] if lines else "")
        found = Cluster(proc, port, ready, float(m.group(1)) if m else float("nan"))
        for line in lines[1:]:
            if m2 := NODE_LINE.match(line):
                found.nodes.append(ClusterNode(m2.group(1), m2.group(2), m2.group(3)))
        if len(found.nodes) != nodes + 1:
            raise BenchProcessError("unexpected ready output:\n" + "\n".join(lines))
        yield found
    finally:
        terminate(proc)


# -- one bare node ----------------------------------------------------------------------------------


@dataclass
class BareNode:
    process: subprocess.Popen[bytes]
    address: str

    def rss_mib(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss / MIB)


def _ready_port(proc: subprocess.Popen[bytes], what: str) -> int:
    lines = _read_lines(proc, 1, timeout=READY_TIMEOUT)
    if not lines or not lines[0].startswith("READY "):
        raise BenchProcessError(f"{what} did not start: {lines}")
    return int(lines[0].split()[1])


@contextlib.contextmanager
def node(name: str) -> Iterator[BareNode]:
    """`python -m simnode` alone (a one-node cluster of its own), reachable over gRPC."""
    node_id = (name.encode().hex() + "A" * 22)[:22]
    cmd = [sys.executable, "-m", "simnode", "--id", node_id, "--name", name, "--port", "0"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(), cwd=ROOT
    )
    try:
        port = _ready_port(proc, f"node {name}")
        yield BareNode(proc, f"127.0.0.1:{port}")
    finally:
        terminate(proc)


# -- the constant HTTP server -----------------------------------------------------------------------


@contextlib.contextmanager
def http_floor() -> Iterator[int]:
    """The port of `python -m bench.http_floor` (hypercorn + starlette answering a constant)."""
    cmd = [sys.executable, "-m", "bench.http_floor", "--port", "0"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(), cwd=ROOT
    )
    try:
        yield _ready_port(proc, "bench.http_floor")
    finally:
        terminate(proc)
