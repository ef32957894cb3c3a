"""The results of one benchmark run: targets checked, then `results.json`, `results.md`,
`latency.png`. Pure formatting of what `run.py` measured; it measures nothing itself."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# The targets on the 2-core machine.
P50_OVER_FLOOR = 1.5
READY_SECONDS = {5: 1.5, 32: 6.0}
RSS_MIB = 50.0
FILTERED_LIST_MS = 25.0
CANCEL_16_OVER_LIST = 3.0


def _target(name: str, limit: str, measured: str, ok: bool) -> dict[str, Any]:
    return {"target": name, "limit": limit, "measured": measured, "met": ok}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in results.get("latency", []):
        ratio = row["p50_over_grpc_floor"]
        out.append(
            _target(
                f"GET _tasks p50 / gRPC fan-out floor p50, {row['nodes']} nodes",
                f"≤ {P50_OVER_FLOOR}×",
                f"{ratio:.2f}× ({row['latency_ms']['tasks_http']['p50']:.2f} / "
                f"{row['latency_ms']['grpc_floor']['p50']:.2f} ms)",
                ratio <= P50_OVER_FLOOR,
            )
        )
    for row in results.get("startup", []):
        limit = READY_SECONDS.get(row["nodes"])
        if limit is not None:
            median = row["ready_s"]["median"]
            out.append(
                _target(
                    f"{row['nodes']} nodes ready (spawn → GET _tasks with every node)",
                    f"≤ {limit} s",
                    f"{median:.2f} s (median of {len(row['ready_s']['runs'])})",
                    median <= limit,
                )
            )
    rss = [row["rss_mib"]["node_max"] for row in results.get("startup", [])]
    if rss:
        out.append(
            _target(
                "RSS per node process (max over every cluster: ready, after the GET _tasks load)",
                f"≤ {RSS_MIB:.0f} MiB",
                f"{max(rss):.1f} MiB",
                max(rss) <= RSS_MIB,
            )
        )
    listing = results.get("listing")
    if listing:
        p50 = listing["grpc"]["exact"]["p50"]
        out.append(
            _target(
                f"filtered list over {listing['tasks']} tasks (`actions=` matching 10), "
                "server-side (bounded by the whole gRPC call)",
                f"≤ {FILTERED_LIST_MS:.0f} ms",
                f"{p50:.2f} ms call p50; {listing['server_side_ms']['exact']:.2f} ms over the "
                "empty-node floor",
                p50 <= FILTERED_LIST_MS,
            )
        )
    rec = results.get("recording")
    if rec:
        lat = rec["latency_ms"]
        out.append(
            _target(
                f"GET _tasks p50 recording a history / not recording, {rec['nodes']} nodes",
                f"≤ {rec['target']:.2f}×",
                f"{rec['ratio_p50']:.2f}× ({lat['recording']['p50']:.2f} / {lat['plain']['p50']:.2f} ms)",
                rec["met"],
            )
        )
    list_p50 = {
        row["nodes"]: row["latency_ms"]["tasks_http"]["p50"] for row in results.get("latency", [])
    }
    cancel = results.get("cancel")
    if cancel and "fanout16" in cancel["scenarios"]:
        base = list_p50.get(cancel["nodes"])
        if base:
            gone = cancel["scenarios"]["fanout16"]["p50_ms"]
            out.append(
                _target(
                    f"cancel of 16 descendants over {cancel['nodes']} nodes / one GET _tasks fan-out",
                    f"≤ {CANCEL_16_OVER_LIST}×",
                    f"{gone / base:.2f}× ({gone:.1f} / {base:.2f} ms)",
                    gone / base <= CANCEL_16_OVER_LIST,
                )
            )
    return out


def _ms(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# tasksim benchmark results",
        "",
        f"`{meta['command']}` — {meta['date']}, commit `{meta['commit']}`, "
        f"{meta['cpus']} CPUs, load average {meta['loadavg_start']} at the start and "
        f"{meta['loadavg_end']} at the end{' (quick counts)' if meta['quick'] else ''}.",
        "",
        "## Targets",
        "",
        "| target | limit | measured | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        lines.append(
            f"| {t['target']} | {t['limit']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
        )
    if results.get("latency"):
        lines += [
            "",
            "## `GET _tasks` beside its floors (ms; throughput with "
            f"{results['latency'][0]['throughput_conns']} concurrent clients)",
            "",
            "| nodes | GET _tasks p50 | p99 | req/s | gRPC fan-out floor p50 | p99 | fan-outs/s | "
            "HTTP constant p50 | p99 | req/s | p50 / gRPC floor | p50 / (gRPC + HTTP floors) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["latency"]:
            lat, tp = row["latency_ms"], row["throughput_per_s"]
            cells = [str(row["nodes"])]
            for key in ("tasks_http", "grpc_floor", "http_floor"):
                cells += [_ms(lat[key]["p50"]), _ms(lat[key]["p99"]), f"{tp[key]:.0f}"]
            cells += [
                f"{row['p50_over_grpc_floor']:.2f}×",
                f"{row['p50_over_grpc_plus_http_floor']:.2f}×",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            f"{results['latency'][0]['latency_ms']['tasks_http']['n']} timed calls per variant, "
            "in interleaved blocks of 25, after warm-up."
        )
    if results.get("startup"):
        lines += [
            "",
            "## Start-up and memory",
            "",
            "| nodes | ready (spawn → GET _tasks with every node), s | ready line says, s | "
            "node RSS max / mean, MiB | coordinator RSS, MiB | node RSS max after every section, MiB |",
            "|---|---|---|---|---|---|",
        ]
        for row in results["startup"]:
            runs = ", ".join(f"{r:.2f}" for r in row["ready_s"]["runs"])
            lines.append(
                f"| {row['nodes']} | {row['ready_s']['median']:.2f} ({runs}) | "
                f"{row['reported_s']:.2f} | {row['rss_mib']['node_max']:.1f} / "
                f"{row['rss_mib']['node_mean']:.1f} | {row['rss_mib']['coordinator']:.1f} | "
                f"{row['rss_mib_after_all']['node_max']:.1f} |"
            )
        lines.append("")
        lines.append(
            "The last column is measured after the property run, if one ran on that cluster."
        )
    cancel = results.get("cancel")
    if cancel:
        lines += [
            "",
            "## Cancel propagation (`POST _tasks/<root>/_cancel?wait_for_completion=true` → "
            f"every descendant gone; `bench/cancel_propagation.py`, {cancel['nodes']} nodes)",
            "",
            "| tree | descendants | runs | p50 ms | p99 | min | max | left behind |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in cancel["scenarios"].items():
            lines.append(
                f"| {name} | {row['descendants']} | {row['iterations']} | {_ms(row['p50_ms'])} | "
                f"{_ms(row['p99_ms'])} | {_ms(row['min_ms'])} | {_ms(row['max_ms'])} | "
                f"{row['leftovers']} |"
            )
        lines += [
            "",
            "`fanout16`: 16 children, round-robin over the nodes; `tree256`: the same 16 children with 15 "
            "grandchildren each, spread over the nodes.",
        ]
    listing = results.get("listing")
    if listing:
        g = listing["grpc"]
        lines += [
            "",
            f"## Listing on one node holding {listing['tasks']} live tasks (direct gRPC `ListTasks`, ms)",
            "",
            "| request | p50 | p99 | empty-node floor p50 | difference | `Registry.matching` in-process p50 |",
            "|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("exact", "`actions=bench:idle/needle` (10 match)"),
            ("wildcard", "`actions=*/needle` (10 match)"),
            ("unfiltered", "unfiltered (all of them)"),
        ):
            lines.append(
                f"| {label} | {_ms(g[key]['p50'])} | {_ms(g[key]['p99'])} | "
                f"{_ms(g[key + '_floor']['p50'])} | {_ms(listing['server_side_ms'][key])} | "
                f"{_ms(listing['in_process_matching'][key]['p50'])} |"
            )
        lines.append("")
        lines.append(
            f"Starting them took {listing['start_seconds']:.1f} s (one `StartTask` with `copies`); "
            f"the node's RSS then: {listing['node_rss_mib']:.0f} MiB."
        )
    hyp = results.get("hypothesis")
    if hyp:
        lines += [
            "",
            "## Hypothesis against a live cluster",
            "",
            f"{hyp['examples']} examples of a random-`GET _tasks`-parameters property against "
            f"{hyp['nodes']} nodes in {hyp['seconds']:.2f} s: **{hyp['examples_per_s']} examples/s**"
            + (f" (the property failed: {hyp['failure']})" if hyp["failure"] else "")
            + ".",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.get("latency", [])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    series = (
        ("tasks_http", "GET _tasks (HTTP → coordinator → nodes)", "tab:blue"),
        ("grpc_floor", "bare grpcio fan-out to the same nodes", "tab:orange"),
        ("http_floor", "HTTP stack answering a constant", "tab:green"),
    )
    xs = [row["nodes"] for row in rows]
    for key, label, color in series:
        ax.plot(
            xs,
            [r["latency_ms"][key]["p50"] for r in rows],
            "o-",
            color=color,
            label=f"{label}, p50",
        )
        ax.plot(
            xs,
            [r["latency_ms"][key]["p99"] for r in rows],
            "x--",
            color=color,
            alpha=0.6,
            label="p99",
        )
    if xs:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("node processes")
    ax.set_ylabel("latency, ms")
    ax.set_title("GET _tasks latency against node count, beside its floors")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> None:
    results["targets"] = targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "latency.png")
