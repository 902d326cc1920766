"""Sending failures that need no server: bad TLS settings, and the password never leaking."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from notify import NotifySettings, deliver
from notify._smtp import one_line
from notify.outbox import pending_messages
from tweakops.errors import NotifyError


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "[tweakops] iris: threshold reached"
    msg["Message-ID"] = "<1.2@tweakops>"
    msg.set_content("report\n")
    return msg


def test_unreadable_cafile_fails_before_connecting_names_it_and_keeps_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("TWEAKOPS_SMTP_CAFILE", str(missing))
    settings = NotifySettings(to=("a@example.org",), smtp_host="127.0.0.1", security="starttls")
    sleeps: list[float] = []
    with pytest.raises(NotifyError, match=rf"cannot load {missing} named by TWEAKOPS_SMTP_CAFILE"):
        deliver(message(), settings, tmp_path / "outbox", sleep=sleeps.append)
    assert sleeps == []
    assert len(pending_messages(tmp_path / "outbox")) == 1


def test_a_password_echoed_by_a_server_is_blanked_out_of_error_lines() -> None:
    settings = NotifySettings(smtp_password="p@ss-Word9")
    assert (
        one_line("535 bad\n  password p@ss-Word9 for ci", settings) == "535 bad password *** for ci"
    )


def test_a_short_password_does_not_mangle_ordinary_words() -> None:
    settings = NotifySettings(smtp_password="p")
    assert one_line("AUTH not supported", settings) == "AUTH not supported"
