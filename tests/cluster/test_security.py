"""Security as the security plugin gives it: HTTPS, basic auth on every endpoint, the documented
curl command, opensearch-py over TLS, mutual TLS between the processes, loopback by default."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from opensearchpy import AuthenticationException, OpenSearch

from coordinator.security import TRANSPORT_SERVER_NAME, self_signed
from simnode._wire import control_pb2 as cpb
from simnode._wire import control_pb2_grpc as control_grpc
from simnode._wire import ml_pb2 as mlpb
from simnode._wire import ml_pb2_grpc as ml_pb_grpc
from simnode._wire import node_pb2 as pb
from simnode._wire import node_pb2_grpc as pb_grpc
from tests.harness import ROOT, Node, RunningCluster, running_cluster, start_cluster, stop_cluster

CHALLENGE = 'Basic realm="OpenSearch Security"'


@pytest.fixture(scope="module")
def secure() -> Iterator[RunningCluster]:
    with running_cluster("--security", "--demo", nodes=2, auth=("admin", "admin")) as c:
        yield c


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def assert_challenge(status: int, body: object, headers: dict[str, str]) -> None:
    assert status == 401
    assert body == "Unauthorized"
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["www-authenticate"] == CHALLENGE
    assert lower["content-type"] == "text/plain; charset=UTF-8"
    assert "x-opaque-id" not in lower


def test_documented_curl_works_verbatim(secure: RunningCluster) -> None:
    """docs: `curl -i -H "X-Opaque-Id: 111111" "https://localhost:9200/_tasks" -u 'admin:admin'
    --insecure` — the very command, on this cluster's port."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(
        [
            curl,
            "-i",
            "-H",
            "X-Opaque-Id: 111111",
            f"https://localhost:{secure.port}/_tasks",
            "-u",
            "admin:admin",
            "--insecure",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition("\n\n")  # (text mode turned CRLF into LF)
    assert head.startswith("HTTP/1.1 200")
    assert "x-opaque-id: 111111" in head.lower()
    tasks = [t for n in json.loads(body)["nodes"].values() for t in n["tasks"].values()]
    lists = [t for t in tasks if t["action"].startswith("cluster:monitor/tasks/lists")]
    assert len(lists) == 4  # the REST-entry task + one [n] per node (coordinator, node-1, node-2)
    assert all(t["headers"] == {"X-Opaque-Id": "111111"} for t in lists)
    # --demo trees span the nodes: their children crossed the mutual-TLS transport.
    assert any(t["action"] == "indices:data/read/search[phase/query]" for t in tasks)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("admin:wrong"),
        basic("nobody:admin"),
        basic("admin"),
        "Bearer abc.def.ghi",
        "Basic %%%",
        "Basic",
    ],
)
def test_missing_or_wrong_credentials_get_the_challenge(
    secure: RunningCluster, authorization: str | None
) -> None:
    headers = {"X-Opaque-Id": "x"}
    if authorization is not None:
        headers["Authorization"] = authorization
    secure.auth = None
    try:
        assert_challenge(*secure.request("GET", "/_tasks", headers=headers))
    finally:
        secure.auth = ("admin", "admin")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/_tasks/abc:1"),
        ("POST", "/_tasks/_cancel"),
        ("GET", "/_cluster/health"),
        ("GET", "/_sim/faults"),  # simulator endpoints (and ones that do not exist yet)
        ("POST", "/_sim/tasks"),
        ("POST", "/_tasks"),  # a 405 without security
        ("GET", "/no/such/path"),  # a 400 without security
    ],
)
def test_every_endpoint_needs_credentials(secure: RunningCluster, method: str, path: str) -> None:
    secure.auth = None
    try:
        assert_challenge(*secure.request(method, path))
    finally:
        secure.auth = ("admin", "admin")


def test_head_without_credentials_gets_the_challenge_without_a_body(
    secure: RunningCluster,
) -> None:
    secure.auth = None
    try:
        status, body, headers = secure.request("HEAD", "/")
    finally:
        secure.auth = ("admin", "admin")
    assert (status, body) == (401, "")
    assert {k.lower(): v for k, v in headers.items()}["www-authenticate"] == CHALLENGE


def test_authenticated_requests_behave_as_without_security(secure: RunningCluster) -> None:
    status, body, _ = secure.request("POST", "/_tasks")
    assert status == 405
    status, body, _ = secure.request("GET", "/no/such/path")
    assert (status, body) == (
        400,
        {"error": "no handler found for uri [/no/such/path] and method [GET]"},
    )


def test_opensearch_py_over_https_with_basic_auth(secure: RunningCluster) -> None:
    def client(auth: tuple[str, str] | None) -> OpenSearch:
        return OpenSearch(
            hosts=[{"host": "localhost", "port": secure.port}],
            http_auth=auth,
            use_ssl=True,
            verify_certs=False,
            ssl_show_warn=False,
            timeout=30,
        )

    good = client(("admin", "admin"))
    assert good.info()["version"]["distribution"] == "opensearch"
    assert "nodes" in good.tasks.list(actions="*lists*")
    with pytest.raises(AuthenticationException) as e:
        client(("admin", "nope")).tasks.list()
    assert e.value.status_code == 401


