"""`python -m bench.http_floor`: tasksim's HTTP stack answering a constant — the HTTP floor.

The very stack the coordinator serves the REST API with (`coordinator.http.build_app` on hypercorn,
with `serve_http`'s configuration) and a `Router` whose one handler answers `GET /_tasks` with a
constant body: what a `GET _tasks` would cost if the fan-out, the nodes and the rendering were free.
Prints `READY <port>` and serves until SIGTERM/SIGINT or stdin EOF.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat

import trio

from coordinator.http import RestRequest, RestResponse, Router, build_app, serve_http

CONSTANT: dict[str, object] = {"nodes": {}}


def build_router() -> Router:
    async def constant(_request: RestRequest) -> RestResponse:
        return RestResponse(CONSTANT)

    router = Router()
    router.add("GET", "/_tasks", constant)
    return router


async def _until_stdin_eof(done: trio.Event) -> None:
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return
    async with trio.lowlevel.FdStream(os.dup(0)) as stream:
        while await stream.receive_some(4096):
            pass
    done.set()


async def serve(host: str, port: int) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            lambda task_status: serve_http(
                build_app(build_router()), host, port, shutdown=shutdown, task_status=task_status
            )
        )
        print(f"READY {bound}", flush=True)
        nursery.start_soon(_until_stdin_eof, shutdown)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as waiting:

                async def on_signal() -> None:
                    async for _ in signals:
                        shutdown.set()
                        return

                waiting.start_soon(on_signal)
                await shutdown.wait()
                waiting.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.http_floor", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    trio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
