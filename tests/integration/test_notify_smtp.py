"""Sending the report to a real SMTP server on 127.0.0.1 (aiosmtpd): no mock of smtplib."""

from __future__ import annotations

import email
import logging
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from notify import NotifySettings, RunOutcome, build_message, deliver, resend
from notify.outbox import pending_messages
from tweakops.errors import NotifyError
from tweakops.records import RunRecord, TrialRecord

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SmtpServer = Any  # the object the smtp_* fixtures of conftest.py yield
RESEND_HINT = "fix the settings and run `tweakops notify --run r-7 --resend`"  # report()'s run


class Sleeps(list[float]):
    """An injected sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def report(settings: NotifySettings, run_id: str = "r-7", reached: bool = True) -> EmailMessage:
    best = TrialRecord("r-7", 1, {"lr": 0.01}, "succeeded", 0.981 if reached else 0.9, 1.0, 9.0)
    outcome = RunOutcome(
        run=RunRecord(id=run_id, source="/srv/git/iris.git", created=0.0, status="reached"),
        trials=(TrialRecord("r-7", 0, {"lr": 0.1}, "succeeded", 0.9, 0.0, 1.0), best),
        repo="/srv/git/iris.git",
        commit="abcdef1234567890",
        branch="main",
        metric="accuracy",
        threshold=0.97,
        reached=reached,
        verdict="threshold reached" if reached else "max_trials used up",
        best=best,
    )
    return build_message(outcome, settings)


def settings_for(server: SmtpServer, **changes: object) -> NotifySettings:
    fields: dict[str, object] = {
        "to": ("ml-team@example.org", "lead@example.org"),
        "sender": "ci@example.org",
        "smtp_host": server.host,
        "smtp_port": server.port,
        "timeout": 5.0,
    }
    fields.update(changes)
    return NotifySettings(**fields)  # type: ignore[arg-type]


def parsed(mail: Any) -> EmailMessage:
    message = email.message_from_bytes(mail.content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def test_report_reaches_the_server_with_the_right_envelope_and_subject(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = settings_for(smtp_server)
    message = report(settings)
    delivery = deliver(message, settings, tmp_path / "outbox")

    assert (delivery.sent, delivery.attempts, delivery.outbox_path) == (True, 1, None)
    assert delivery.recipients == ("ml-team@example.org", "lead@example.org")
    assert not (tmp_path / "outbox").exists()
    [mail] = smtp_server.messages
    assert mail.mail_from == "ci@example.org"
    assert mail.rcpt_tos == ("ml-team@example.org", "lead@example.org")
    received = parsed(mail)
    assert received["Subject"] == message["Subject"]
    assert received["Subject"].startswith("[tweakops] iris: threshold reached — accuracy 0.981")
    assert received["Message-ID"] == delivery.message_id
    assert received.get_body(("plain",)) is not None and received.get_body(("html",)) is not None


def test_login_with_the_right_password_sends_the_report(
    smtp_auth_server: SmtpServer, tmp_path: Path
) -> None:
    settings = settings_for(
        smtp_auth_server, smtp_user="ci-bot", smtp_password=smtp_auth_server.password
    )
    delivery = deliver(report(settings), settings, tmp_path)
    assert delivery.sent
    assert len(smtp_auth_server.messages) == 1


def test_wrong_password_fails_at_once_keeps_the_eml_and_never_shows_the_password(
    smtp_auth_server: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Wr0ng-Secret-Pa55"
    settings = settings_for(smtp_auth_server, smtp_user="ci-bot", smtp_password=secret)
    sleeps = Sleeps()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotifyError) as caught:
        deliver(report(settings), settings, tmp_path, sleep=sleeps)

    text = str(caught.value)
    where = f"127.0.0.1:{smtp_auth_server.port}"
    assert text.startswith(f"SMTP server {where} refused the login for user ci-bot: 535")
    assert text.endswith(RESEND_HINT)
    assert "\n" not in text
    assert sleeps == []  # a refused login is permanent: not retried
    [kept] = pending_messages(tmp_path)
    assert f"the message is kept at {kept};" in text
    for place in (text, repr(caught.value), str(caught.value.__cause__), caplog.text):
        assert secret not in place
    assert secret not in repr(settings)
    assert secret.encode() not in kept.read_bytes()
    assert smtp_auth_server.messages == []


def test_a_relay_without_auth_gets_the_mail_even_with_bound_credentials(
    smtp_server: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Jenkins credential bound for every build must not break a repo's relay that trusts
    its network: the login is left out (and the password never sent), the mail goes."""
    settings = settings_for(smtp_server, smtp_user="ci-bot", smtp_password="Bound-Pa55")
    caplog.set_level(logging.WARNING)
    delivery = deliver(report(settings), settings, tmp_path / "outbox")

    assert delivery.sent and len(smtp_server.messages) == 1
    assert f"SMTP server 127.0.0.1:{smtp_server.port} offers no login (AUTH)" in caplog.text
    assert "Bound-Pa55" not in caplog.text


