"""The coordinator process: the cluster (coordinating node + node processes) and the REST front
on one trio loop, until SIGINT/SIGTERM. Everything it started is stopped on the way out.

At start the process raises its soft open-files limit to the hard limit (node processes inherit
it), as OpenSearch's launcher expects a high one: every REST connection and every gRPC channel is a
descriptor, and a default soft limit of 1024 is reached by about a thousand clients."""

from __future__ import annotations

import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from coordinator import (
    rest_cat,
    rest_cluster,
    rest_docs,
    rest_faults,
    rest_ml,
    rest_ops,
    rest_settings,
    rest_sim,
    rest_tasks,
)
from coordinator.cluster import Cluster, ClusterConfig
from coordinator.demo import start_demo
from coordinator.history.recording import Recording
from coordinator.http import Router, build_app, serve_http
from coordinator.limits import Limits
from coordinator.security import BasicAuth, TlsFiles

# OpenSearch's bootstrap check (`FileDescriptorCheck`) asks for at least this many.
OPENSEARCH_MIN_OPEN_FILES = 65535


@dataclass(frozen=True)
class OpenFiles:
    """The process's open-files limit (RLIMIT_NOFILE) after `raise_open_files_limit`."""

    soft: int
    hard: int
    before: int  # the soft limit the process started with

    def describe(self) -> str:
        def n(v: int) -> str:
            return "unlimited" if v == resource.RLIM_INFINITY else str(v)

        text = f"open files: limit {n(self.soft)}"
        if self.soft != self.before:
            text += f" (soft limit raised from {n(self.before)} to the hard limit)"
        if self.soft != resource.RLIM_INFINITY and self.soft < OPENSEARCH_MIN_OPEN_FILES:
            text += (
                f"; OpenSearch asks for at least {OPENSEARCH_MIN_OPEN_FILES}"
                " (raise the hard limit: ulimit -Hn)"
            )
        return text


def raise_open_files_limit() -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard limit; a refusal leaves it as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return OpenFiles(soft, hard, before)


@dataclass(frozen=True)
class Ready:
    http_port: int
    cluster: Cluster
    seconds: float
    open_files: OpenFiles | None = None


def build_router(cluster: Cluster) -> Router:
    router = Router()
    for module in (
        rest_cluster,
        rest_tasks,
        rest_sim,
        rest_faults,
        rest_ops,
        rest_cat,
        rest_ml,
        rest_settings,
    ):
        module.register(router, cluster)
    rest_docs.register(router, cluster)  # documents, _bulk, _search, _count, _refresh
    return router


def check_port_free(host: str, port: int) -> None:
    """Fail before any node starts when the HTTP port is taken (one clear line, no traceback)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot bind the HTTP port {host}:{port}: {e.strerror}") from None


async def run(
    config: ClusterConfig,
    *,
    http_host: str = "127.0.0.1",
    http_port: int = 9200,
    demo: bool = False,
    on_ready: Callable[[Ready], None] | None = None,
    auth: BasicAuth | None = None,
    limits: Limits | None = None,
    http_tls: TlsFiles | None = None,
    record: Path | None = None,
    on_tls_client: Callable[[int], None] | None = None,
) -> None:
    """`record`: write the run's history there (JSON Lines, simnode/history.py), ordered by
    time once everything stopped. `on_tls_client(port)`: a TLS client reached the plain-HTTP
    port (called for every such connection; the connection is closed)."""
    check_port_free(http_host, http_port)
    open_files = raise_open_files_limit()  # before any node process starts: they inherit it
    limits = limits or Limits()
    started = trio.current_time()
    cluster = Cluster(config)
    recording = Recording(cluster, record) if record is not None else None
    try:
        await _run(
            cluster,
            recording,
            http_host,
            http_port,
            demo,
            on_ready,
            auth,
            limits,
            http_tls,
            started,
            open_files,
            on_tls_client,
        )
    finally:
        if recording is not None:
            recording.close()


async def _run(
    cluster: Cluster,
    recording: Recording | None,
    http_host: str,
    http_port: int,
    demo: bool,
    on_ready: Callable[[Ready], None] | None,
    auth: BasicAuth | None,
    limits: Limits,
    http_tls: TlsFiles | None,
    started: float,
    open_files: OpenFiles,
    on_tls_client: Callable[[int], None] | None = None,
) -> None:
    shutdown = trio.Event()
    # The signal receiver is in place before anything starts: a SIGTERM that arrives as soon as the
    # ready line is printed (or during start-up) stops everything cleanly, never the default way.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    break
                shutdown.set()
                if recording is not None:  # what the nodes recorded last, before they stop
                    await recording.sync()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            if recording is not None:
                await nursery.start(recording.run)
            await nursery.start(cluster.run)
            port = await nursery.start(
                lambda task_status: serve_http(
                    build_app(
                        build_router(cluster),
                        auth=auth,
                        limits=limits,
                        recorder=cluster.recorder,
                    ),
                    http_host,
                    http_port,
                    shutdown=shutdown,
                    limits=limits,
                    tls=http_tls,
                    on_tls_client=on_tls_client,
                    task_status=task_status,
                )
            )
            if demo:
                await start_demo(cluster)
            if on_ready is not None:
                on_ready(Ready(port, cluster, trio.current_time() - started, open_files))
            await trio.sleep_forever()
