"""The pure parts of the front door: basic-auth parsing, binding checks, limits, certificates."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from coordinator.limits import (
    KB,
    MB,
    ConcurrencyGate,
    Limits,
    SettingsError,
    TooLongHttpHeaderError,
    TooLongHttpLineError,
    check_request_head,
    initial_line_length,
)
from coordinator.security import (
    CHALLENGE,
    BasicAuth,
    CredentialsError,
    User,
    credentials_from_header,
    is_loopback,
    self_signed,
)
from simnode.errors import RejectedExecutionError
from simnode.registry import check_live_tasks


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_challenge_is_the_security_plugins() -> None:
    assert CHALLENGE.status == 401
    assert CHALLENGE.body == "Unauthorized"
    assert CHALLENGE.content_type == "text/plain; charset=UTF-8"
    assert CHALLENGE.headers == {"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", None),
        (basic("admin:admin"), ("admin", "admin")),
        ("bAsIc " + base64.b64encode(b"admin:admin").decode(), ("admin", "admin")),
        (basic("admin:"), ("admin", "")),  # a blank password is a password
        (basic("admin:pa:ss"), ("admin", "pa:ss")),  # the user name ends at the first colon
        (basic(":admin"), None),  # no user name
        (basic("admin"), None),  # no colon
        ("Basic !!!notbase64", None),
        ("Basic " + base64.b64encode(b"admin:admin").decode().rstrip("="), ("admin", "admin")),
        ("Basic", None),
        ("Basic  " + base64.b64encode(b"admin:admin").decode(), None),  # split(" ")[1] is ""
    ],
)
def test_credentials_from_header(header: str | None, expected: tuple[str, str] | None) -> None:
    assert credentials_from_header(header) == expected


def test_basic_auth_accepts_only_the_right_password() -> None:
    auth = BasicAuth([User("admin", "admin"), User("reader", "s3cret:x")])
    assert auth.authenticate(basic("admin:admin")) == "admin"
    assert auth.authenticate(basic("reader:s3cret:x")) == "reader"
    assert auth.authenticate(basic("admin:Admin")) is None
    assert auth.authenticate(basic("nobody:admin")) is None
    assert auth.authenticate(None) is None
    assert auth.users == ["admin", "reader"]


def test_user_parse() -> None:
    assert User.parse("admin:admin") == User("admin", "admin")
    assert User.parse("a:") == User("a", "")
    for bad in ("admin", ":x", ""):
        with pytest.raises(CredentialsError):
            User.parse(bad)
    with pytest.raises(CredentialsError):
        BasicAuth([])


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_self_signed_certificate(tmp_path: Path) -> None:
    files = self_signed(tmp_path, hosts=["10.0.0.7", "myhost"], extra_dns=["tasksim-node"])
    assert files.cert.stat().st_mode & 0o777 == 0o600
    assert files.key.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "myhost", "tasksim-node"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.7"),
    }
    assert b"PRIVATE KEY" in files.key.read_bytes()


# -- limits -------------------------------------------------------------------------------------


def test_limits_defaults_are_opensearchs() -> None:
    limits = Limits()
    assert limits.max_initial_line_length == 4 * KB
    assert limits.max_header_size == 8 * KB
    assert limits.max_content_length == 100 * MB


def test_limits_from_settings() -> None:
    limits = Limits.from_settings(
        [
            "http.max_content_length=1kb",
            "http.max_initial_line_length=512b",
            "http.max_header_size = 2KB",
            "tasksim.http.max_concurrent_requests=7",
            "tasksim.http.body_timeout=1500ms",
            "tasksim.node.max_live_tasks=3",
        ]
    )
    assert limits.max_content_length == 1024
    assert limits.max_initial_line_length == 512
    assert limits.max_header_size == 2048
    assert limits.max_concurrent_requests == 7
    assert limits.body_timeout == 1.5
    assert limits.max_live_tasks == 3


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("http.max_content_length=lots", "failed to parse setting [http.max_content_length]"),
        ("http.max_content_length=10xb", "unit is missing or unrecognized"),
        ("tasksim.http.max_concurrent_requests=0", "must be >= 1"),
        ("tasksim.http.body_timeout=5", "as a time value"),
        ("http.nope=1", "unknown setting [http.nope]"),
        ("http.max_header_size", "must be given as KEY=VALUE"),
    ],
)
def test_bad_settings_are_clear(setting: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Limits.from_settings([setting])


def test_request_head_limits_count_as_netty_does() -> None:
    limits = Limits(max_initial_line_length=100, max_header_size=200)
    # "GET /xxx HTTP/1.1": 4 + len(path) + 9 bytes; the CR counts while the line is read.
    line = initial_line_length("GET", b"/" + b"a" * 85, b"", "1.1")
    assert line == 99
    check_request_head(limits, line, 0)
    with pytest.raises(TooLongHttpLineError, match=r"^An HTTP line is larger than 100 bytes\.$"):
        check_request_head(limits, line + 1, 0)
    assert initial_line_length("GET", b"/_tasks", b"a=b", "1.1") == len("GET /_tasks?a=b HTTP/1.1")
    check_request_head(limits, 10, 199)
    with pytest.raises(TooLongHttpHeaderError, match=r"^HTTP header is larger than 200 bytes\.$"):
        check_request_head(limits, 10, 200)


def test_concurrency_gate() -> None:
    gate = ConcurrencyGate(2)
    assert gate.enter() and gate.enter()
    assert not gate.enter()
    gate.leave()
    assert gate.enter()
    assert (gate.in_flight, gate.peak, gate.rejected) == (2, 2, 1)


def test_live_task_cap() -> None:
    check_live_tasks(9, 10, "a", "node-1")
    check_live_tasks(10**6, None, "a", "node-1")
    with pytest.raises(RejectedExecutionError) as e:
        check_live_tasks(10, 10, "indices:data/write/reindex", "node-1")
    assert e.value.status == 429
    assert e.value.type == "rejected_execution_exception"
    assert e.value.reason == (
        "rejected execution of [indices:data/write/reindex] on node [node-1]: 10 tasks are live, "
        "the limit is 10 (tasksim.node.max_live_tasks)"
    )
