"""The history of a run: what happened, event by event, in one stable format that checkers and the
timeline read, whichever engine ran it.

A history is JSON Lines. The first line is the header (`type: "header"`, the format name and
`version`, the engine, the seed, the cluster's nodes); every other line is one event with `t`
(seconds since the run started: wall-clock seconds on the real engine, virtual ones on the
simulation engine), `type`, and the fields `EVENT_FIELDS` names for that type (more are allowed).
Version 1 is documented in the README; a change that removes or renames a field is a new version.

What lives here: the event types and their required fields, `Recorder` (the one way to record:
`record(type, **fields)` with a time source passed in, so both engines record the same history),
the `Registry` listener that turns task lifecycle into events, and the JSONL reader and writer.
(A node process's queue of events waiting for the control channel is the gRPC server's:
simnode/server.py `NodeEvents`.)

It never imports trio or grpc and never reads a clock by itself: `clock` is an argument.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "tasksim-history"
VERSION = 1

# type → the fields every event of that type carries (besides `t` and `type`).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    # client operations, Jepsen-style: invoke, then exactly one of ok / fail / info
    "invoke": ("op", "method", "path"),
    "ok": ("op", "method", "path", "status", "digest"),
    "fail": ("op", "method", "path", "status", "digest"),
    "info": ("op", "method", "path", "error"),
    # task lifecycle, from every node
    "task_registered": ("node", "task", "action", "parent", "cancellable"),
    "task_cancelled": ("node", "task", "reason"),
    "task_unregistered": ("node", "task"),
    "ban_set": ("node", "parent", "reason"),
    "ban_removed": ("node", "parent", "why"),
    # transport: one send, then a deliver or a drop
    "rpc_send": ("node", "to", "method", "call", "verdict"),
    "rpc_deliver": ("node", "to", "method", "call"),
    "rpc_drop": ("node", "to", "method", "call", "verdict"),
    # faults and process faults
    "fault_start": ("fault", "kind", "nodes"),
    "fault_end": ("fault",),
    "kill": ("node",),
    "pause": ("node",),
    "resume": ("node",),
    "restart": ("node",),
    "heal": (),
    # ML Commons task documents: every state an ML task takes
    "ml_task_state": ("ml_task", "state", "previous", "task_type"),
    # membership, as the coordinator decides it
    "node_left": ("node",),
    "node_joined": ("node",),
    # where a node's record starts and ends (a kill loses what the node had not sent yet)
    "record_start": ("node", "pid"),
    "record_end": ("node", "reason", "last_seq"),
}

CLIENT_TYPES = ("invoke", "ok", "fail", "info")
LIFECYCLE_TYPES = (
    "task_registered",
    "task_cancelled",
    "task_unregistered",
    "ban_set",
    "ban_removed",
)
RPC_TYPES = ("rpc_send", "rpc_deliver", "rpc_drop")
FAULT_TYPES = ("fault_start", "fault_end", "kill", "pause", "resume", "restart", "heal")

Event = dict[str, Any]
Sink = Callable[[Event], None]


class HistoryError(ValueError):
    """A history that cannot be read: the message says which line and why."""


def header(
    *, engine: str, seed: int | str, nodes: Iterable[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """The first line of a history. `nodes`: dicts with at least `name` and `id`."""
    return {
        "type": "header",
        "format": FORMAT,
        "version": VERSION,
        "engine": engine,
        "seed": seed,
        "nodes": list(nodes),
        **extra,
    }


def missing_fields(event: Event) -> list[str]:
    """The fields `EVENT_FIELDS` requires that `event` lacks (an unknown type lacks nothing)."""
    wanted = EVENT_FIELDS.get(str(event.get("type")), ())
    return [f for f in ("t", "type", *wanted) if f not in event]


class Recorder:
    """Records events with `t = clock()` and hands each to `sink` (and keeps it when `keep`).

    `clock` returns seconds since the run started (the real engine: a monotonic clock minus the
    start; the simulation engine: trio's virtual clock minus the start). Events come from one
    thread (the trio loop that owns the run); `record` never blocks.
    """

    def __init__(self, clock: Callable[[], float], sink: Sink | None = None, *, keep: bool = True):
        self.clock = clock
        self.sink = sink
        self.keep = keep
        self.events: list[Event] = []
        self._ops = 0

    def record(self, type: str, **fields: Any) -> Event:
        event: Event = {"t": round(self.clock(), 6), "type": type, **fields}
        return self.add(event)

    def add(self, event: Event) -> Event:
        """Record an event that already has its `t` (one a node recorded and shipped)."""
        if self.keep:
            self.events.append(event)
        if self.sink is not None:
            self.sink(event)
        return event

    def listener(self, node: str) -> Callable[[str, dict[str, Any]], None]:
        """A `Registry.listener` for the node named `node`: its lifecycle events, recorded here
        (a node in this process: the coordinating node, every node of the simulation engine)."""

        def listen(kind: str, fields: dict[str, Any]) -> None:
            self.record(kind, node=node, **fields)

        return listen

    def next_op(self) -> int:
        """A fresh client operation number (an `invoke` and its completion share it)."""
        self._ops += 1
        return self._ops


# -- the node side ----------------------------------------------------------------------------------


def attach(node: Any, listen: Callable[[str, dict[str, Any]], None]) -> None:
    """Point a `simnode.node.Node`'s task lifecycle (its registry) and its calls (its transport's
    call driver) at `listen`: the one hook every engine uses to record a node."""
    node.registry.listener = listen
    transport = getattr(node, "transport", None)
    if transport is not None and hasattr(transport, "listener"):
        transport.listener = listen


def registry_listener(record: Callable[..., None]) -> Callable[[str, dict[str, Any]], None]:
    """A `Registry.listener` that records its lifecycle calls with `record(type, **fields)`."""

    def listen(kind: str, fields: dict[str, Any]) -> None:
        record(kind, **fields)

    return listen


# -- JSON Lines -------------------------------------------------------------------------------------


def dumps(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), sort_keys=False, default=str)


@dataclass
class JsonlWriter:
    """Writes a history as it is recorded — every `flush()` appends what came since (a crash
    keeps what was flushed; nothing is encoded on the recording path) — then `close()` rewrites
    it ordered by `t` (stable: events of the same instant keep their order)."""

    path: Path
    head: dict[str, Any]
    _file: IO[str] | None = None
    _events: list[Event] = field(default_factory=list)
    _written: int = 0

    def open(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._file.write(dumps(self.head) + "\n")
        return self

    def __call__(self, event: Event) -> None:
        self._events.append(event)

    def flush(self) -> None:
        if self._file is not None:
            pending = self._events[self._written :]
            self._written = len(self._events)
            self._file.write("".join(dumps(e) + "\n" for e in pending))
            self._file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        write(self.path, self.head, self._events)


def ordered(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: float(e.get("t", 0.0)))


def write(path: Path, head: dict[str, Any], events: Iterable[Event]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dumps(head) + "\n")
        for event in ordered(events):
            f.write(dumps(event) + "\n")
    tmp.replace(path)


@dataclass(frozen=True)
class History:
    head: dict[str, Any]
    events: list[Event]

    def of_type(self, *types: str) -> Iterator[Event]:
        return (e for e in self.events if e.get("type") in types)

    @property
    def node_names(self) -> list[str]:
        return [str(n.get("name")) for n in self.head.get("nodes", [])]

    @property
    def end(self) -> float:
        return max((float(e["t"]) for e in self.events), default=0.0)


def parse(lines: Iterable[str], *, source: str = "<history>") -> History:
    """Read a history: the header first, then events ordered by `t`. A last line cut short (the
    recording process died while writing it) is left out; any other bad line is an error."""
    head: dict[str, Any] | None = None
    events: list[Event] = []
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    for number, line in numbered:
        try:
            value = json.loads(line)
        except ValueError as e:
            if head is not None and number == numbered[-1][0] and not line.endswith("}"):
                break
            raise HistoryError(f"{source}:{number}: not JSON: {e}") from None
        if not isinstance(value, dict):
            raise HistoryError(f"{source}:{number}: an event must be a JSON object")
        if head is None:
            if value.get("type") != "header" or value.get("format") != FORMAT:
                raise HistoryError(f"{source}:{number}: the first line must be the {FORMAT} header")
            if value.get("version") != VERSION:
                raise HistoryError(
                    f"{source}:{number}: format version {value.get('version')!r} "
                    f"(this tasksim reads version {VERSION})"
                )
            head = value
            continue
        missing = missing_fields(value)
        if missing:
            raise HistoryError(
                f"{source}:{number}: a {value.get('type')!r} event needs {', '.join(missing)}"
            )
        events.append(value)
    if head is None:
        raise HistoryError(f"{source}: empty (no header)")
    return History(head, ordered(events))


def read(path: Path) -> History:
    with open(path, encoding="utf-8") as f:
        return parse(f, source=str(path))
