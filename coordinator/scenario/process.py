"""The cluster a scenario runs against: `tasksim up --config <scenario> --seed <seed> --port 0` as a
child process, in its own session (a Ctrl-C on the terminal reaches the runner only, which heals
and then stops the cluster in order) and bound to the runner's life (PR_SET_PDEATHSIG through a
tiny exec launcher, forked by the supervisor's long-lived spawner thread, so it gets SIGTERM if
the runner dies). `stop()` stops it and checks that no
node process it started outlives it — a leftover is killed and reported.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import trio

from coordinator.supervisor import ChildProcess, spawn

READY = re.compile(r"REST API on (http://\S+?:\d+)")
NODE_LINE = re.compile(r"^\s+(\S+)\s+(\S{22})\s+(\S+)\s+roles=(\S*)$")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Exec the command with a parent-death signal: survives execve, so the coordinator gets SIGTERM
# when the runner's (trio) thread goes away.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class ClusterStartError(Exception):
    pass


@dataclass
class ClusterProcess:
    process: ChildProcess
    url: str
    node_ids: dict[str, str] = field(default_factory=dict)  # name → id
    output: list[str] = field(default_factory=list)
    node_pids: set[int] = field(default_factory=set)
    addresses: dict[str, str] = field(default_factory=dict)  # name → transport address

    @classmethod
    async def start(
        cls,
        scenario_file: Path,
        seed: int,
        log: Path,
        *,
        record: Path | None = None,
        node_logs: Path | None = None,
    ) -> ClusterProcess:
        """`record`: the cluster writes its history there (`tasksim up --record`); `node_logs`:
        where each node's stderr goes (`--log-dir`)."""
        root = str(Path(__file__).resolve().parent.parent.parent)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        command = [
            sys.executable,
            "-c",
            _LAUNCHER,
            str(os.getpid()),
            sys.executable,
            "-m",
            "coordinator",
            "up",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--config",
            str(scenario_file),
            *(["--record", str(record)] if record is not None else []),
            *(["--log-dir", str(node_logs)] if node_logs is not None else []),
        ]
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as stderr:
            proc = await spawn(command, stderr=stderr, env=env, new_session=True)
        assert proc.stdout is not None
        lines: list[str] = []
        buf = b""
        url = None
        ids: dict[str, str] = {}
        addresses: dict[str, str] = {}
        expected = None
        with trio.move_on_after(START_TIMEOUT):
            while True:
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode(errors="replace")
                    lines.append(line)
                    if url is None and (m := READY.search(line)):
                        url = m.group(1)
                        counted = re.search(r"(\d+) node\(s\)", line)
                        expected = int(counted.group(1)) + 1 if counted else None
                    elif url is not None and (m2 := NODE_LINE.match(line)):
                        ids[m2.group(1)] = m2.group(2)
                        addresses[m2.group(1)] = m2.group(3)
                if url is not None and expected is not None and len(ids) >= expected:
                    cluster = cls(proc, url, ids, lines, addresses=addresses)
                    cluster.node_pids = cluster._node_pids()
                    return cluster
        await _terminate(proc)
        detail = "\n".join(lines[-20:]) or log.read_text(errors="replace")[-2000:]
        raise ClusterStartError(f"the cluster did not start:\n{detail}")

    def _node_pids(self) -> set[int]:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return set()
        return {c.pid for c in children}

    async def stop(self) -> list[str]:
        """Stop the cluster; the node processes that had to be killed afterwards (should be none)."""
        self.node_pids |= self._node_pids()
        await _terminate(self.process)
        leftovers: list[str] = []
        with trio.move_on_after(STOP_TIMEOUT):
            while True:
                alive = [p for p in self.node_pids if _alive(p)]
                if not alive:
                    break
                await trio.sleep(0.05)
        for pid in sorted(self.node_pids):
            if _alive(pid):
                leftovers.append(f"node process {pid} outlived its cluster: killed")
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return leftovers


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _terminate(proc: ChildProcess) -> None:
    with trio.CancelScope(shield=True):
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                await stream.aclose()
