"""The docs' `curl https://localhost:9200 ... --insecure` against a plain-HTTP cluster: the client
gets no answer (as from OpenSearch: its handshake fails), and `tasksim up` says once, on stderr,
what to start instead. Plain requests on the same port are served as before."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.harness import RunningCluster, running_cluster


@pytest.fixture(scope="module")
def plain() -> Iterator[RunningCluster]:
    with running_cluster(nodes=1, seed=152) as c:
        yield c


def hint(port: int) -> str:
    return (
        f"tasksim: a TLS (https) client reached the plain-HTTP port {port}; start with "
        f"--security for https://localhost:{port} with admin:admin"
    )


def tls_handshake(port: int) -> BaseException | None:
    """A real TLS client (python's ssl) against the port; the failure it gets, if any."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /_tasks HTTP/1.1\r\nHost: localhost\r\n\r\n")
            tls.recv(1)
    except (ssl.SSLError, OSError) as e:
        return e
    return None


def wait_for_line(cluster: RunningCluster, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while line not in cluster.output:
        if time.monotonic() > deadline:
            raise AssertionError(f"no line {line!r} in:\n" + "\n".join(cluster.output))
        time.sleep(0.05)


def test_a_tls_client_on_the_plain_port_gets_one_hint_line(plain: RunningCluster) -> None:
    for _ in range(3):
        failure = tls_handshake(plain.port)
        assert failure is not None  # nothing useful comes back, as from OpenSearch
    curl = shutil.which("curl")
    if curl is not None:  # the docs' own command
        out = subprocess.run(
            [curl, "-sS", "-XGET", f"https://localhost:{plain.port}/_tasks", "-u", "admin:admin",
             "--insecure"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode != 0 and out.stdout == ""
    wait_for_line(plain, hint(plain.port))
    # Plain HTTP on the same port is served as ever, and still after it the hint stays one line.
    status, body = plain.get("/_tasks")
    assert status == 200 and "nodes" in body
    assert tls_handshake(plain.port) is not None
    status, _ = plain.get("/")
    assert status == 200
    assert plain.output.count(hint(plain.port)) == 1
    assert [line for line in plain.output if "TLS (https) client" in line] == [hint(plain.port)]
