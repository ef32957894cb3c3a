"""Faults as values for tests: one fault per unreachable node, how to apply it to a running cluster,
and what a request with a timeout must then say about that node.

A `NodeFault` makes one node unreachable in one of five ways:

| kind           | how (over `/_sim`)                               | a list with `timeout` reports   |
|----------------|--------------------------------------------------|---------------------------------|
| `killed`       | SIGKILL (`POST /_sim/nodes/<n>/kill`)            | node_not_connected_exception    |
| `paused`       | SIGSTOP (`.../pause`)                            | receive_timeout_transport_exc.  |
| `blackholed`   | link rule `blackhole`, every peer, both ways     | receive_timeout_transport_exc.  |
| `disconnected` | link rule `disconnect`, every peer, both ways    | connect_transport_exception     |
| `slow`         | `slow` rule: each handler waits longer than the timeout | receive_timeout_transport_exc. |

(A killed node whose old connection is only now found broken may also say
`node_disconnected_exception`.) `holds_messages` tells the kinds that keep what was sent — delivered
late on heal — from those that fail fast; a killed node loses its tasks.

`Faults` is the fault client (`coordinator.client.SimClient`) plus `apply(plan, timeout=...)`,
`healing()`, a context manager that heals on exit — what each hypothesis example needs when the
examples share one cluster — and `in_background(...)`, a request that may wait for a heal (a cancel
waiting for its bans): a thread on the real engine, a task of the world on the sim engine, so that
the run stays a function of the seed. Nothing here decides what a fault does: the nemesis does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from coordinator.client import Clock, Response, Send, SimClient
from simnode.history import write

KILLED = "killed"
PAUSED = "paused"
BLACKHOLED = "blackholed"
DISCONNECTED = "disconnected"
SLOW = "slow"
FAULT_KINDS: tuple[str, ...] = (KILLED, PAUSED, BLACKHOLED, DISCONNECTED, SLOW)

RECEIVE_TIMEOUT = "receive_timeout_transport_exception"
CAUSES: dict[str, frozenset[str]] = {
    KILLED: frozenset({"node_not_connected_exception", "node_disconnected_exception"}),
    PAUSED: frozenset({RECEIVE_TIMEOUT}),
    BLACKHOLED: frozenset({RECEIVE_TIMEOUT}),
    DISCONNECTED: frozenset({"connect_transport_exception"}),
    SLOW: frozenset({RECEIVE_TIMEOUT}),
}
HOLDS_MESSAGES = frozenset({PAUSED, BLACKHOLED, SLOW})


def slow_latency(timeout: float) -> float:
    """How long a `slow` node makes each handler wait: well beyond a request's `timeout`."""
    return max(3 * timeout, timeout + 2.0)


@dataclass(frozen=True)
class NodeFault:
    node: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (kinds: {', '.join(FAULT_KINDS)})")

    @property
    def causes(self) -> frozenset[str]:
        """The `caused_by.type`s a request with a timeout may see for this node."""
        return CAUSES[self.kind]

    @property
    def times_out(self) -> bool:
        """A request with a timeout waits the whole timeout for this node."""
        return self.causes == CAUSES[BLACKHOLED]

    @property
    def holds_messages(self) -> bool:
        return self.kind in HOLDS_MESSAGES

    def apply(self, sim: SimClient, *, timeout: float = 1.0) -> None:
        """Make the node unreachable; `timeout` is the request timeout a `slow` node must beat."""
        if self.kind == KILLED:
            sim.kill(self.node)
        elif self.kind == PAUSED:
            sim.pause(self.node)
        elif self.kind == BLACKHOLED:
            sim.link(None, self.node, "blackhole", both_ways=True)
        elif self.kind == DISCONNECTED:
            sim.link(None, self.node, "disconnect", both_ways=True)
        else:
            latency = slow_latency(timeout)
            sim.slow(self.node, f"{round(latency * 1000)}ms")

    def __str__(self) -> str:
        return f"{self.node}={self.kind}"


@dataclass(frozen=True)
class FaultPlan:
    """A set U of unreachable nodes, each with its fault."""

    faults: tuple[NodeFault, ...] = ()

    @property
    def unreachable(self) -> frozenset[str]:
        return frozenset(f.node for f in self.faults)

    def of(self, node: str) -> NodeFault | None:
        return next((f for f in self.faults if f.node == node), None)

    def kinds(self) -> frozenset[str]:
        return frozenset(f.kind for f in self.faults)

    def apply(self, sim: SimClient, *, timeout: float = 1.0) -> None:
        for fault in self.faults:
            fault.apply(sim, timeout=timeout)

    def __str__(self) -> str:
        return "{" + ", ".join(str(f) for f in self.faults) + "}"


class HealFailed(AssertionError):
    pass


