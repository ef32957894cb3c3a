"""Virtual time and a seeded scheduler: the two things that make a trio run reproducible.

`VirtualClock` is a `trio.abc.Clock` whose time only moves when nothing can run: trio asks the clock
how long to sleep only when its run queue is empty (trio/_core/_run.py, the `while runner.tasks`
loop), and this clock answers by jumping straight to the next deadline and returning 0. No wall time
is read, ever; a run of ten virtual minutes costs what its events cost. A run with nothing runnable
and no deadline left is stuck for good (a deadlock of the simulated system, since there is no real
I/O to wait for): the clock then answers with a long real sleep and counts it in `stalls`. The sim
engine never lets it come to that: `run_sim` and every `SimWorld` call run under a virtual-time
limit (coordinator/engine/sim.py, `VIRTUAL_LIMIT`), a deadline the clock jumps to when nothing else
is left, which ends a deadlocked or livelocked run with `SimStuck`. (A `SimWorld` that holds still
between its driver's calls sleeps here too, woken by the next call through the trio token.)

`deterministic_scheduling(seed)` makes trio's scheduling choices a function of the seed: trio picks
the order of each batch of runnable tasks with its module-level `random.Random` (`_r`); with
`_ALLOW_DETERMINISTIC_SCHEDULING` (pytest-trio's switch) it first sorts the batch by task creation
order, then shuffles it with `_r`. Seeding `_r` makes the shuffle the seed's, so different seeds
explore different interleavings and one seed replays one. Both are trio internals, read here and
nowhere else; `tests/unit/test_sim_clock.py` fails loudly if a trio upgrade removes them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from trio._core import _run as trio_run

# A fixed epoch for the simulated wall clock: 2026-01-01T00:00:00Z, plus up to a year by seed.
EPOCH_BASE_MILLIS = 1_767_225_600_000
STALL_SLEEP = 3600.0


def epoch_millis_for(seed: int | str) -> int:
    """The simulated wall-clock time (epoch millis) at virtual time 0 for a seed."""
    rng = random.Random(f"tasksim-epoch:{seed}")
    return EPOCH_BASE_MILLIS + rng.randrange(365 * 86_400) * 1000


class VirtualClock(trio.abc.Clock):
    """Virtual seconds since the run started; jumps to the next deadline when nothing runs."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.jumps = 0
        self.stalls = 0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if deadline <= self._now:
            return 0.0
        if math.isinf(deadline):
            self.stalls += 1
            return STALL_SLEEP
        self._now = deadline
        self.jumps += 1
        return 0.0


@contextmanager
def deterministic_scheduling(seed: int | str) -> Iterator[None]:
    """Seed trio's scheduler for one run (restored afterwards)."""
    rng: random.Random = trio_run._r
    state = rng.getstate()
    allow = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    rng.seed(f"tasksim-scheduler:{seed}")
    setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010 (Final upstream)
    try:
        yield
    finally:
        setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", allow)  # noqa: B010
        rng.setstate(state)
