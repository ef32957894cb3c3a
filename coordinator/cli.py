"""The `tasksim` command."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click
import trio

from coordinator.cluster import ClusterConfig, FaultDetection
from coordinator.main import Ready, run
from coordinator.supervisor import SupervisorError

MAX_NODES = 64


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tasksim: a multi-node cluster simulator of the OpenSearch Tasks API."""


@cli.command()
@click.option(
    "--nodes",
    "nodes",
    default="3",
    show_default=True,
    help="node processes to start (1-64), besides the coordinating node",
)
@click.option(
    "--port", default=9200, show_default=True, type=int, help="REST port; 0 picks a free one"
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address for REST and gRPC")
@click.option("--cluster-name", default="tasksim", show_default=True)
@click.option("--seed", default=None, type=int, help="seed for node ids (default: random)")
@click.option("--demo", is_flag=True, help="start long-running simulated work (reindex, search)")
@click.option(
    "--no-fault-detection", is_flag=True, help="keep unresponsive nodes in the cluster forever"
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="the cluster (nodes, roles, fault detection) of a scenario file, or a bare cluster section",
)
def up(
    nodes: str,
    port: int,
    host: str,
    cluster_name: str,
    seed: int | None,
    demo: bool,
    no_fault_detection: bool,
    config_file: str | None,
) -> None:
    """Start a local cluster and serve the REST API until Ctrl-C."""
    extra = {} if seed is None else {"seed": seed}
    if config_file is not None:
        config = _config_from_file(config_file, nodes, cluster_name, host, no_fault_detection, seed)
        count = len(config.nodes)
    else:
        try:
            count = int(nodes)
        except ValueError:
            count = -1
        if not 1 <= count <= MAX_NODES:
            raise click.UsageError(
                f"--nodes must be a whole number from 1 to {MAX_NODES}, got '{nodes}'"
            )
        config = ClusterConfig.with_nodes(
            count,
            cluster_name=cluster_name,
            host=host,
            fault_detection=FaultDetection(enabled=not no_fault_detection),
            **extra,
        )

    def ready(r: Ready) -> None:
        click.echo(
            f'tasksim: REST API on http://{host}:{r.http_port} — cluster "{cluster_name}", '
            f"{count} node(s) + coordinating node, ready in {r.seconds:.2f}s (Ctrl-C stops)",
        )
        for n in r.cluster.state.nodes:
            roles = ",".join(n.roles) or "-"
            click.echo(f"  {n.name:<12} {n.id}  {n.transport_address:<21} roles={roles}")
        sys.stdout.flush()

    trio.run(lambda: run(config, http_host=host, http_port=port, demo=demo, on_ready=ready))


@cli.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--seed", default=None, type=int, help="override every scenario's seed")
@click.option("--url", default=None, help="run against this running cluster instead of a new one")
@click.option(
    "--report-dir",
    default="tasksim-reports",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="where report.json, junit.xml and the cluster logs go",
)
@click.option("-k", "match", default=None, help="only the scenarios whose name contains this")
@click.option("-q", "--quiet", is_flag=True, help="no step-by-step progress")
def run_scenarios(
    paths: tuple[Path, ...],
    seed: int | None,
    url: str | None,
    report_dir: Path,
    match: str | None,
    quiet: bool,
) -> None:
    """Run YAML failure scenarios (files, or directories of *.yaml): exit 0 all passed,
    1 a scenario failed, 2 a scenario is invalid (nothing runs)."""
    from coordinator.scenario.cli import run as run_all

    sys.exit(
        run_all(list(paths), seed=seed, url=url, report_dir=report_dir, quiet=quiet, match=match)
    )


def _config_from_file(
    path: str,
    nodes: str,
    cluster_name: str,
    host: str,
    no_fault_detection: bool,
    seed: int | None,
) -> ClusterConfig:
    from coordinator.scenario.loader import LoadError
    from coordinator.scenario.schema import load_cluster_section

    try:
        section = load_cluster_section(Path(path))
    except LoadError as e:
        raise click.UsageError(str(e)) from None
    ctx = click.get_current_context()
    given = ctx.get_parameter_source("nodes") is not click.core.ParameterSource.DEFAULT
    if given and nodes != str(len(section.node_names())):
        raise click.UsageError(
            f"--nodes {nodes} and --config ({len(section.node_names())} nodes) disagree"
        )
    config = replace(section.to_config(seed), cluster_name=cluster_name, host=host)
    if no_fault_detection:
        config = replace(config, fault_detection=FaultDetection(enabled=False))
    return config


def _leaf(exc: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of `types` inside (possibly nested) exception groups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _leaf(inner, types)
            if found is not None:
                return found
    return None


def main() -> None:
    try:
        _main()
    except BaseExceptionGroup as group:
        found = _leaf(group, (OSError, SupervisorError, KeyboardInterrupt))
        if found is None:
            raise
        if isinstance(found, KeyboardInterrupt):
            sys.exit(130)
        click.echo(f"tasksim: {found}", err=True)
        sys.exit(1)


def _main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as e:
        click.echo(f"tasksim: {e.format_message()}", err=True)
        sys.exit(2)
    except (OSError, SupervisorError) as e:
        click.echo(f"tasksim: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
