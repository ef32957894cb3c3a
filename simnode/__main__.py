"""`python -m simnode`: one simulated node process.

It binds its gRPC port (0 = any free port), prints `READY <port>` on stdout once it serves, and
exits cleanly on SIGTERM/SIGINT, when its stdin reaches EOF (the parent closed the pipe or died),
and — Linux — when its parent process dies (PR_SET_PDEATHSIG=SIGKILL, which also reaches a
SIGSTOPped node). Linux ties that signal to the parent *thread* that forked: the supervisor forks
every node from one thread that lives as long as the coordinator (coordinator/supervisor.py).
No orphans, ever.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import logging
import os
import signal
import stat
import sys

import trio

from simnode.discovery import DEFAULT_ATTRIBUTES, DEFAULT_ROLES, DiscoveryNode
from simnode.node import Node
from simnode.server import DEFAULT_MAX_WORKERS, NodeServer
from simnode.transport import GrpcTransport, TransportTls


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    # The parent may already be gone between fork and prctl.
    if os.getppid() == 1:
        sys.exit(0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simnode", description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True, help="the node id (22-char base64)")
    p.add_argument("--name", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument(
        "--control-host",
        default=None,
        help="a second address, same port, for the coordinator's control channel alone",
    )
    p.add_argument("--roles", default=",".join(DEFAULT_ROLES), help="comma list; '' = none")
    p.add_argument(
        "--attr",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="node attribute (repeatable); default shard_indexing_pressure_enabled=true",
    )
    p.add_argument("--max-workers", type=int, default=DEFAULT_MAX_WORKERS)
    p.add_argument("--max-live-tasks", type=int, default=None, help="refuse new work past this")
    p.add_argument("--tls-cert", default=None, help="PEM certificate: mutual TLS on the transport")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--tls-ca", default=None, help="PEM certificates to trust (default: --tls-cert)")
    return p.parse_args(argv)


async def _exit_on_stdin_eof(cancel: trio.CancelScope) -> None:
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return
    stream = trio.lowlevel.FdStream(os.dup(0))
    async with stream:
        while await stream.receive_some(4096):
            pass
    cancel.cancel()


async def serve(args: argparse.Namespace) -> None:
    attrs = (
        tuple(tuple(a.split("=", 1)) for a in args.attr)
        if args.attr is not None
        else DEFAULT_ATTRIBUTES
    )
    tls = (
        TransportTls.from_files(args.tls_cert, args.tls_key, args.tls_ca)
        if args.tls_cert and args.tls_key
        else None
    )
    server = NodeServer(
        args.host,
        args.port,
        max_workers=args.max_workers,
        tls=tls,
        also=(args.control_host,) if args.control_host else (),
    )
    local = DiscoveryNode(
        id=args.id,
        name=args.name,
        host=args.host,
        ip=args.host,
        port=server.port,
        roles=tuple(r for r in args.roles.split(",") if r),
        attributes=attrs,  # type: ignore[arg-type]
    )
    transport = GrpcTransport(tls=tls)
    node = Node(local, transport, max_live_tasks=args.max_live_tasks)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            server.start(node, trio.lowlevel.current_trio_token())
            print(f"READY {server.port}", flush=True)
            with trio.CancelScope() as waiting:
                nursery.start_soon(_exit_on_stdin_eof, waiting)
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        break
            # Stop serving first, while the loop still runs, so that handlers can finish.
            await server.stop(0)
            nursery.cancel_scope.cancel()
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _die_with_parent()
    # The node's log is its stderr (the supervisor keeps it as `<log dir>/<name>.log`): warnings,
    # errors and the traceback of every contained bug.
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)s %(name)s [{args.name}] %(message)s",
        stream=sys.stderr,
    )
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: stacks to the log
    try:
        trio.run(serve, args)
    except OSError as e:
        print(f"simnode: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
