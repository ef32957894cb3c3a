"""Node logs a person can read: what each node did, from the history, and what it printed.

`write_node_logs` turns a history into one `<node>.log` per node: a line per event of that node
(its tasks registered, cancelled and unregistered, the bans it set and lifted, the calls it sent
and how they ended, the faults and process faults that hit it, where its record starts and ends),
followed by whatever the node process wrote on stderr (warnings, tracebacks), which the supervisor
captured in the same file. Files only; it decides nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simnode.history import Event, History


def describe(e: Event) -> str:
    """One event as a line of text (without its time and node)."""
    kind = str(e["type"])
    if kind == "task_registered":
        flags = "cancellable" if e.get("cancellable") else "not cancellable"
        parent = f" parent {e['parent']}" if e.get("parent") else ""
        return f"task {e['task']} registered: {e['action']}{parent} ({flags})"
    if kind == "task_cancelled":
        return f"task {e['task']} cancelled: {e.get('reason')}"
    if kind == "task_unregistered":
        return f"task {e['task']} unregistered"
    if kind == "ban_set":
        return f"ban set on parent {e['parent']}: {e.get('reason')}"
    if kind == "ban_removed":
        return f"ban on parent {e['parent']} removed ({e.get('why')})"
    if kind == "rpc_send":
        verdict = e.get("verdict")
        extra = "" if verdict in (None, "pass") else f" [fault: {verdict}]"
        return f"call #{e['call']} {e['method']} → {e['to']}{extra}"
    if kind == "rpc_deliver":
        error = f" with {e['error']}" if e.get("error") else ""
        return f"call #{e['call']} {e['method']} → {e['to']} answered{error}"
    if kind == "rpc_drop":
        return f"call #{e['call']} {e['method']} → {e['to']} got no answer ({e.get('verdict')})"
    if kind in ("kill", "pause", "resume", "restart"):
        return f"process {kind}"
    if kind in ("node_left", "node_joined"):
        return kind.replace("_", " ") + " the cluster"
    if kind == "record_start":
        return f"record starts (pid {e.get('pid')})"
    if kind == "record_end":
        return f"record ends: {e.get('reason')} (last event #{e.get('last_seq')})"
    if kind == "fault_start":
        nodes = ", ".join(str(n) for n in e.get("nodes") or ["every node"])
        return f"fault {e['fault']} ({e.get('kind')}) starts, cutting off {nodes}"
    if kind == "fault_end":
        return f"fault {e['fault']} ends"
    fields = {k: v for k, v in e.items() if k not in ("t", "type", "node", "seq")}
    return f"{kind} {fields}"


def _concerns(e: Event, name: str) -> bool:
    if e.get("node") == name:
        return True
    if e["type"] == "fault_start":
        nodes: Any = e.get("nodes") or []
        return not nodes or name in nodes
    return e["type"] in ("fault_end", "heal")


def node_lines(history: History, name: str) -> list[str]:
    return [f"{float(e['t']):10.6f}s  {describe(e)}" for e in history.events if _concerns(e, name)]


def write_node_logs(history: History, directory: Path) -> list[Path]:
    """`<directory>/<node>.log` for every node of the header; what the process printed (already
    in the file, from the supervisor) is kept after the events."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for node in history.head.get("nodes", []):
        name = str(node.get("name"))
        path = directory / f"{name}.log"
        printed = path.read_text(errors="replace") if path.exists() else ""
        lines = [
            f"# {name} ({node.get('id')}): what it did, from the run's history",
            *node_lines(history, name),
        ]
        if printed.strip():
            lines += ["", "# what the process printed (stderr: warnings, tracebacks)", printed]
        else:
            lines += ["", "# the process printed nothing (no warning, no traceback)"]
        path.write_text("\n".join(lines).rstrip("\n") + "\n")
        written.append(path)
    return written
