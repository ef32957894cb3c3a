"""The `tasksim` command."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
import trio

from coordinator.cluster import ClusterConfig, FaultDetection, NodeConfig
from coordinator.limits import Limits, SettingsError
from coordinator.main import Ready, run
from coordinator.security import (
    TRANSPORT_SERVER_NAME,
    BasicAuth,
    CredentialsError,
    TlsFiles,
    User,
    exposure_warning,
    fingerprint,
    is_loopback,
    self_signed,
)
from coordinator.supervisor import SupervisorError

if TYPE_CHECKING:
    from coordinator.scenario.schema import ClusterSection

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
    "--port",
    default=9200,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="REST port (0-65535); 0 picks a free one",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address for REST and the node transport; a non-loopback one needs --expose",
)
@click.option(
    "--expose",
    is_flag=True,
    help="allow a --host beyond loopback (0.0.0.0, a LAN address); prints a warning",
)
@click.option(
    "--security",
    is_flag=True,
    help="as the security plugin's demo setup: --tls, --auth admin:admin (unless --auth given) "
    "and --transport-tls",
)
@click.option(
    "--tls", is_flag=True, help="serve HTTPS with a self-signed certificate made at start"
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate (chain) for HTTPS instead of a self-signed one (implies --tls)",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of --tls-cert",
)
@click.option(
    "--auth",
    "auth",
    multiple=True,
    envvar="TASKSIM_AUTH",
    metavar="USER:PASSWORD",
    help="require HTTP basic auth with these credentials (repeatable; env TASKSIM_AUTH)",
)
@click.option(
    "--transport-tls",
    is_flag=True,
    help="mutual TLS between the coordinator and the nodes (implied by --security)",
)
@click.option(
    "-E",
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="a limit, e.g. -E http.max_content_length=10mb (see README: Limits)",
)
@click.option(
    "--node-names",
    "node_names",
    default=None,
    metavar="NAMES",
    help="the nodes' names: a comma list (opensearch-node1,opensearch-node2; its length is the "
    "node count) or a pattern with {n} (opensearch-node{n}, numbered 1..--nodes)",
)
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
@click.option(
    "--log-dir",
    "log_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="where each node's stderr goes (<node>.log; default: a temporary directory)",
)
@click.option(
    "--hosts",
    "hosts",
    type=click.Choice(["loopback", "netns"]),
    default=None,
    help="loopback: every node on 127.0.0.1 (default); netns: each node in its own network "
    "namespace and address, for `level: net` faults (root; see README)",
)
@click.option(
    "--record",
    "record",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the run's history to this file (JSON Lines; see README: Histories)",
)
def up(
    nodes: str,
    port: int,
    host: str,
    cluster_name: str,
    seed: int | None,
    demo: bool,
    no_fault_detection: bool,
    expose: bool,
    security: bool,
    tls: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    auth: tuple[str, ...],
    transport_tls: bool,
    settings: tuple[str, ...],
    config_file: str | None,
    log_dir: Path | None,
    hosts: str | None,
    record: Path | None,
    node_names: str | None,
) -> None:
    """Start a local cluster and serve the REST API until Ctrl-C."""
    try:
        count = int(nodes)
    except ValueError:
        count = -1
    section = None
    names: list[str] | None = None
    if config_file is not None:
        if node_names is not None:
            raise click.UsageError("--node-names and --config both name the nodes: give one")
        section = _cluster_section(config_file, nodes)
        count = len(section.node_names())
    elif node_names is not None:
        ctx = click.get_current_context()
        given = ctx.get_parameter_source("nodes") is not click.core.ParameterSource.DEFAULT
        if given and not 1 <= count <= MAX_NODES:
            raise click.UsageError(
                f"--nodes must be a whole number from 1 to {MAX_NODES}, got '{nodes}'"
            )
        try:
            names = expand_node_names(node_names, count if given or "{n}" in node_names else None)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        count = len(names)
    if not 1 <= count <= MAX_NODES:
        raise click.UsageError(
            f"--nodes must be a whole number from 1 to {MAX_NODES}, got '{nodes}'"
        )
    if not is_loopback(host) and not expose:
        raise click.UsageError(
            f"--host {host} is not a loopback address; listening beyond this machine needs "
            "--expose (and, most likely, --security)"
        )
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        limits = Limits.from_settings(settings)
        users = [User.parse(a) for a in auth]
    except (SettingsError, CredentialsError) as e:
        raise click.UsageError(str(e)) from None
    if security and not users:
        users = [User("admin", "admin")]
    # The node ports serve list/start/cancel, bans and fault rules (Node, MlNode, Control): with
    # --security only the cluster's own processes, holding the cluster's key, may call them.
    transport_tls = transport_tls or security
    https = security or tls or tls_cert is not None
    basic_auth = BasicAuth(users) if users else None
    if not is_loopback(host):
        click.echo(exposure_warning(host, secured=https and basic_auth is not None), err=True)
    extra = {} if seed is None else {"seed": seed}
    config = ClusterConfig.with_nodes(
        count,
        cluster_name=cluster_name,
        host=host,
        fault_detection=FaultDetection(enabled=not no_fault_detection),
        max_live_tasks=limits.max_live_tasks,
        log_dir=log_dir,
        **extra,
    )
    if names is not None:
        config = replace(config, nodes=tuple(NodeConfig(n) for n in names))
    if section is not None:  # the nodes and fault detection of a scenario's cluster
        from_file = section.to_config(seed)
        config = replace(config, nodes=from_file.nodes, hosts=from_file.hosts)
        if not no_fault_detection:
            config = replace(config, fault_detection=from_file.fault_detection)
    if hosts is not None:
        config = replace(config, hosts=hosts)
    if config.hosts == "netns":
        from coordinator.engine.netns import netns_problem

        problem = netns_problem()
        if problem is not None:
            raise click.UsageError(problem)
    scheme = "https" if https else "http"
    tls_dir = Path(tempfile.mkdtemp(prefix="tasksim-tls-")) if https or transport_tls else None
    http_tls: TlsFiles | None = None
    notes: list[str] = []
    try:
        if tls_cert is not None and tls_key is not None:
            http_tls = TlsFiles(tls_cert, tls_key)
        elif https and tls_dir is not None:
            http_tls = self_signed(tls_dir, hosts=[host], stem="http")
            notes.append(
                f"  TLS: self-signed certificate {http_tls.cert} "
                f"(SHA-256 {fingerprint(http_tls.cert.read_bytes())})"
            )
        if transport_tls and tls_dir is not None:
            config = replace(
                config,
                transport_tls=self_signed(
                    tls_dir,
                    hosts=[host],
                    common_name=TRANSPORT_SERVER_NAME,
                    extra_dns=[TRANSPORT_SERVER_NAME],
                    stem="transport",
                ),
            )
            notes.append("  transport: mutual TLS between the coordinator and every node")
        if basic_auth is not None:
            notes.append(f"  basic auth: user(s) {', '.join(basic_auth.users)}")
        _serve(
            config,
            scheme,
            host,
            port,
            demo,
            count,
            cluster_name,
            basic_auth,
            limits,
            http_tls,
            notes,
            record,
        )
    finally:
        if tls_dir is not None:
            shutil.rmtree(tls_dir, ignore_errors=True)


def _serve(
    config: ClusterConfig,
    scheme: str,
    host: str,
    port: int,
    demo: bool,
    count: int,
    cluster_name: str,
    basic_auth: BasicAuth | None,
    limits: Limits,
    http_tls: TlsFiles | None,
    notes: list[str],
    record: Path | None = None,
) -> None:
    def ready(r: Ready) -> None:
        click.echo(
            f'tasksim: REST API on {scheme}://{host}:{r.http_port} — cluster "{cluster_name}", '
            f"{count} node(s) + coordinating node, ready in {r.seconds:.2f}s (Ctrl-C stops)",
        )
        for n in r.cluster.state.nodes:
            roles = ",".join(n.roles) or "-"
            click.echo(f"  {n.name:<12} {n.id}  {n.transport_address:<21} roles={roles}")
        for note in notes:
            click.echo(note)
        if r.cluster.hosts.net is not None:
            from coordinator.engine.netns import NetnsHosts, describe_network

            if isinstance(r.cluster.hosts, NetnsHosts):
                click.echo(describe_network(r.cluster.hosts))
        if r.open_files is not None:
            click.echo(f"  {r.open_files.describe()}")
        sys.stdout.flush()

    warned: list[int] = []

    def tls_client(bound: int) -> None:
        """A TLS client reached the plain-HTTP port: say once what to start instead."""
        if not warned:
            warned.append(bound)
            click.echo(
                f"tasksim: a TLS (https) client reached the plain-HTTP port {bound}; start with "
                f"--security for https://localhost:{bound} with admin:admin",
                err=True,
            )

    trio.run(
        lambda: run(
            config,
            http_host=host,
            http_port=port,
            demo=demo,
            on_ready=ready,
            auth=basic_auth,
            limits=limits,
            http_tls=http_tls,
            record=record,
            on_tls_client=tls_client,
        )
    )


@cli.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--engine",
    type=click.Choice(["real", "sim"]),
    default="real",
    show_default=True,
    help="real: node processes on real time; sim: one process on virtual time, replayable by seed",
)
@click.option("--seed", default=None, type=int, help="override every scenario's seed")
@click.option(
    "--seeds",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="sim: run each scenario under this many seeds (--seed or its own, then +1, +2, ...)",
)
@click.option(
    "-j",
    "--jobs",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="sim: worker processes for a sweep",
)
@click.option(
    "--check-determinism",
    is_flag=True,
    help="sim: run each (scenario, seed) twice; fail when the two traces differ",
)
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
    engine: str,
    seed: int | None,
    seeds: int,
    jobs: int,
    check_determinism: bool,
    url: str | None,
    report_dir: Path,
    match: str | None,
    quiet: bool,
) -> None:
    """Run YAML failure scenarios (files, or directories of *.yaml): exit 0 all passed,
    1 a scenario failed, 2 a scenario is invalid (nothing runs)."""
    from coordinator.scenario.cli import run as run_all

    # Ctrl-C heals and stops, however the command was started: a process started with SIGINT
    # ignored (a shell script's `cmd &`) inherits SIG_IGN, and Python then installs no handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if engine == "real" and (seeds > 1 or jobs > 1 or check_determinism):
        raise click.UsageError("--seeds, -j and --check-determinism need --engine sim")
    if engine == "sim" and url is not None:
        raise click.UsageError("--url runs against a running (real) cluster: not with --engine sim")
    if engine == "sim":
        _fixed_hash_seed()
    sys.exit(
        run_all(
            list(paths),
            seed=seed,
            url=url,
            report_dir=report_dir,
            quiet=quiet,
            match=match,
            engine=engine,
            seeds=seeds,
            jobs=jobs,
            check_determinism=check_determinism,
        )
    )


@cli.command("clean")
def clean_command() -> None:
    """Remove the network namespaces, links and rules that a killed `tasksim up --hosts netns`
    left (its owner is dead); never anything of a running tasksim's, nor anything else."""
    from coordinator.engine.netns import clean_stale, netns_problem

    problem = netns_problem()
    if problem is not None:
        raise click.UsageError(problem.replace("--hosts netns", "tasksim clean"))
    removed = clean_stale()
    for item in removed:
        click.echo(f"removed {item}")
    click.echo(f"tasksim clean: {'nothing left behind' if not removed else 'done'}")


