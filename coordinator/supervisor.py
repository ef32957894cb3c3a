"""The supervisor: it owns every node process — start, kill, pause, resume, restart, stop.

Nodes are fresh interpreters (`python -m simnode`, fork+exec; never a bare fork while grpc is
loaded). A node reports `READY <port>` on stdout; its stdin is a pipe we hold, so it exits when we
close it or die; and it arms PR_SET_PDEATHSIG=SIGKILL, which Linux ties to the *thread* that forked
it. That is why every node is forked by one dedicated thread that lives as long as this process
(`_SPAWNER`), not by trio's worker threads, which exit after 10 idle seconds and took every node
down with them. With that, a node dies with its coordinator even when it is SIGSTOPped. `stop_all()` resumes paused nodes, closes stdin, sends SIGTERM, and SIGKILLs
whatever is left after a grace period. `heal()` resumes every paused node. Process faults live here
and nowhere else (DESIGN.md rule 4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import trio

import simnode
from simnode.discovery import DEFAULT_ATTRIBUTES, DEFAULT_ROLES, DiscoveryNode

READY_TIMEOUT = 30.0
STOP_GRACE = 2.0


# The one thread that forks node processes; it never exits while this process lives.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasksim-spawner")


class ChildProcess:
    """A node process: its `Popen`, trio streams for its stdin/stdout pipes, and an async wait."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: trio.lowlevel.FdStream,
        stdout: trio.lowlevel.FdStream,
    ) -> None:
        self.popen = popen
        self.stdin: trio.lowlevel.FdStream | None = stdin
        self.stdout: trio.lowlevel.FdStream | None = stdout

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        if (code := self.popen.poll()) is not None:
            return code
        try:
            pidfd = os.pidfd_open(self.popen.pid)
        except (AttributeError, OSError):
            while (code := self.popen.poll()) is None:
                await trio.sleep(0.02)
            return code
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        return self.popen.wait()


async def spawn(
    command: list[str],
    *,
    env: dict[str, str],
    stderr: IO[bytes],
    new_session: bool = False,
    cwd: str | None = None,
) -> ChildProcess:
    """Fork+exec `command` on the spawner thread, with pipes for stdin and stdout."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    try:
        future = _SPAWNER.submit(
            subprocess.Popen,
            command,
            stdin=stdin_r,
            stdout=stdout_w,
            stderr=stderr,
            env=env,
            close_fds=True,
            start_new_session=new_session,
            cwd=cwd,
        )
        popen: Any = await trio.to_thread.run_sync(future.result)
    except BaseException:
        os.close(stdin_w)
        os.close(stdout_r)
        raise
    finally:
        os.close(stdin_r)
        os.close(stdout_w)
    return ChildProcess(popen, trio.lowlevel.FdStream(stdin_w), trio.lowlevel.FdStream(stdout_r))


class SupervisorError(Exception):
    """A node process could not be started or controlled (a clear, one-line message)."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    id: str
    roles: tuple[str, ...] = DEFAULT_ROLES
    attributes: tuple[tuple[str, str], ...] = DEFAULT_ATTRIBUTES
    host: str = "127.0.0.1"
    port: int = 0

    def discovery_node(self, port: int) -> DiscoveryNode:
        """The node as the cluster state names it, once it listens on `port`."""
        return DiscoveryNode(
            id=self.id,
            name=self.name,
            host=self.host,
            ip=self.host,
            port=port,
            roles=self.roles,
            attributes=self.attributes,
        )