def test_a_server_that_wants_a_login_says_which_settings_give_it(
    smtp_auth_server: SmtpServer, tmp_path: Path
) -> None:
    settings = settings_for(smtp_auth_server)  # no user: AUTH offered but not used
    with pytest.raises(NotifyError) as caught:
        deliver(report(settings), settings, tmp_path, sleep=Sleeps())

    text = str(caught.value)
    assert text.startswith(f"SMTP server 127.0.0.1:{smtp_auth_server.port} wants a login (530")
    assert "set notify.smtp.user (TWEAKOPS_SMTP_USER) and TWEAKOPS_SMTP_PASSWORD" in text
    assert smtp_auth_server.messages == []


def test_two_421_refusals_then_acceptance_is_sent_on_the_third_attempt(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.refuse_next(2)
    sleeps = Sleeps()
    settings = settings_for(smtp_server)
    delivery = deliver(report(settings), settings, tmp_path, sleep=sleeps)

    assert delivery.sent and delivery.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert smtp_server.handler.mail_commands == 3
    assert len(smtp_server.messages) == 1
    assert pending_messages(tmp_path) == []


def test_a_server_that_keeps_deferring_is_given_up_after_the_allowed_attempts(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.refuse_next(10)
    sleeps = Sleeps()
    settings = settings_for(smtp_server, retries=4)
    with pytest.raises(NotifyError, match=r"refused the sender: 421 .*gave up after 4 attempts"):
        deliver(report(settings), settings, tmp_path, sleep=sleeps)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(pending_messages(tmp_path)) == 1


def test_a_permanent_550_is_not_retried(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.refuse_next(1, reply="550 5.7.1 sender not allowed")
    sleeps = Sleeps()
    settings = settings_for(smtp_server)
    with pytest.raises(NotifyError, match=r"refused the sender: 550 5\.7\.1 sender not allowed;"):
        deliver(report(settings), settings, tmp_path, sleep=sleeps)
    assert sleeps == []
    assert smtp_server.handler.mail_commands == 1
    assert len(pending_messages(tmp_path)) == 1


def test_closed_port_gives_one_line_error_and_keeps_the_message(
    unused_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = unused_port
    settings = NotifySettings(
        to=("a@example.org",),
        smtp_host="127.0.0.1",
        smtp_port=port,
        timeout=2.0,
        smtp_user="ci-bot",
        smtp_password="Cl0sed-Port-Secret",
    )
    sleeps = Sleeps()
    with pytest.raises(NotifyError) as caught:
        deliver(report(settings), settings, tmp_path, sleep=sleeps)

    text = str(caught.value)
    [kept] = pending_messages(tmp_path)
    assert text == (
        f"could not reach SMTP server 127.0.0.1:{port} after 3 attempts: Connection refused; "
        f"the message is kept at {kept}; {RESEND_HINT}"
    )
    assert sleeps == [0.5, 1.0]
    assert "Cl0sed-Port-Secret" not in text + caplog.text


def test_resend_sends_pending_files_oldest_first_and_moves_them_to_sent(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    offline = NotifySettings(to=("ml-team@example.org",))
    first = deliver(report(offline, run_id="r-1"), offline, tmp_path)
    second = deliver(report(offline, run_id="r-2"), offline, tmp_path)

    deliveries = resend(tmp_path, settings_for(smtp_server, to=("oncall@example.org",)))

    assert [d.message_id for d in deliveries] == [first.message_id, second.message_id]
    assert all(d.sent and d.attempts == 1 for d in deliveries)
    assert pending_messages(tmp_path) == []
    sent = sorted(p.name for p in (tmp_path / "sent").iterdir())
    assert sent == sorted(Path(str(d.outbox_path)).name for d in (first, second))
    assert [Path(str(d.outbox_path)).parent for d in deliveries] == [tmp_path / "sent"] * 2
    assert [parsed(m)["Subject"][-9:] for m in smtp_server.messages] == ["(run r-1)", "(run r-2)"]
    assert [m.rcpt_tos for m in smtp_server.messages] == [("oncall@example.org",)] * 2
    assert parsed(smtp_server.messages[0])["To"] == "oncall@example.org"
    assert resend(tmp_path, settings_for(smtp_server)) == []


def test_a_message_kept_after_a_failure_goes_out_with_the_fixed_settings(
    smtp_server: SmtpServer, unused_port: int, tmp_path: Path
) -> None:
    wrong = settings_for(smtp_server, smtp_port=unused_port, retries=1)
    with pytest.raises(NotifyError, match="could not reach"):
        deliver(report(wrong), wrong, tmp_path)

    [delivery] = resend(tmp_path, settings_for(smtp_server))
    assert delivery.sent
    assert len(smtp_server.messages) == 1
    assert pending_messages(tmp_path) == []


def test_resend_stops_at_the_first_failure_and_leaves_the_rest_pending(
    unused_port: int, tmp_path: Path
) -> None:
    offline = NotifySettings(to=("a@example.org",))
    for run_id in ("r-1", "r-2"):
        deliver(report(offline, run_id=run_id), offline, tmp_path)
    down = NotifySettings(to=("a@example.org",), smtp_host="127.0.0.1", smtp_port=unused_port)
    with pytest.raises(NotifyError, match=r"^sent 0 of 2 pending messages; .*could not reach"):
        resend(tmp_path, down, sleep=Sleeps())
    assert len(pending_messages(tmp_path)) == 2


def test_starttls_and_login_work_when_the_ca_file_is_given(
    smtp_starttls_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_SMTP_CAFILE", str(smtp_starttls_server.cafile))
    settings = settings_for(
        smtp_starttls_server,
        security="starttls",
        smtp_user=smtp_starttls_server.user,
        smtp_password=smtp_starttls_server.password,
    )
    assert deliver(report(settings), settings, tmp_path).sent
    assert len(smtp_starttls_server.messages) == 1


def test_untrusted_certificate_fails_at_once_and_names_the_cafile_variable(
    smtp_starttls_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWEAKOPS_SMTP_CAFILE", raising=False)
    settings = settings_for(smtp_starttls_server, security="starttls")
    sleeps = Sleeps()
    with pytest.raises(NotifyError, match=r"could not be verified .*set TWEAKOPS_SMTP_CAFILE"):
        deliver(report(settings), settings, tmp_path, sleep=sleeps)
    assert sleeps == []
    assert len(pending_messages(tmp_path)) == 1


def test_implicit_tls_server_receives_the_report(
    smtp_ssl_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_SMTP_CAFILE", str(smtp_ssl_server.cafile))
    settings = settings_for(smtp_ssl_server, security="ssl")
    assert deliver(report(settings), settings, tmp_path).sent
    assert len(smtp_ssl_server.messages) == 1