def test_plain_http_to_the_https_port_gets_no_answer(secure: RunningCluster) -> None:
    with socket.create_connection(("127.0.0.1", secure.port), timeout=30) as s:
        s.sendall(b"GET /_tasks HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert not data.startswith(b"HTTP/")  # closed (maybe after a TLS alert), as OpenSearch does


def _transport_files(secure: RunningCluster) -> tuple[bytes, bytes]:
    """The cluster's transport certificate and key, as its node processes were given them."""
    cmd = secure.node_processes()[0].cmdline()
    cert = Path(cmd[cmd.index("--tls-cert") + 1]).read_bytes()
    key = Path(cmd[cmd.index("--tls-key") + 1]).read_bytes()
    return cert, key


# One call of every service a node serves: Node, MlNode, Control (fault rules, ground truth).
def _calls(channel: grpc.Channel) -> dict[str, Callable[[], object]]:
    return {
        "Node": lambda: pb_grpc.NodeStub(channel).ListTasks(pb.TasksRequest(), timeout=30),
        "MlNode": lambda: ml_pb_grpc.MlNodeStub(channel).SyncUp(mlpb.SyncUpRequest(), timeout=30),
        "Control": lambda: control_grpc.ControlStub(channel).GetRules(
            cpb.GetRulesRequest(), timeout=30
        ),
    }


def _refused(channel: grpc.Channel, who: str, node: Node) -> None:
    for service, call in _calls(channel).items():
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, (node.name, who, service)


def test_security_turns_on_mutual_tls_on_the_transport(secure: RunningCluster) -> None:
    """`--security` alone (no --transport-tls): no process without the cluster's key may call any
    service of any node's transport port, the coordinating node's included."""
    assert len(secure.nodes) == 3  # the coordinating node and node-1, node-2
    for node in secure.nodes:
        with grpc.insecure_channel(node.address) as channel:
            _refused(channel, "plaintext", node)
    cert, key = _transport_files(secure)
    with tempfile.TemporaryDirectory(prefix="tasksim-foreign-") as tmp:
        foreign = self_signed(
            Path(tmp), common_name=TRANSPORT_SERVER_NAME, extra_dns=[TRANSPORT_SERVER_NAME]
        )
        foreign_cert, foreign_key, _ = foreign.read()
    override = [("grpc.ssl_target_name_override", TRANSPORT_SERVER_NAME)]
    strangers = {
        "TLS, no client certificate": grpc.ssl_channel_credentials(root_certificates=cert),
        "TLS, a certificate of its own": grpc.ssl_channel_credentials(
            root_certificates=cert, private_key=foreign_key, certificate_chain=foreign_cert
        ),
    }
    own = grpc.ssl_channel_credentials(
        root_certificates=cert, private_key=key, certificate_chain=cert
    )
    for node in secure.nodes:
        for who, credentials in strangers.items():
            with grpc.secure_channel(node.address, credentials, options=override) as channel:
                _refused(channel, who, node)
        # The same calls with the cluster's own certificate are served: the refusals above are
        # the transport's authentication, not calls that could never succeed.
        with grpc.secure_channel(node.address, own, options=override) as channel:
            for call in _calls(channel).values():
                call()
    assert "  transport: mutual TLS between the coordinator and every node" in secure.output


# -- binding --------------------------------------------------------------------------------------


def listening_addresses(proc: psutil.Process) -> set[str]:
    """Where the process and its children listen (IPv4-mapped IPv6 shown as IPv4)."""
    found = set()
    for p in [proc, *proc.children(recursive=True)]:
        for c in p.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN:
                ip = ipaddress.ip_address(c.laddr.ip)
                mapped = getattr(ip, "ipv4_mapped", None)
                found.add(str(mapped or ip))
    return found


def test_everything_listens_on_loopback_by_default(secure: RunningCluster) -> None:
    addresses = listening_addresses(psutil.Process(secure.process.pid))
    assert addresses == {"127.0.0.1"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )


def test_binding_beyond_loopback_needs_an_explicit_flag() -> None:
    result = run_cli("up", "--nodes", "1", "--port", "0", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "tasksim: --host 0.0.0.0 is not a loopback address; listening beyond this machine needs "
        "--expose (and, most likely, --security)\n"
    )


def test_expose_binds_where_asked_and_warns() -> None:
    cluster = start_cluster("--host", "0.0.0.0", "--expose", nodes=1, seed=201, timeout=60)
    try:
        warning = next(line for line in cluster.output if "WARNING" in line)
        assert warning == (
            "tasksim: WARNING: listening on 0.0.0.0 (REST and node transport), not only on "
            "loopback: anyone who can reach this machine can reach the cluster; it has no "
            "authentication and no TLS (add --security, or --tls and --auth)"
        )
        # (grpc takes 0.0.0.0 for "every address" and listens dual-stack)
        addresses = listening_addresses(psutil.Process(cluster.process.pid))
        assert "0.0.0.0" in addresses and addresses <= {"0.0.0.0", "::"}
    finally:
        stop_cluster(cluster.process)


def test_bad_security_flags_are_one_clear_line() -> None:
    result = run_cli("up", "--nodes", "1", "--port", "0", "--auth", "admin")
    assert result.returncode == 2
    assert result.stderr == (
        "tasksim: credentials must be given as USER:PASSWORD (e.g. admin:admin), "
        "with a non-empty user name\n"
    )
    result = run_cli("up", "--nodes", "1", "--port", "0", "-E", "http.max_content_length=big")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "tasksim: failed to parse setting [http.max_content_length] with value [big]"
    )