@dataclass
class NodeProcess:
    spec: NodeSpec
    process: ChildProcess
    port: int
    log: Path
    paused: bool = False
    restarts: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Run the very code this process imported, wherever it lives (a checkout, a temp clone).
    root = str(Path(simnode.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    env.pop("GRPC_ENABLE_FORK_SUPPORT", None)
    return env


class Supervisor:
    def __init__(self, log_dir: Path | None = None, node_args: tuple[str, ...] = ()) -> None:
        self.node_args = node_args  # appended to every node's command line
        self.nodes: dict[str, NodeProcess] = {}
        # Called with every node process that became ready (the history subscribes to it).
        self.on_start: list[Callable[[NodeProcess], None]] = []
        # A node's command as it is run (the netns hosts: under `ip netns exec <ns>`, which execs).
        self.wrap: Callable[[NodeSpec, list[str]], list[str]] = lambda spec, cmd: cmd
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tasksim-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def command(self, spec: NodeSpec, port: int) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "simnode",
            f"--id={spec.id}",  # a base64url id may start with '-'
            "--name",
            spec.name,
            "--host",
            spec.host,
            "--port",
            str(port),
            "--roles",
            ",".join(spec.roles),
        ]
        for key, value in spec.attributes:
            cmd += ["--attr", f"{key}={value}"]
        if not spec.attributes:
            cmd += ["--attr", "="]  # an explicit empty set
        return self.wrap(spec, [*cmd, *self.node_args])

    async def start(self, spec: NodeSpec, *, port: int | None = None) -> NodeProcess:
        """Start a node process and wait for its READY line. Its stderr goes to `<log_dir>/<name>.log`."""
        log = self.log_dir / f"{spec.name}.log"
        with open(log, "ab") as stderr:
            process = await spawn(
                self.command(spec, spec.port if port is None else port),
                env=_child_env(),
                stderr=stderr,
            )
        assert process.stdout is not None
        buf = b""
        with trio.move_on_after(READY_TIMEOUT) as timeout:
            while b"\n" not in buf:
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    break
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        if timeout.cancelled_caught or not line.startswith("READY "):
            await self._kill(process)
            err = log.read_text(errors="replace").strip()
            reason = err.splitlines()[-1] if err else "no READY line"
            raise SupervisorError(f"node {spec.name} did not start: {reason}")
        node = NodeProcess(spec, process, int(line.split()[1]), log)
        old = self.nodes.get(spec.name)
        if old is not None:
            node.restarts = old.restarts + 1
        self.nodes[spec.name] = node
        for callback in self.on_start:
            callback(node)
        return node

    @staticmethod
    async def _kill(process: ChildProcess) -> None:
        process.kill()
        await process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                await stream.aclose()
        process.stdin = process.stdout = None

    def get(self, name: str) -> NodeProcess:
        try:
            return self.nodes[name]
        except KeyError:
            raise SupervisorError(f"no node named [{name}]") from None

    # -- process faults --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL: the process is gone at once, its tasks with it."""
        node = self.get(name)
        node.process.kill()
        node.paused = False

    def pause(self, name: str) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing."""
        node = self.get(name)
        if node.alive:
            node.process.send_signal(signal.SIGSTOP)
            node.paused = True

    def resume(self, name: str) -> None:
        node = self.get(name)
        if node.alive and node.paused:
            node.process.send_signal(signal.SIGCONT)
        node.paused = False

    async def restart(self, name: str) -> NodeProcess:
        """Kill (if alive) and start again with the same name, id and port: a fresh registry."""
        node = self.get(name)
        await self._kill(node.process)
        return await self.start(node.spec, port=node.port)

    def heal(self) -> None:
        """Resume every paused node. Idempotent."""
        for name in list(self.nodes):
            self.resume(name)

    async def stop_all(self) -> None:
        """Stop every node: resume, close stdin, SIGTERM, then SIGKILL after the grace period."""
        with trio.CancelScope(shield=True):
            for node in self.nodes.values():
                if node.alive:
                    if node.paused:
                        node.process.send_signal(signal.SIGCONT)
                    if node.process.stdin is not None:
                        await node.process.stdin.aclose()
                        node.process.stdin = None
                    node.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_GRACE):
                for node in self.nodes.values():
                    await node.process.wait()
            for node in self.nodes.values():
                await self._kill(node.process)
