"""Deliver the report: by SMTP with retries, or into the outbox when there is no server.

TLS (security "starttls" or "ssl") verifies the server's certificate against the system CAs.
For a test server with a self-signed certificate, set TWEAKOPS_SMTP_CAFILE to a PEM file
holding its certificate or CA; it is loaded in addition to the system CAs.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from notify import _smtp
from notify.message import RUN_HEADER
from notify.outbox import mark_sent, pending_messages, read_message, write_message
from notify.settings import NotifySettings
from tweakops.errors import NotifyError

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5  # seconds; doubles after each failed attempt


def resend_hint(run: str | None = None) -> str:
    """What to do about a kept message: the command names the run when it is known."""
    command = f"tweakops notify --run {run} --resend" if run else "tweakops notify --resend"
    return f"fix the settings and run `{command}`"


@dataclass(frozen=True)
class Delivery:
    """What happened to one message: sent, or kept in the outbox."""

    sent: bool
    message_id: str
    recipients: tuple[str, ...]
    outbox_path: str | None
    attempts: int


class _SendFailed(Exception):
    """Every allowed attempt failed; `reason` is one line without the password."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deliver(
    message: EmailMessage,
    settings: NotifySettings,
    outbox: Path,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send `message`, or keep it in `outbox` when no server/recipient is set or sending fails."""
    message_id = str(message.get("Message-ID", ""))
    run = message.get(RUN_HEADER)
    if not settings.smtp_host or not settings.to:
        path = write_message(message, outbox)
        why = "no SMTP server is set" if not settings.smtp_host else "notify.to is empty"
        log.info("run %s: %s; report kept at %s", run or "-", why, path)
        return Delivery(False, message_id, settings.to, str(path), 0)
    try:
        attempts, accepted = _send_with_retries(message, settings, settings.to, sleep)
    except _SendFailed as failure:
        path = write_message(message, outbox)
        raise NotifyError(
            f"{failure.reason}; the message is kept at {path}; {resend_hint(run)}"
        ) from failure.__cause__
    log.info("run %s: report %s sent via %s", run or "-", message_id, settings.address)
    return Delivery(True, message_id, accepted, None, attempts)


def resend(
    outbox: Path, settings: NotifySettings, sleep: Callable[[float], None] = time.sleep
) -> list[Delivery]:
    """Send every pending .eml in `outbox`, oldest first, moving each sent one to outbox/sent/."""
    pending = pending_messages(outbox)
    if pending and not settings.smtp_host:
        raise NotifyError(
            f"{len(pending)} message(s) wait in {outbox} but no SMTP server is set; "
            "set notify.smtp.host (or TWEAKOPS_SMTP_HOST) and run `tweakops notify --resend`"
        )
    deliveries: list[Delivery] = []
    for path in pending:
        try:
            deliveries.append(_resend_one(path, settings, sleep))
        except NotifyError as exc:
            run = read_message(path).get(RUN_HEADER)
            raise NotifyError(
                f"sent {len(deliveries)} of {len(pending)} pending messages; "
                f"{path.name}: {exc}; it and the rest stay in {outbox}; {resend_hint(run)} again"
            ) from exc
    return deliveries


def _resend_one(path: Path, settings: NotifySettings, sleep: Callable[[float], None]) -> Delivery:
    """Send one outbox file with today's settings; move it to sent/ once accepted."""
    message = read_message(path)
    recipients = settings.to or _addresses(message)
    if not recipients:
        raise NotifyError("it has no recipient and notify.to is empty; set notify.to")
    if settings.to:
        del message["To"]
        message["To"] = ", ".join(settings.to)
    del message["From"]
    message["From"] = settings.sender
    try:
        attempts, accepted = _send_with_retries(message, settings, recipients, sleep)
    except _SendFailed as failure:
        raise NotifyError(failure.reason) from failure.__cause__
    sent_path = mark_sent(path)
    log.info("run %s: resent %s via %s", message.get(RUN_HEADER, "-"), path.name, settings.address)
    return Delivery(True, str(message.get("Message-ID", "")), accepted, str(sent_path), attempts)


def _addresses(message: EmailMessage) -> tuple[str, ...]:
    """The addresses in the message's To header."""
    return tuple(addr for _, addr in getaddresses(message.get_all("To", [])) if addr)


def _send_with_retries(
    message: EmailMessage,
    settings: NotifySettings,
    recipients: Sequence[str],
    sleep: Callable[[float], None],
) -> tuple[int, tuple[str, ...]]:
    """Try up to `settings.retries` times (at least once), backing off 0.5 s, 1 s, 2 s…"""
    context = _context_or_fail(settings)
    run = message.get(RUN_HEADER, "-")
    if settings.smtp_user and settings.security == "none":
        log.warning(
            "run %s: sending the SMTP login of %s to %s without TLS",
            run,
            settings.smtp_user,
            settings.address,
        )
    limit = max(1, settings.retries)
    for attempt in range(1, limit + 1):
        try:
            refused = _smtp.send_once(message, settings, recipients, context)
        except (smtplib.SMTPException, OSError) as exc:
            problem = _smtp.classify(exc, settings)
            if not problem.transient or attempt == limit:
                raise _SendFailed(_final_reason(problem, attempt, settings)) from exc
            delay = FIRST_BACKOFF * 2 ** (attempt - 1)
            reason = _smtp.one_line(problem.reason, settings)
            log.warning(
                "run %s: SMTP attempt %d/%d to %s failed: %s; retrying in %g s",
                run,
                attempt,
                limit,
                settings.address,
                reason,
                delay,
            )
            sleep(delay)
            continue
        if refused:
            log.warning(
                "run %s: SMTP server %s refused some recipients: %s",
                run,
                settings.address,
                sorted(refused),
            )
        return attempt, tuple(r for r in recipients if r not in refused)
    raise AssertionError("unreachable: the loop returns or raises")


def _final_reason(problem: _smtp.Problem, attempts: int, settings: NotifySettings) -> str:
    """One line saying what failed; transient problems also say how often it was tried."""
    if not problem.transient:
        reason = problem.reason
    elif problem.unreachable:
        reason = (
            f"could not reach SMTP server {settings.address} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''}: {problem.reason}"
        )
    else:
        reason = f"{problem.reason} (gave up after {attempts} attempts)"
    return _smtp.one_line(reason, settings)


def _context_or_fail(settings: NotifySettings) -> ssl.SSLContext | None:
    """The TLS context, or a one-line failure when TWEAKOPS_SMTP_CAFILE cannot be loaded."""
    try:
        return _smtp.tls_context(settings)
    except OSError as exc:  # ssl.SSLError is an OSError too
        cafile = os.environ.get(_smtp.CAFILE_ENV, "")
        reason = (
            f"cannot load {cafile} named by {_smtp.CAFILE_ENV}: {exc.strerror or exc}; "
            "point it at a readable PEM file or unset it"
        )
        raise _SendFailed(_smtp.one_line(reason, settings)) from exc
