"""Seed sweeps on the sim engine: each scenario under N seeds, on K worker processes.

`tasksim run --engine sim --seeds N [-j K] [--check-determinism] PATHS` runs every (scenario,
seed) — seeds `s, s+1, ... s+N-1` from `--seed` or the scenario's own — in a fresh simulated world.
Workers are fresh interpreters (`multiprocessing`'s `spawn`, never a fork: gRPC may be loaded) that
inherit PYTHONHASHSEED=0 from the CLI (scenario/cli.py), so a seed's run is the same in any of them.
`-j 1` runs in this process. A scenario with `sweep: false` (expectations of one seed) runs once.

`--check-determinism` runs each (scenario, seed) twice — two jobs, so with `-j 2` or more they
usually land in two different processes — and fails the seed when the two traces
(coordinator/scenario/trace.py) differ, printing the first difference.

Each failing seed is reported with the one command line that replays it. Runs scenarios; the
terminal and the report files are scenario/report.py's.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coordinator.scenario.runner import ScenarioResult, run_on_sim
from coordinator.scenario.schema import Scenario, load_scenario
from coordinator.scenario.trace import first_difference


@dataclass(frozen=True)
class Job:
    file: str
    seed: int
    attempt: int  # 0, or 1 for the second run of a determinism check


@dataclass
class Done:
    job: Job
    result: ScenarioResult
    trace: str | None
    wall: float  # seconds of wall time the run took
    pid: int  # the process that ran it


def run_job(job: Job, record: bool) -> Done:
    """One (scenario, seed) in this process (a worker's entry point: picklable arguments)."""
    file = Path(job.file)
    started = time.perf_counter()
    result, trace = run_on_sim(load_scenario(file), file, seed=job.seed, record=record)
    return Done(job, result, trace, time.perf_counter() - started, os.getpid())


@dataclass
class SeedOutcome:
    """One (scenario, seed) of a sweep: its result and, when checked, whether it replayed."""

    result: ScenarioResult
    wall: float
    difference: str = ""  # the first difference of the two traces ("" = identical or unchecked)
    processes: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result.status in ("passed", "skipped") and not self.difference


def jobs_for(
    loaded: list[tuple[Path, Scenario]], *, seeds: int, seed: int | None, twice: bool
) -> list[Job]:
    jobs = []
    for file, scenario in loaded:
        base = seed if seed is not None else scenario.default_seed()
        count = seeds if scenario.sweep else 1  # `sweep: false`: its expectations are its seed's
        for s in range(base, base + count):
            for attempt in range(2 if twice else 1):
                jobs.append(Job(str(file), s, attempt))
    return jobs


def run_jobs(jobs: list[Job], *, workers: int, record: bool) -> Iterator[Done]:
    """Each job's outcome, as it completes (in order with one worker)."""
    if workers <= 1:
        for job in jobs:
            yield run_job(job, record)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_job, job, record) for job in jobs]
        for future in futures:
            yield future.result()


def sweep(
    loaded: list[tuple[Path, Scenario]],
    *,
    seeds: int,
    seed: int | None,
    workers: int,
    check_determinism: bool,
) -> Iterator[SeedOutcome]:
    """Every (scenario, seed) of the sweep, in order, as soon as it is known."""
    jobs = jobs_for(loaded, seeds=seeds, seed=seed, twice=check_determinism)
    first: dict[tuple[str, int], Done] = {}
    for done in run_jobs(jobs, workers=workers, record=check_determinism):
        key = (done.job.file, done.job.seed)
        if not check_determinism:
            yield SeedOutcome(done.result, done.wall, processes=(done.pid,))
        elif done.job.attempt == 0:
            first[key] = done
        else:
            one = first.pop(key)
            difference = first_difference(one.trace or "", done.trace or "")
            yield SeedOutcome(
                one.result, one.wall, difference=difference, processes=(one.pid, done.pid)
            )
