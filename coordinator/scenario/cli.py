"""`tasksim run PATH...`: validate every scenario first (any error: exit 2, nothing runs), then run
them one by one against a fresh cluster each (or `--url`, an existing one), print progress and a
summary, write `report.json` and `junit.xml`, and exit 0 when every scenario passed (or was skipped:
it needs the other engine), else 1. Ctrl-C heals, stops the cluster, writes the reports of what
ran, and exits 130.

`--engine sim` runs each scenario in a fresh simulated world (coordinator/engine/sim.py) for its
seed; `--seeds N` / `--check-determinism` make it a sweep (scenario/sweep.py).
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path

import trio
from rich.markup import escape
from rich.table import Table

from coordinator.scenario import report
from coordinator.scenario.loader import LoadError, ScenarioError
from coordinator.scenario.runner import ScenarioResult, ScenarioRun, run_on_sim
from coordinator.scenario.schema import Scenario, collect, load_scenario
from coordinator.scenario.sweep import SeedOutcome, sweep

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def validate(
    paths: list[Path],
) -> tuple[list[tuple[Path, Scenario]], list[ScenarioError]]:
    loaded: list[tuple[Path, Scenario]] = []
    errors: list[ScenarioError] = []
    files = collect(paths)
    if not files:
        errors.append(
            ScenarioError(
                " ".join(map(str, paths)), None, None, "", "no scenario files (*.yaml) found"
            )
        )
    for file in files:
        if not file.exists():
            errors.append(ScenarioError(str(file), None, None, "", "no such file"))
            continue
        try:
            loaded.append((file, load_scenario(file)))
        except LoadError as e:
            errors.extend(sorted(e.errors, key=lambda x: (x.line or 0, x.column or 0)))
    names: dict[str, Path] = {}
    for file, scenario in loaded:
        if scenario.name in names:
            errors.append(
                ScenarioError(
                    str(file),
                    None,
                    None,
                    "name",
                    f"scenario name {scenario.name!r} is used by {names[scenario.name]} too",
                )
            )
        names[scenario.name] = file
    return loaded, errors


def run(
    paths: list[Path],
    *,
    seed: int | None,
    url: str | None,
    report_dir: Path,
    quiet: bool,
    match: str | None = None,
    engine: str = "real",
    seeds: int = 1,
    jobs: int = 1,
    check_determinism: bool = False,
) -> int:
    terminal = report.Terminal(verbose=not quiet)
    loaded, errors = validate(paths)
    if errors:
        terminal.validation(errors)
        return EXIT_INVALID
    if match:
        loaded = [(f, s) for f, s in loaded if match in s.name]
    if engine == "sim":
        if seeds > 1 or check_determinism or jobs > 1:
            return run_sweep(
                loaded,
                seed=seed,
                seeds=seeds,
                jobs=jobs,
                check_determinism=check_determinism,
                report_dir=report_dir,
                terminal=terminal,
            )
        return run_simulated(loaded, seed=seed, report_dir=report_dir, terminal=terminal)
    started = dt.datetime.now(dt.UTC)
    results: list[ScenarioResult] = []
    interrupted = False

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_terminate_on_sigterm, nursery.cancel_scope)
            await scenarios()
            nursery.cancel_scope.cancel()

    async def _terminate_on_sigterm(scope: trio.CancelScope) -> None:
        nonlocal interrupted
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                interrupted = True
                scope.cancel()  # the running scenario heals and stops its cluster on the way out
                return

    async def scenarios() -> None:
        for i, (file, scenario) in enumerate(loaded, start=1):
            terminal.begin(i, len(loaded), scenario.name, str(file))
            one = ScenarioRun(
                scenario,
                file,
                seed=seed,
                url=url,
                log_dir=report_dir / "logs",
                progress=terminal.progress,
            )
            try:
                await one.run()
            finally:  # an interrupted scenario is reported too
                if interrupted and one.result.error is None:
                    one.result.error = "terminated (SIGTERM): healed and stopped"
                results.append(one.result)
                terminal.end(one.result)

    try:
        trio.run(main)
    except (KeyboardInterrupt, BaseExceptionGroup) as e:
        if isinstance(e, BaseExceptionGroup) and not e.subgroup(KeyboardInterrupt):
            raise
        interrupted = True
    if interrupted:
        terminal.console.print("[red]interrupted: the cluster was healed and stopped[/]")
    return _finish(results, report_dir, terminal, started=started, interrupted=interrupted)


def _finish(
    results: list[ScenarioResult],
    report_dir: Path,
    terminal: report.Terminal,
    *,
    started: dt.datetime,
    interrupted: bool,
) -> int:
    """Write the reports, print the summary; the exit code of the run."""
    files = report.write(results, report_dir, started=started)
    terminal.summary(results, files)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.status in ("passed", "skipped") for r in results) else EXIT_FAILED


def run_simulated(
    loaded: list[tuple[Path, Scenario]],
    *,
    seed: int | None,
    report_dir: Path,
    terminal: report.Terminal,
) -> int:
    """Each scenario on the sim engine in this process, one fresh simulated world each."""
    started = dt.datetime.now(dt.UTC)
    results: list[ScenarioResult] = []
    interrupted = False
    try:
        for i, (file, scenario) in enumerate(loaded, start=1):
            terminal.begin(i, len(loaded), scenario.name, str(file))
            t = time.perf_counter()
            result, _ = run_on_sim(
                scenario,
                file,
                seed=seed,
                progress=terminal.progress,
                history_dir=report_dir / scenario.name,
            )
            results.append(result)
            terminal.end(result, wall=time.perf_counter() - t)
    except KeyboardInterrupt:
        interrupted = True
        terminal.console.print("[red]interrupted[/]")
    return _finish(results, report_dir, terminal, started=started, interrupted=interrupted)


def run_sweep(
    loaded: list[tuple[Path, Scenario]],
    *,
    seed: int | None,
    seeds: int,
    jobs: int,
    check_determinism: bool,
    report_dir: Path,
    terminal: report.Terminal,
) -> int:
    """Every scenario under `seeds` seeds on `jobs` worker processes (scenario/sweep.py)."""
    started = dt.datetime.now(dt.UTC)
    console = terminal.console
    console.print(
        f"sweep: {len(loaded)} scenario(s) × {seeds} seed(s)"
        + (" × 2 runs (determinism check)" if check_determinism else "")
        + f" on {jobs} worker process(es)"
    )
    outcomes: list[SeedOutcome] = []
    interrupted = False
    t = time.perf_counter()
    try:
        for outcome in sweep(
            loaded, seeds=seeds, seed=seed, workers=jobs, check_determinism=check_determinism
        ):
            outcomes.append(outcome)
            r = outcome.result
            if outcome.ok:
                if terminal.verbose:
                    console.print(
                        f"  {report.STATUS[r.status]} {escape(r.name)} seed {r.seed} "
                        f"[dim]({r.duration:.2f}s virtual, {outcome.wall:.2f}s wall)[/]"
                    )
                continue
            problem = r.error or (r.failures[0] if r.failures else r.status)
            if r.status in ("passed", "skipped"):
                problem = "not deterministic: the two runs' traces differ"
            console.print(
                f"  {report.STATUS.get(r.status if not outcome.difference else 'failed')} "
                f"{escape(r.name)} seed {r.seed}: {escape(problem)}",
                soft_wrap=True,
            )
            if outcome.difference:
                console.print(escape(outcome.difference), soft_wrap=True, highlight=False)
            console.print(f"    replay: [bold]{escape(r.repro)}[/]", soft_wrap=True)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[red]interrupted[/]")
    wall = time.perf_counter() - t
    results = [o.result for o in outcomes]
    files = report.write(results, report_dir, started=started, sweep=True)
    table = Table(title="tasksim sweep", title_justify="left")
    for column in ("scenario", "seeds", "passed", "failed", "skipped", "replays"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for _file, scenario in loaded:
        mine = [o for o in outcomes if o.result.name == scenario.name]
        table.add_row(
            escape(scenario.name),
            str(len(mine)),
            str(sum(o.result.status == "passed" for o in mine)),
            str(sum(o.result.status in ("failed", "error") for o in mine)),
            str(sum(o.result.status == "skipped" for o in mine)),
            (f"{sum(not o.difference for o in mine)}/{len(mine)}" if check_determinism else "-"),
        )
    console.print(table)
    bad = [o for o in outcomes if not o.ok]
    console.print(
        f"{len(outcomes)} (scenario, seed) pair(s), {len(bad)} failing, "
        f"{len(outcomes) * (2 if check_determinism else 1)} run(s) in {wall:.1f}s wall"
    )
    for name, path in files.items():
        console.print(f"[dim]{name}: {escape(path)}[/]", soft_wrap=True)
    if interrupted:
        return EXIT_INTERRUPTED
    replay_failures(bad, report_dir, terminal)
    return EXIT_FAILED if bad else EXIT_OK


REPLAYED_FAILURES = 3


def replay_failures(bad: list[SeedOutcome], report_dir: Path, terminal: report.Terminal) -> None:
    """The first failing (scenario, seed) pairs of a sweep, run once more with their history: a
    seed replays its run, so the history, checks and timeline are those of the failure itself
    (`<report dir>/<scenario>/seed-<S>/`). A sweep's thousands of passing runs record nothing."""
    for outcome in bad[:REPLAYED_FAILURES]:
        r = outcome.result
        if r.status in ("passed", "skipped"):
            continue  # a determinism difference: its trace said what differs
        file = Path(r.file)
        where = report_dir / r.name / f"seed-{r.seed}"
        replayed, _ = run_on_sim(load_scenario(file), file, seed=r.seed, history_dir=where)
        terminal.console.print(
            f"  {escape(r.name)} seed {r.seed} replayed with its history ({replayed.status}): "
            f"{escape(replayed.timeline or replayed.history or str(where))}",
            soft_wrap=True,
        )
