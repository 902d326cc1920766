"""One SMTP conversation, and what its failures mean: retry or give up, with a one-line reason."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from notify.settings import NotifySettings

CAFILE_ENV = "TWEAKOPS_SMTP_CAFILE"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """A failed attempt: whether another attempt may help, and why it failed."""

    transient: bool
    reason: str
    unreachable: bool = False  # no SMTP conversation at all, as opposed to a 4xx reply


def tls_context(settings: NotifySettings) -> ssl.SSLContext | None:
    """A verifying TLS context; TWEAKOPS_SMTP_CAFILE adds a CA (e.g. a self-signed test server)."""
    if settings.security == "none":
        return None
    cafile = os.environ.get(CAFILE_ENV) or None
    return ssl.create_default_context(cafile=cafile)


def send_once(
    message: EmailMessage,
    settings: NotifySettings,
    recipients: Sequence[str],
    context: ssl.SSLContext | None,
) -> dict[str, tuple[int, bytes]]:
    """Connect, secure, log in if asked, send; return the recipients the server refused."""
    host = settings.smtp_host or "localhost"
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.smtp_user and _offers_login(client, settings):
            client.login(settings.smtp_user, settings.smtp_password or "")
        return client.send_message(message, from_addr=settings.sender, to_addrs=list(recipients))
    finally:
        _close(client)


def _offers_login(client: smtplib.SMTP, settings: NotifySettings) -> bool:
    """Whether the server offers AUTH. A relay that does not (it trusts its network) gets the
    message without the login: bound credentials (a Jenkins credential) never stop it, and the
    password is not sent to a server that did not ask for it."""
    client.ehlo_or_helo_if_needed()
    if client.has_extn("auth"):
        return True
    log.warning(
        "SMTP server %s offers no login (AUTH); sending without the login of %s",
        settings.address,
        settings.smtp_user,
    )
    return False


def _close(client: smtplib.SMTP) -> None:
    """Say QUIT politely; a server that already hung up is not an error once the mail is sent."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        with contextlib.suppress(OSError):
            client.close()


def classify(exc: BaseException, settings: NotifySettings) -> Problem:
    """Decide whether a failed attempt is worth repeating, and say why it failed."""
    where = settings.address
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Problem(
            False,
            f"SMTP server {where} refused the login for user {settings.smtp_user}: "
            f"{_reply(exc)}; check notify.smtp.user (TWEAKOPS_SMTP_USER) and "
            "TWEAKOPS_SMTP_PASSWORD",
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Problem(False, _unsupported(str(exc), where))
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in exc.recipients.items())
        return Problem(all(400 <= c < 500 for c in codes), f"SMTP server {where} refused {refused}")
    if isinstance(exc, smtplib.SMTPConnectError):
        return Problem(True, f"greeting {_reply(exc)}", unreachable=True)
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 530:
        return Problem(
            False,
            f"SMTP server {where} wants a login ({_reply(exc)}); set notify.smtp.user "
            "(TWEAKOPS_SMTP_USER) and TWEAKOPS_SMTP_PASSWORD, and notify.smtp.security to "
            "starttls or ssl if it offers the login only over TLS",
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Problem(_is_4xx(exc), f"SMTP server {where} refused the sender: {_reply(exc)}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return Problem(_is_4xx(exc), f"SMTP server {where} rejected the message: {_reply(exc)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Problem(True, str(exc) or "connection closed", unreachable=True)
    return _classify_os_error(exc, where)


def _unsupported(text: str, where: str) -> str:
    """What the server does not offer, and which setting to change."""
    if "STARTTLS" in text:
        return (
            f"SMTP server {where} does not offer STARTTLS; set notify.smtp.security "
            "(TWEAKOPS_SMTP_SECURITY) to ssl (port 465) or none, or use the server's "
            "submission port"
        )
    return f"SMTP server {where}: {text.rstrip('.')}"


def _classify_os_error(exc: BaseException, where: str) -> Problem:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Problem(
            False,
            f"the TLS certificate of SMTP server {where} could not be verified "
            f"({exc.verify_message}); for a self-signed server set {CAFILE_ENV} to its CA file",
        )
    if isinstance(exc, ssl.SSLError):
        return Problem(
            False,
            f"TLS with SMTP server {where} failed ({exc.reason or exc}); check "
            "notify.smtp.security (ssl usually on port 465, starttls on 587)",
        )
    if isinstance(exc, smtplib.SMTPException):
        return Problem(False, f"SMTP server {where}: {exc}")
    if isinstance(exc, TimeoutError):
        return Problem(True, "timed out", unreachable=True)
    if isinstance(exc, OSError):
        return Problem(True, exc.strerror or str(exc) or type(exc).__name__, unreachable=True)
    return Problem(False, f"{type(exc).__name__}: {exc}")


def _is_4xx(exc: smtplib.SMTPResponseException) -> bool:
    return 400 <= exc.smtp_code < 500


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def one_line(text: str, settings: NotifySettings) -> str:
    """Collapse whitespace and blank out the password, should a server ever echo it back."""
    line = " ".join(text.split())
    if settings.smtp_password:
        secret = re.escape(settings.smtp_password)
        line = re.sub(rf"(?<![A-Za-z0-9]){secret}(?![A-Za-z0-9])", "***", line)
    return line
