"""The trace of one scenario run on the sim engine: what `--check-determinism` compares.

A `Recorder` sees every REST exchange the runner makes (method, path, status, body, in order) and
every message the simulated network carries (`SimNetwork.on_message`: request or response, virtual
time, caller → callee, method, request id). `trace(result, recorder)` renders the lot, with the
scenario's report (which on the sim engine holds virtual times only), as one text: one seed, one
text, byte for byte, in this process or another (with PYTHONHASHSEED fixed, see scenario/cli.py).

This is the stand-in for the history recorder of issue 13: `trace` is the one function to swap.
Records; decides nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from typing import Any

import trio

from coordinator.client import AsyncSend, Response
from simnode.driver import Call


class Recorder:
    """Every REST exchange and network message of one run, in the order they happened."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _now(self) -> str:
        return repr(trio.current_time())

    def message(self, kind: str, call: Call) -> None:
        env = call.env
        self.lines.append(
            f"{self._now()} net {kind} {env.src}->{env.dst} {call.method} "
            f"#{call.request_id} seq={env.seq}"
        )

    def sender(self, send: AsyncSend) -> AsyncSend:
        """`send`, recording each exchange (and a client-side timeout) as it completes."""

        async def recorded(
            method: str,
            path: str,
            body: Any = None,
            *,
            headers: dict[str, str] | None = None,
            timeout: float | None = None,
        ) -> Response:
            self.lines.append(f"{self._now()} rest > {method} {path} {_json(body)}")
            try:
                resp = await send(method, path, body, headers=headers, timeout=timeout)
            except TimeoutError:
                self.lines.append(f"{self._now()} rest < {method} {path} client timeout")
                raise
            self.lines.append(
                f"{self._now()} rest < {method} {path} {resp.status} {_json(resp.body)}"
            )
            return resp

        return recorded


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def trace(result: Any, recorder: Recorder) -> str:
    """The run as text: the report (a `ScenarioResult`), then every event in order."""
    report = dataclasses.asdict(result)
    return "\n".join(
        ["report " + json.dumps(report, sort_keys=True, indent=1), *recorder.lines, ""]
    )


def first_difference(a: str, b: str, *, context: int = 3) -> str:
    """Where two traces part, as a short unified diff ("" when they are the same)."""
    if a == b:
        return ""
    left, right = a.splitlines(), b.splitlines()
    at = next(
        (i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
        min(len(left), len(right)),
    )
    lo = max(0, at - context)
    diff = difflib.unified_diff(
        left[lo : at + context + 1],
        right[lo : at + context + 1],
        "first run",
        "second run",
        lineterm="",
        n=context,
    )
    return f"the traces differ at line {at + 1}:\n" + "\n".join(diff)
