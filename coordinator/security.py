"""The front door's security, as OpenSearch's security plugin gives it: basic auth, TLS, binding.

Everything that decides who may come in lives here, as plain functions of plain values:

- **Basic auth** (`BasicAuth.authenticate`): the `Authorization` header read as the plugin's
  `HTTPHelper.extractCredentials` reads it (`Basic ` prefix in any case, base64 of
  `user:password`, the username ends at the first colon, an empty password is allowed). Missing,
  malformed or wrong credentials all get the plugin's one challenge (`HTTPBasicAuthenticator
  .reRequestAuthentication` with `challenge: true`): `401`, `WWW-Authenticate: Basic
  realm="OpenSearch Security"`, the text body `Unauthorized`. Passwords are compared in constant
  time. It applies to every request, unknown paths included (the plugin authenticates in the
  HTTP pipeline, before the REST controller routes).
- **TLS material** (`self_signed`): a key and a self-signed certificate for the HTTP port (and,
  optionally, the node transport), made with `cryptography` at start, valid for localhost, the
  loopback addresses and the bound host.
- **Binding** (`is_loopback`): tasksim listens on loopback unless told otherwise, explicitly.

It never does network I/O and never logs secrets; the HTTP layer (coordinator/http.py) calls it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hmac
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REALM = "OpenSearch Security"
CHALLENGE_HEADERS = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
UNAUTHORIZED_BODY = "Unauthorized"
TEXT_CONTENT_TYPE = "text/plain; charset=UTF-8"


class CredentialsError(ValueError):
    """A `user:password` given on the command line is malformed (a clear, one-line message)."""


@dataclass(frozen=True)
class User:
    name: str
    password: str

    @classmethod
    def parse(cls, text: str) -> User:
        """`user:password` — the username ends at the first colon and must not be empty."""
        name, sep, password = text.partition(":")
        if not sep or not name:
            raise CredentialsError(
                "credentials must be given as USER:PASSWORD (e.g. admin:admin), "
                "with a non-empty user name"
            )
        return cls(name, password)


def credentials_from_header(authorization: str | None) -> tuple[str, str] | None:
    """`HTTPHelper.extractCredentials`: (user, password) or None when absent or malformed."""
    if authorization is None:
        return None
    if not authorization.strip().lower().startswith("basic "):
        return None
    parts = authorization.split(" ")
    encoded = parts[1] if len(parts) > 1 else ""
    # Java's basic decoder accepts a missing padding; it rejects anything outside the alphabet.
    if "=" not in encoded:
        encoded += "=" * (-len(encoded) % 4)
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
    colon = decoded.find(":")
    if colon <= 0:
        return None
    return decoded[:colon], decoded[colon + 1 :]


class BasicAuth:
    """The internal users database of a security-enabled cluster (`internal_users.yml`)."""

    def __init__(self, users: Iterable[User]) -> None:
        self._passwords: dict[str, bytes] = {}
        for user in users:
            self._passwords[user.name] = user.password.encode("utf-8")
        if not self._passwords:
            raise CredentialsError("basic auth needs at least one USER:PASSWORD")

    @property
    def users(self) -> list[str]:
        return list(self._passwords)

    def authenticate(self, authorization: str | None) -> str | None:
        """The authenticated user's name, or None: the caller answers `challenge()`."""
        creds = credentials_from_header(authorization)
        if creds is None:
            return None
        name, password = creds
        expected = self._passwords.get(name)
        # Compare against something of the same kind even for an unknown user (no timing oracle).
        ok = hmac.compare_digest(password.encode("utf-8"), expected or b"\x00" * 32)
        return name if ok and expected is not None else None


@dataclass(frozen=True)
class Challenge:
    """The plugin's 401: status, headers, content type and body, exactly."""

    status: int = 401
    body: str = UNAUTHORIZED_BODY
    content_type: str = TEXT_CONTENT_TYPE

    @property
    def headers(self) -> dict[str, str]:
        return dict(CHALLENGE_HEADERS)


CHALLENGE = Challenge()


# -- binding -----------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, *, secured: bool) -> str:
    """The warning printed when tasksim listens beyond loopback."""
    text = (
        f"tasksim: WARNING: listening on {host} (REST and node transport), not only on loopback: "
        "anyone who can reach this machine can reach the cluster"
    )
    if not secured:
        text += "; it has no authentication and no TLS (add --security, or --tls and --auth)"
    return text


# -- TLS material ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key; `ca` is what peers trust (self-signed: the
    certificate itself)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(cert, key, ca) bytes, as grpc's credentials take them."""
        cert = self.cert.read_bytes()
        return cert, self.key.read_bytes(), (self.ca or self.cert).read_bytes()


# The name node certificates are checked against, whatever address a node publishes.
TRANSPORT_SERVER_NAME = "tasksim-node"


def self_signed(
    directory: Path,
    *,
    hosts: Iterable[str] = (),
    common_name: str = "tasksim",
    extra_dns: Iterable[str] = (),
    stem: str = "tasksim",
    days: int = 365,
) -> TlsFiles:
    """Make an EC P-256 key and a self-signed certificate valid for localhost, 127.0.0.1, ::1,
    `hosts` and `extra_dns`; write them (mode 0600) under `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    dns = ["localhost", *extra_dns]
    ips = ["127.0.0.1", "::1"]
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            dns.append(host)
        else:
            ips.append(host)
    for d in dict.fromkeys(dns):
        names.append(x509.DNSName(d))
    for ip in dict.fromkeys(ips):
        if ipaddress.ip_address(ip).is_unspecified:
            continue
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, cert_path)


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint, `AA:BB:...`, as `openssl x509 -fingerprint -sha256` prints it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
