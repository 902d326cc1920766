"""Real services on loopback for integration tests."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# --- SMTP (aiosmtpd) -------------------------------------------------------------------------

SMTP_USER = "ci-bot"
SMTP_PASSWORD = "s3cret-Pa55word-XYZ"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class RecordingHandler:
    """aiosmtpd handler keeping every message; can answer MAIL with 421 a number of times."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.refusals_left = 0
        self.refusal = "421 4.3.2 Service busy, try again later"
        self.mail_commands = 0
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        with self._lock:
            self.mail_commands += 1
            if self.refusals_left > 0:
                self.refusals_left -= 1
                return self.refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        with self._lock:
            self.messages.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(content))
            )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """A running SMTP server: where it listens and what it received."""

    host: str
    port: int
    handler: RecordingHandler
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None  # PEM to trust when the server speaks TLS

    @property
    def messages(self) -> list[ReceivedMail]:
        return self.handler.messages

    def refuse_next(
        self, count: int, reply: str = "421 4.3.2 Service busy, try again later"
    ) -> None:
        """Answer the next `count` MAIL commands with `reply` (by default a transient 421)."""
        self.handler.refusal = reply
        self.handler.refusals_left = count


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd replies 235 or 535


@pytest.fixture
def unused_port() -> int:
    """A loopback port with no server: connecting to it is refused."""
    return free_port()


@contextmanager
def running_smtp(**smtp_kwargs: Any) -> Iterator[SmtpServer]:
    """Start aiosmtpd on 127.0.0.1 with a free port; stop it afterwards."""
    from aiosmtpd import controller as controller_module  # the test extra: never skipped

    handler = RecordingHandler()
    port = free_port()
    controller = controller_module.Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="localhost", **smtp_kwargs
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server without authentication."""
    with running_smtp() as server:
        yield server


@pytest.fixture
def smtp_auth_server() -> Iterator[SmtpServer]:
    """An SMTP server that requires AUTH (LOGIN/PLAIN) over plain text."""
    with running_smtp(
        authenticator=_authenticator, auth_required=True, auth_require_tls=False
    ) as server:
        yield SmtpServer(server.host, server.port, server.handler, SMTP_USER, SMTP_PASSWORD)


def _self_signed_pem() -> tuple[bytes, bytes]:
    """(certificate, key) in PEM for 127.0.0.1 and localhost, usable as its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tweakops test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    usage = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(alt, critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert.pem, key.pem) made with `cryptography` (in the test extra: never skipped)."""
    cert_pem, key_pem = _self_signed_pem()
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return cert_path, key_path


def _server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@pytest.fixture
def smtp_starttls_server(self_signed_cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS, then AUTH, with a self-signed certificate."""
    with running_smtp(
        tls_context=_server_tls(self_signed_cert),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    ) as server:
        yield SmtpServer(
            server.host, server.port, server.handler, SMTP_USER, SMTP_PASSWORD, self_signed_cert[0]
        )


@pytest.fixture
def smtp_ssl_server(self_signed_cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """An SMTP server speaking TLS from the first byte (port-465 style), self-signed."""
    with running_smtp(ssl_context=_server_tls(self_signed_cert)) as server:
        yield SmtpServer(server.host, server.port, server.handler, cafile=self_signed_cert[0])
