"""`tasksim check HISTORY` and `tasksim timeline HISTORY`: the checkers and the timeline, offline.

`check` prints one line per checker (passed / failed / vacuous, how much it looked at) and a table
of the violations with the events that witness them; it exits 0 when no checker failed, 1 when one
did, 2 when the history cannot be read. `timeline` writes the self-contained HTML page.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coordinator.history.checkers import CHECKERS, Result, check_all
from simnode.history import History, HistoryError, dumps, read

EXIT_OK, EXIT_VIOLATIONS, EXIT_UNREADABLE = 0, 1, 2
MARK = {
    "passed": "[green]passed [/]",
    "failed": "[red]FAILED [/]",
    "vacuous": "[yellow]vacuous[/]",
}


def print_results(
    console: Console, history: History, results: dict[str, Result], *, source: str
) -> None:
    head = history.head
    console.print(
        f"[bold]{escape(source)}[/]: {len(history.events)} events over {history.end:.3f}s, "
        f"engine {head.get('engine')}, seed {head.get('seed')}, "
        f"nodes {', '.join(history.node_names)}",
        soft_wrap=True,
    )
    for name, result in results.items():
        console.print(f"  {MARK[result.status]} {name} [dim](checked {result.checked})[/]")
        for note in result.notes[:5]:
            console.print(f"      [dim]note: {escape(note)}[/]", soft_wrap=True)
    violations = [v for r in results.values() for v in r.violations]
    if not violations:
        return
    table = Table(title="violations", title_justify="left")
    table.add_column("t", justify="right")
    table.add_column("checker")
    table.add_column("what", overflow="fold")
    table.add_column("witnesses (line: event)", overflow="fold")
    for v in sorted(violations, key=lambda v: v.t):
        witnesses = "\n".join(
            f"{i + 2}: {_short(history.events[i])}" for i in v.events if i < len(history.events)
        )
        table.add_row(f"{v.t:.3f}", v.checker, escape(v.message), escape(witnesses))
    console.print(table)


def _short(event: dict[str, object]) -> str:
    text = dumps({k: v for k, v in event.items() if k not in ("summary", "rules")})
    return text if len(text) <= 160 else text[:157] + "..."


def check(path: Path, *, only: list[str] | None = None, as_json: bool = False) -> int:
    console = Console(highlight=False)
    try:
        history = read(path)
    except (OSError, HistoryError) as e:
        console.print(f"[red]tasksim check: {escape(str(e))}[/]", soft_wrap=True)
        return EXIT_UNREADABLE
    unknown = [n for n in only or () if n not in CHECKERS]
    if unknown:
        console.print(
            f"[red]tasksim check: no checker named {', '.join(unknown)} "
            f"(checkers: {', '.join(CHECKERS)})[/]"
        )
        return EXIT_UNREADABLE
    results = check_all(history, only)
    if as_json:
        print(json.dumps({n: r.to_json() for n, r in results.items()}, indent=2))
    else:
        print_results(console, history, results, source=str(path))
    return EXIT_VIOLATIONS if any(r.status == "failed" for r in results.values()) else EXIT_OK


def timeline(path: Path, out: Path | None) -> int:
    from coordinator.history.timeline import write_timeline

    console = Console(highlight=False, stderr=True)
    try:
        history = read(path)
    except (OSError, HistoryError) as e:
        console.print(f"[red]tasksim timeline: {escape(str(e))}[/]", soft_wrap=True)
        return EXIT_UNREADABLE
    target = out or path.with_suffix(".html")
    # a scenario report's history.jsonl is named after its directory (the scenario)
    title = path.parent.name if path.name == "history.jsonl" else path.stem
    write_timeline(history, check_all(history), target, title=title)
    console.print(f"timeline: {target}")
    return EXIT_OK
