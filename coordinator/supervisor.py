"""The supervisor: it owns every node process — start, kill, pause, resume, restart, stop.

Nodes are fresh interpreters (`python -m simnode`, fork+exec; never a bare fork while grpc is
loaded), spawned from the trio thread itself (`ChildProcess`), not from a worker thread as
`trio.lowlevel.open_process` does: a node's PR_SET_PDEATHSIG fires when the *thread* that forked it
exits, and trio retires idle worker threads after 10 s — which killed healthy nodes. A node reports `READY <port>` on stdout; its stdin is a pipe we hold, so it exits
when we close it or die. `stop_all()` resumes paused nodes, closes stdin, sends SIGTERM, and SIGKILLs
whatever is left after a grace period. `heal()` resumes every paused node. Process faults live here
and nowhere else (DESIGN.md rule 4).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

import simnode
from simnode.discovery import DEFAULT_ATTRIBUTES, DEFAULT_ROLES

READY_TIMEOUT = 30.0
STOP_GRACE = 2.0


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


class ChildProcess:
    """A child process spawned from the calling (trio) thread, with trio streams for its stdin and
    stdout and an async `wait()` — the part of `trio.Process` the supervisor uses."""

    def __init__(
        self,
        command: list[str],
        *,
        stderr: int,
        env: dict[str, str],
        new_session: bool = False,
        cwd: str | None = None,
    ) -> None:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            start_new_session=new_session,
            cwd=cwd,
        )
        assert popen.stdin is not None and popen.stdout is not None
        self._popen = popen
        self.stdin: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(
            os.dup(popen.stdin.fileno())
        )
        self.stdout: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(
            os.dup(popen.stdout.fileno())
        )
        popen.stdin.close()
        popen.stdout.close()
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(popen.pid)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        result = self._popen.poll()
        if result is not None and self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return result

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        while (code := self.returncode) is None:
            try:
                if self._pidfd is None:
                    raise trio.BusyResourceError
                await trio.lowlevel.wait_readable(self._pidfd)
            except trio.BusyResourceError:  # no pidfd, or another task waits on it already
                await trio.sleep(0.01)
        return code


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
    def __init__(self, log_dir: Path | None = None) -> None:
        self.nodes: dict[str, NodeProcess] = {}
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
        return cmd

    async def start(self, spec: NodeSpec, *, port: int | None = None) -> NodeProcess:
        """Start a node process and wait for its READY line. Its stderr goes to `<log_dir>/<name>.log`."""
        log = self.log_dir / f"{spec.name}.log"
        with open(log, "ab") as stderr:
            process = ChildProcess(
                self.command(spec, spec.port if port is None else port),
                stderr=stderr.fileno(),
                env=_child_env(),
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
        return node

    @staticmethod
    async def _kill(process: ChildProcess) -> None:
        if process.returncode is None:
            try:
                process.kill()
            except ProcessLookupError:
                pass
        await process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                await stream.aclose()

    def get(self, name: str) -> NodeProcess:
        try:
            return self.nodes[name]
        except KeyError:
            raise SupervisorError(f"no node named [{name}]") from None

    # -- process faults --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL: the process is gone at once, its tasks with it."""
        node = self.get(name)
        if node.alive:
            node.process.send_signal(signal.SIGKILL)
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
                    try:
                        node.process.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            with trio.move_on_after(STOP_GRACE):
                for node in self.nodes.values():
                    await node.process.wait()
            for node in self.nodes.values():
                await self._kill(node.process)
