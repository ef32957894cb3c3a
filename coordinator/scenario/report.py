"""What a run of scenarios tells its reader: progress lines and a summary table on the terminal
(rich), a JSON report and JUnit XML for CI. On a failure: what failed, the seed, and the one-line
command that runs it again. Writes files and the terminal; decides nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coordinator.scenario.loader import ScenarioError
from coordinator.scenario.runner import ScenarioResult, StepResult

MARK = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "error": "[red]![/]", "skipped": "[dim]-[/]"}
STATUS = {
    "passed": "[green]PASS[/]",
    "failed": "[red]FAIL[/]",
    "vacuous": "[yellow]VACUOUS[/]",
    "error": "[red]ERROR[/]",
}


class Terminal:
    def __init__(self, console: Console | None = None, *, verbose: bool = True) -> None:
        self.console = console or Console(highlight=False)
        self.verbose = verbose

    def validation(self, errors: list[ScenarioError]) -> None:
        for error in errors:
            self.console.print(f"[red]error[/] {escape(str(error))}", soft_wrap=True)
        files = len({e.file for e in errors})
        self.console.print(
            f"[red]{len(errors)} validation error(s) in {files} file(s); nothing was run[/]"
        )

    def begin(self, index: int, total: int, name: str, file: str) -> None:
        self.console.rule(
            f"[bold]{index}/{total} {escape(name)}[/] [dim]{escape(file)}[/]", align="left"
        )

    def progress(self, event: str, data: Any) -> None:
        if not self.verbose:
            return
        if event == "cluster":
            self.console.print(f"  [dim]starting the cluster (seed {data['seed']})[/]")
        elif event == "step_done" and isinstance(data, StepResult):
            mark = MARK.get(data.status, "?")
            detail = f" [dim]— {escape(data.detail)}[/]" if data.detail else ""
            self.console.print(
                f"  {mark} {escape(data.label)} [dim]({data.duration:.2f}s)[/]{detail}",
                soft_wrap=True,
            )
            for problem in data.problems:
                self.console.print(f"      [red]{escape(problem)}[/]", soft_wrap=True)
        elif event == "healed":
            ok = data.get("acknowledged")
            self.console.print(
                f"  {'[green]✓[/]' if ok else '[red]✗[/]'} heal [dim]— rules version "
                f"{data.get('version')}, resumed {escape(str(data.get('resumed', [])))}, "
                f"restarted {escape(str(data.get('restarted', [])))}[/]"
            )
        elif event == "history":
            marks = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "vacuous": "[yellow]∅[/]"}
            line = "  ".join(f"{marks[r.status]} {name}" for name, r in data.items())
            self.console.print(f"  history: {line}", soft_wrap=True)
        elif event == "eventually":
            for name, outcome in data.items():
                if outcome["held"]:
                    self.console.print(
                        f"  [green]✓[/] eventually {name} [dim](after {outcome['after']:.2f}s)[/]"
                    )
                else:
                    self.console.print(f"  [red]✗[/] eventually {name}")

    def end(self, result: ScenarioResult) -> None:
        self.console.print(f"  {STATUS[result.status]} [dim]in {result.duration:.2f}s[/]")
        if result.status != "passed":
            if result.error:
                self.console.print(f"  [red]{escape(result.error)}[/]", soft_wrap=True)
            for failure in result.failures:
                if failure != result.error:
                    self.console.print(f"  [red]- {escape(failure)}[/]", soft_wrap=True)
            self.console.print(
                f"  seed {result.seed}; run it again: [bold]{escape(result.repro)}[/]",
                soft_wrap=True,
            )

    def summary(self, results: list[ScenarioResult], files: dict[str, str]) -> None:
        table = Table(title="tasksim scenarios", title_justify="left")
        table.add_column("scenario")
        table.add_column("result")
        table.add_column("time", justify="right")
        table.add_column("seed", justify="right")
        table.add_column("first problem", overflow="fold")
        for r in results:
            first = r.error or (r.failures[0] if r.failures else "")
            table.add_row(
                escape(r.name), STATUS[r.status], f"{r.duration:.1f}s", str(r.seed), escape(first)
            )
        self.console.print(table)
        passed = sum(r.status == "passed" for r in results)
        vacuous = sum(r.status == "vacuous" for r in results)
        self.console.print(
            f"{passed} passed, {sum(r.status == 'failed' for r in results)} failed, "
            + (f"{vacuous} vacuous, " if vacuous else "")
            + f"{sum(r.status == 'error' for r in results)} error(s)"
        )
        for name, path in files.items():
            self.console.print(f"[dim]{name}: {escape(path)}[/]", soft_wrap=True)


def to_json(results: list[ScenarioResult], *, started: dt.datetime) -> dict[str, Any]:
    return {
        "tool": "tasksim run",
        "started": started.isoformat(timespec="seconds"),
        "summary": {
            "total": len(results),
            "passed": sum(r.status == "passed" for r in results),
            "failed": sum(r.status == "failed" for r in results),
            "vacuous": sum(r.status == "vacuous" for r in results),
            "errors": sum(r.status == "error" for r in results),
        },
        "scenarios": [dataclasses.asdict(r) for r in results],
    }


def to_junit(results: list[ScenarioResult]) -> ET.ElementTree:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="tasksim.scenarios",
        tests=str(len(results)),
        failures=str(sum(r.status == "failed" for r in results)),
        errors=str(sum(r.status == "error" for r in results)),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"scenarios.{Path(r.file).stem}",
            name=r.name,
            file=r.file,
            time=f"{r.duration:.3f}",
        )
        steps = "\n".join(
            f"{s.status:>7} {s.label} ({s.duration:.2f}s) {s.detail}" for s in r.steps
        )
        if r.status == "vacuous":  # it ran, but did not test what it says: not a pass
            skipped = ET.SubElement(
                case, "skipped", message="vacuous: " + (r.failures[0] if r.failures else "")
            )
            skipped.text = "\n".join(r.failures)
        elif r.status != "passed":
            tag = "failure" if r.status == "failed" else "error"
            message = r.error or (r.failures[0] if r.failures else r.status)
            body = "\n".join(
                [
                    *r.failures,
                    *([r.error] if r.error else []),
                    "",
                    f"seed: {r.seed}",
                    f"repro: {r.repro}",
                    "",
                    steps,
                ]
            )
            element = ET.SubElement(case, tag, message=message, type=r.status)
            element.text = body
        out = ET.SubElement(case, "system-out")
        out.text = f"seed: {r.seed}\nrepro: {r.repro}\n{steps}"
    ET.indent(suites)
    return ET.ElementTree(suites)


def write(
    results: list[ScenarioResult], directory: Path, *, started: dt.datetime
) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    junit_path = directory / "junit.xml"
    json_path.write_text(json.dumps(to_json(results, started=started), indent=2) + "\n")
    to_junit(results).write(junit_path, encoding="utf-8", xml_declaration=True)
    return {"JSON report": str(json_path), "JUnit XML": str(junit_path)}