class Pending(Protocol):
    """A request running in the background."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Response:
        """Its answer; `TimeoutError` when it has none after `timeout` seconds of the clock."""
        ...


class Background(Protocol):
    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Pending: ...


class ThreadPending:
    """A request sent from a thread of its own (the real engine's background)."""

    def __init__(self, client: SimClient, method: str, path: str, **kw: Any) -> None:
        self._answer: Response | None = None
        self._error: BaseException | None = None

        def send() -> None:
            try:
                self._answer = client.request(method, path, **kw)
            except Exception as e:  # reported by `result()`, in the caller's thread
                self._error = e

        self._thread = threading.Thread(target=send, name=f"tasksim {method} {path}", daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float | None = None) -> Response:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"no answer within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


class Faults(SimClient):
    """The fault client of one cluster, with plans, a guaranteed heal and background requests.

    `history`: the file the cluster records its history in (`tasksim up --record`). An example
    that fails inside `healing()` then leaves the slice of the history it covered in
    `$TASKSIM_HISTORY_DIR` (default `tasksim-reports/histories`), named in the failure's notes —
    only once per failure: for the final replay of a hypothesis example, not while shrinking."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        send: Send | None = None,
        clock: Clock | None = None,
        background: Background | None = None,
        history: Path | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, send=send, clock=clock)
        self._background = background
        self.history = history

    def in_background(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Pending:
        """Send a request and return at once; `.result(timeout)` waits for its answer."""
        if self._background is not None:
            return self._background(method, path, body, headers=headers, timeout=timeout)
        return ThreadPending(self, method, path, body=body, headers=headers, timeout=timeout)

    def apply(
        self, plan: FaultPlan | NodeFault | Iterable[NodeFault], *, timeout: float = 1.0
    ) -> None:
        if isinstance(plan, NodeFault):
            plan = FaultPlan((plan,))
        elif not isinstance(plan, FaultPlan):
            plan = FaultPlan(tuple(plan))
        plan.apply(self, timeout=timeout)

    def heal_checked(self) -> dict[str, Any]:
        """`heal()`, and fail unless every process acknowledged it (no rule, none paused or dead)."""
        report = self.heal()
        if not report.get("acknowledged"):
            raise HealFailed(f"the cluster did not heal: {report}")
        return report

    @contextlib.contextmanager
    def healing(self) -> Iterator[Faults]:
        """Heal on the way out, also when the block raised (examples share the cluster); a
        failure notes where the history of the example is."""
        started = time.time()
        try:
            yield self
        except BaseException as e:
            try:
                self.heal_checked()
            finally:
                self.note_history(e, started)
            raise
        self.heal_checked()

    def note_history(self, error: BaseException, started: float) -> Path | None:
        """Save the history since `started` (wall-clock seconds) for a failed example and add
        its path to `error`'s notes. Nothing while hypothesis shrinks (only its final replay)."""
        history = self.history
        if history is None or not final_example():
            return None
        return note_saved(error, lambda: save_history(history, started, example_name()))


FLUSH_WAIT = 1.2  # the cluster writes its history out every 0.5 s


def final_example() -> bool:
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # not inside a hypothesis test: a plain failure
        return True


def example_name() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "example").split(" ")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", current.split("::")[-1] or "example")[:80]


def save_history(source: Path, started: float, name: str) -> Path | None:
    """Copy the events of `source` recorded since `started` (wall-clock seconds) to a new file in
    `$TASKSIM_HISTORY_DIR`; its path (None when the cluster records no wall-clock start)."""
    time.sleep(FLUSH_WAIT)  # what happened last reaches the file
    lines = source.read_text(encoding="utf-8").splitlines()
    if not lines:
        return None
    head = json.loads(lines[0])
    origin = head.get("started_unix")
    if origin is None:
        return None
    since = started - float(origin) - 0.05
    events = []
    for line in lines[1:]:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the line being written
        if float(event.get("t", 0.0)) >= since:
            events.append(event)
    path = history_path(name)
    write(path, head, events)
    return path.resolve()


def history_path(name: str) -> Path:
    """A new file for a failed example's history: `$TASKSIM_HISTORY_DIR/<name>-<time>.jsonl`."""
    out_dir = Path(os.environ.get("TASKSIM_HISTORY_DIR", "tasksim-reports/histories"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.jsonl"
    return path


def note_saved(error: BaseException, save: Callable[[], Path | None]) -> Path | None:
    """Save a failed example's history with `save()` and name it in `error`'s notes."""
    try:
        path = save()
    except (OSError, ValueError) as e:
        error.add_note(f"tasksim: the example's history could not be saved: {e}")
        return None
    if path is not None:
        error.add_note(
            f"tasksim: the history of this example: {path} (see it: tasksim timeline {path})"
        )
    return path
