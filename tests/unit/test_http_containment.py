"""A failing connection handler must not end hypercorn's server (coordinator/http.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer

from coordinator.http import contain_connection_failures


class _Socket:
    family = 2

    def getpeername(self) -> Any:
        raise RuntimeError("a bug deep inside one connection")


class _Stream:
    socket = _Socket()
    closed = False

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


def test_a_connection_failure_stays_in_its_connection() -> None:
    contain_connection_failures()
    contain_connection_failures()  # idempotent
    stream = _Stream()
    server: Any = TCPServer.__new__(TCPServer)
    server.config = Config()
    server.stream = stream
    server.app = server.context = server.state = SimpleNamespace()

    async def main() -> None:
        await server.run()  # would raise RuntimeError without the containment

    trio.run(main)
    assert stream.closed
