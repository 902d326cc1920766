"""Without a mail server the report lands in the outbox as a parseable .eml file."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid
from pathlib import Path

import pytest

from notify import NotifySettings, deliver, resend
from notify.outbox import outbox_name, pending_messages
from tweakops.errors import NotifyError

SUBJECT = "[tweakops] mnist: threshold reached — accuracy 0.981 ≥ 0.97 (run r-1)"


def message(subject: str = SUBJECT) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "tweakops@localhost"
    msg["To"] = "team@example.org"
    msg["Message-ID"] = make_msgid(domain="tweakops")
    msg.set_content("body ≥ 0.97\n")
    return msg


def test_deliver_without_host_writes_an_eml_that_parses_back(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    original = message()
    delivery = deliver(original, NotifySettings(to=("team@example.org",)), outbox)

    assert delivery.sent is False
    assert delivery.attempts == 0
    assert delivery.message_id == original["Message-ID"]
    assert delivery.outbox_path is not None
    path = Path(delivery.outbox_path)
    assert path.parent == outbox
    assert [p.name for p in outbox.iterdir()] == [path.name]
    parsed = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert parsed["Subject"] == original["Subject"]
    assert parsed["Message-ID"] == original["Message-ID"]


def test_deliver_with_host_but_no_recipients_keeps_the_message(tmp_path: Path) -> None:
    settings = NotifySettings(to=(), smtp_host="127.0.0.1", smtp_port=1)
    delivery = deliver(message(), settings, tmp_path)
    assert delivery.sent is False
    assert delivery.outbox_path is not None and Path(delivery.outbox_path).is_file()


def test_outbox_file_name_is_timestamp_then_safe_message_id() -> None:
    name = outbox_name("<1712.34/56@tweakops>", now=1_700_000_000.25)
    assert name == "20231114T221320.250000Z-1712.34_56_tweakops.eml"
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.eml", outbox_name("<../../etc/passwd@x y>"))


def test_outbox_keeps_messages_in_the_order_they_were_written(tmp_path: Path) -> None:
    first = deliver(message("first"), NotifySettings(), tmp_path)
    second = deliver(message("second"), NotifySettings(), tmp_path)
    assert [str(p) for p in pending_messages(tmp_path)] == [first.outbox_path, second.outbox_path]


def test_resend_without_a_server_says_what_to_set_and_keeps_the_files(tmp_path: Path) -> None:
    deliver(message(), NotifySettings(), tmp_path)
    with pytest.raises(
        NotifyError,
        match=r"1 message\(s\) wait in .* set notify\.smtp\.host \(or TWEAKOPS_SMTP_HOST\)",
    ):
        resend(tmp_path, NotifySettings(to=("team@example.org",)))
    assert len(pending_messages(tmp_path)) == 1


def test_resend_of_an_empty_or_missing_outbox_sends_nothing(tmp_path: Path) -> None:
    assert resend(tmp_path / "missing", NotifySettings(smtp_host="127.0.0.1")) == []
