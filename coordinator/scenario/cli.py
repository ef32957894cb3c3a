"""`tasksim run PATH...`: validate every scenario first (any error: exit 2, nothing runs), then run
them one by one against a fresh cluster each (or `--url`, an existing one), print progress and a
summary, write `report.json` and `junit.xml`, and exit 0 when every scenario passed, else 1.
Ctrl-C heals, stops the cluster, writes the reports of what ran, and exits 130.
"""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import trio

from coordinator.scenario import report
from coordinator.scenario.loader import LoadError, ScenarioError
from coordinator.scenario.runner import ScenarioResult, ScenarioRun
from coordinator.scenario.schema import Scenario, collect, load_scenario

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def validate(paths: list[Path]) -> tuple[list[tuple[Path, Scenario]], list[ScenarioError]]:
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
) -> int:
    terminal = report.Terminal(verbose=not quiet)
    loaded, errors = validate(paths)
    if errors:
        terminal.validation(errors)
        return EXIT_INVALID
    if match:
        loaded = [(f, s) for f, s in loaded if match in s.name]
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
    files = report.write(results, report_dir, started=started)
    terminal.summary(results, files)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.status == "passed" for r in results) else EXIT_FAILED
