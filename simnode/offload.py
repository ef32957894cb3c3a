"""Heavy Python work off the trio loop, so that one large request does not hold every other.

`offload(fn, *args)` runs `fn` in a worker thread and waits for it — on the real engine. A run of
the simulation engine must stay one thread on virtual time (a thread's wall-clock work is invisible
to the virtual clock, and its completion would arrive at a time no seed decides), so there the work
runs inline: the engine calls `run_inline()` once at the start of its trio run. Callers do not know
which engine they run on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
from trio.lowlevel import RunVar

T = TypeVar("T")

_INLINE: RunVar[bool] = RunVar("tasksim_offload_inline", default=False)


def run_inline() -> None:
    """From now on in this trio run, `offload` runs its work inline (the sim engine)."""
    _INLINE.set(True)


async def offload(fn: Callable[..., T], *args: object) -> T:
    if _INLINE.get():
        return fn(*args)
    return await trio.to_thread.run_sync(fn, *args)