@cli.command("check")
@click.argument("history", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-c", "--checker", "only", multiple=True, help="run only this checker (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def check_history(history: Path, only: tuple[str, ...], as_json: bool) -> None:
    """Run the checkers over a recorded history: exit 0 no violation, 1 violations, 2 the
    history cannot be read."""
    from coordinator.history.cli import check

    sys.exit(check(history, only=list(only) or None, as_json=as_json))


@cli.command("timeline")
@click.argument("history", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="the HTML file to write (default: HISTORY with .html)",
)
def timeline_command(history: Path, output: Path | None) -> None:
    """Write the timeline of a recorded history: one self-contained HTML page."""
    from coordinator.history.cli import timeline

    sys.exit(timeline(history, output))


def _fixed_hash_seed() -> None:
    """The sim engine replays a seed byte for byte across processes only if string hashing (and so
    the iteration order of sets of strings) is the same in each: re-exec with PYTHONHASHSEED=0."""
    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ, PYTHONHASHSEED="0")
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def expand_node_names(spec: str, count: int | None) -> list[str]:
    """`--node-names`: `a,b,c` (`count`, when given, must agree) or a pattern with `{n}`, numbered
    from 1 to `count`. Raises ValueError with the one-line usage error."""
    if "{n}" in spec:
        if count is None or not 1 <= count <= MAX_NODES:
            raise ValueError(f"--nodes must be a whole number from 1 to {MAX_NODES} for {spec}")
        names = [spec.replace("{n}", str(i)) for i in range(1, count + 1)]
    else:
        names = spec.split(",")
        if count is not None and count != len(names):
            raise ValueError(
                f"--nodes {count} and --node-names ({len(names)} name"
                f"{'s' if len(names) != 1 else ''}) disagree"
            )
    if not 1 <= len(names) <= MAX_NODES:
        raise ValueError(f"--node-names gives {len(names)} names; 1 to {MAX_NODES} are allowed")
    seen: set[str] = set()
    for name in names:
        if _NODE_NAME.fullmatch(name) is None:
            raise ValueError(
                f"--node-names: {name!r} is not a node name (letters, digits, '.', '_', '-')"
            )
        if name == "coordinator":
            raise ValueError("--node-names: 'coordinator' is the coordinating node's name")
        if name in seen:
            raise ValueError(f"--node-names: {name!r} is given twice")
        seen.add(name)
    return names


def _cluster_section(path: str, nodes: str) -> ClusterSection:
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
    return section


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
