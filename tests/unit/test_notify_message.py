"""The report email: subject wording, both parts, the trial table, attachments."""

from __future__ import annotations

import email
import struct
import zlib
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from notify import NotifySettings, RunOutcome, build_message, should_notify
from tweakops.errors import ConfigError, NotifyError
from tweakops.records import RunRecord, TrialRecord
from tweakops.redact import redact

SETTINGS = NotifySettings(to=("ml-team@example.org", "lead@example.org"), sender="ci@example.org")


def trial(number: int, accuracy: float | None, status: str = "succeeded", **kw: Any) -> TrialRecord:
    params = kw.pop("params", {"learning_rate": 0.001 * (number + 1), "epochs": 5 + number})
    return TrialRecord(
        run_id="r-42",
        number=number,
        params=params,
        status=status,
        accuracy=accuracy,
        started=1000.0,
        ended=1000.0 + 12.5 * (number + 1),
        **kw,
    )


def outcome(reached: bool, **changes: Any) -> RunOutcome:
    trials = (
        trial(0, 0.912),
        trial(1, None, status="failed", verdict="code_error", restarts=2),
        trial(2, 0.981 if reached else 0.942, restarts=1),
    )
    fields: dict[str, Any] = {
        "run": RunRecord(
            id="r-42",
            source="https://git.example.org/team/mnist-cnn.git",
            created=0.0,
            status="reached" if reached else "not_reached",
        ),
        "trials": trials,
        "repo": "https://git.example.org/team/mnist-cnn.git",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "branch": "main",
        "metric": "accuracy",
        "threshold": 0.97,
        "reached": reached,
        "verdict": "threshold reached" if reached else "max_trials (3) used up below 0.97",
        "best": trials[2],
        "model_path": "/srv/tweakops/runs/r-42/best/model.keras",
        "build_url": "https://jenkins.example.org/job/tune/17/",
        "log_tail": "\n".join(f"epoch {i} loss 0.{i}" for i in range(60)) + "\nTraceback: boom",
    }
    fields.update(changes)
    return RunOutcome(**fields)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_reached_subject_names_repo_metric_threshold_and_run() -> None:
    message = build_message(outcome(reached=True), SETTINGS)
    assert message["Subject"] == (
        "[tweakops] mnist-cnn: threshold reached — accuracy 0.981 ≥ 0.97 (run r-42)"
    )


def test_not_reached_subject_gives_best_below_threshold() -> None:
    message = build_message(outcome(reached=False), SETTINGS)
    assert message["Subject"] == (
        "[tweakops] mnist-cnn: threshold not reached — best 0.942 < 0.97 (run r-42)"
    )


def test_subject_without_any_accuracy_says_none_was_measured() -> None:
    message = build_message(outcome(reached=False, best=None), SETTINGS)
    assert "threshold not reached — no accuracy measured, target 0.97" in message["Subject"]


def test_a_failed_run_says_so_in_the_subject_and_the_result_row() -> None:
    failed = RunRecord(id="r-42", source="mnist-cnn.git", created=0.0, status="failed")
    message = build_message(outcome(reached=False, run=failed, best=None), SETTINGS)
    assert message["Subject"] == (
        "[tweakops] mnist-cnn: run failed — no accuracy measured, target 0.97 (run r-42)"
    )
    text, html = parts(message)
    assert "Result       failed" in text and ">failed</td>" in html


def test_message_has_plain_and_html_parts_with_the_same_facts() -> None:
    message = build_message(outcome(reached=True), SETTINGS)
    text, html = parts(message)
    assert message.get_content_type() == "multipart/alternative"
    facts = ["mnist-cnn", "0123456789", "main", "r-42", "0.981 (trial 2)", "model.keras"]
    facts += ["learning_rate=0.003", "https://jenkins.example.org/job/tune/17/"]
    for fact in facts:
        assert fact in text
        assert fact in html
    assert '<a href="https://jenkins.example.org/job/tune/17/">' in html


def test_headers_address_the_settings_and_carry_a_tweakops_message_id() -> None:
    message = build_message(outcome(reached=True), SETTINGS)
    assert message["From"] == "ci@example.org"
    assert message["To"] == "ml-team@example.org, lead@example.org"
    assert message["Date"]
    assert message["Message-ID"].endswith("@tweakops>")


def test_trial_table_lists_every_trial_with_three_decimals_and_dash_for_missing() -> None:
    text, html = parts(build_message(outcome(reached=False), SETTINGS))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("#"))
    rows = lines[header + 2 : header + 5]
    assert [row.split()[0] for row in rows] == ["0", "1", "2"]
    assert rows[0].split()[1:4] == ["succeeded", "0.912", "12.5"]
    assert rows[1].split()[1:5] == ["failed", "—", "25.0", "2"]
    assert "epochs=7" in rows[2]
    assert html.count("<tr>") >= 3 + 1 + 12


def test_restart_counts_are_summed_and_listed_per_trial() -> None:
    text, _ = parts(build_message(outcome(reached=True), SETTINGS))
    assert "3 (trial 1: 2, trial 2: 1)" in text


def test_failure_report_carries_the_last_log_lines_only() -> None:
    text, html = parts(build_message(outcome(reached=False), SETTINGS))
    assert "Last log lines" in text and "Traceback: boom" in text and "Traceback: boom" in html
    assert "epoch 59 loss" in text
    assert "epoch 0 loss" not in text


def test_success_report_leaves_the_log_out() -> None:
    text, html = parts(build_message(outcome(reached=True), SETTINGS))
    assert "Traceback" not in text and "Traceback" not in html


def test_html_escapes_values_from_the_run() -> None:
    evil = outcome(reached=False, verdict="<script>alert(1)</script>", build_url="javascript:x()")
    _, html = parts(build_message(evil, SETTINGS))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_png_attachment_gets_image_png_and_survives_a_round_trip(tmp_path: Path) -> None:
    plot = tmp_path / "accuracy.png"
    plot.write_bytes(tiny_png())
    message = build_message(outcome(reached=True), SETTINGS, attachments=[plot])
    parsed = email.message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    attached = list(parsed.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in attached] == [
        ("image/png", "accuracy.png")
    ]
    assert attached[0].get_content() == plot.read_bytes()
    assert parts(parsed)[0].startswith("mnist-cnn: threshold reached")


def test_the_plot_is_shown_in_the_html_part_and_attached_as_a_file(tmp_path: Path) -> None:
    plot = tmp_path / "accuracy.png"
    plot.write_bytes(tiny_png())
    message = build_message(outcome(reached=True), SETTINGS, plot=plot)
    parsed = email.message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    [inline] = [p for p in parsed.walk() if p.get("Content-ID")]
    assert inline.get_content_type() == "image/png" and inline.get_content() == tiny_png()
    assert inline.get_content_disposition() != "attachment"
    html_part = parsed.get_body(preferencelist=("html",))
    assert html_part is not None
    cid = inline["Content-ID"].strip("<>")
    assert f'<img src="cid:{cid}"' in html_part.get_content()
    [attached] = list(parsed.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("accuracy.png", tiny_png())
    assert parts(parsed)[0].startswith("mnist-cnn: threshold reached")  # plain part unchanged


def test_without_a_plot_the_html_part_has_no_image() -> None:
    _, html = parts(build_message(outcome(reached=True), SETTINGS))
    assert "<img" not in html and "per trial</h3>" not in html


def test_trial_0_shows_defaults_and_the_best_trial_is_highlighted() -> None:
    defaults = (trial(0, 0.912, params={}), trial(1, 0.981))
    message = build_message(outcome(True, trials=defaults, best=defaults[1]), SETTINGS)
    text, html = parts(message)
    assert [line.split()[-1] for line in text.splitlines() if line.startswith("0  ")] == [
        "defaults"
    ]
    [best_row] = [row for row in html.split("<tr") if "background:#dcf3e3" in row]
    assert ">1</td>" in best_row and ">0.981</td>" in best_row


def test_the_report_path_is_a_row_when_the_report_was_written() -> None:
    report = "/srv/tweakops/runs/r-42/report.html"
    text, html = parts(build_message(outcome(True, report_path=report), SETTINGS))
    assert f"Report       {report}" in text and f">{report}</td>" in html
    text, _ = parts(build_message(outcome(True), SETTINGS))
    assert "Report" not in text


def test_missing_attachment_is_a_notify_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotifyError, match=r"cannot attach .*nope\.png"):
        build_message(outcome(reached=True), SETTINGS, attachments=[tmp_path / "nope.png"])


@pytest.mark.parametrize(
    ("on", "reached", "expected"),
    [
        (("success",), True, True),
        (("success",), False, False),
        (("failure",), False, True),
        (("failure",), True, False),
        (("success", "failure"), False, True),
        ((), True, False),
    ],
)
def test_should_notify_follows_the_on_setting(
    on: tuple[str, ...], reached: bool, expected: bool
) -> None:
    assert should_notify(NotifySettings(on=on), reached) is expected


def test_settings_repr_never_shows_the_password() -> None:
    settings = NotifySettings(smtp_host="h", smtp_user="u", smtp_password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        (
            {"security": "tls"},
            r"notify\.smtp\.security \(TWEAKOPS_SMTP_SECURITY\) must be one of none, starttls, ssl "
            r"but got 'tls'",
        ),
        ({"on": ("always",)}, r"notify\.on must be a list of success, failure"),
        ({"to": "a@example.org"}, r"notify\.to must be a list of addresses"),
        (
            {"smtp_port": 70000},
            r"notify\.smtp\.port \(TWEAKOPS_SMTP_PORT\) must be 1–65535 but got 70000",
        ),
    ],
)
def test_bad_settings_name_the_key_and_the_value(changes: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        NotifySettings(**changes)


def test_default_port_follows_security() -> None:
    assert NotifySettings(smtp_host="h").port == 25
    assert NotifySettings(smtp_host="h", security="starttls").port == 587
    assert NotifySettings(smtp_host="h", security="ssl").port == 465
    assert NotifySettings(smtp_host="h", security="ssl", smtp_port=2465).port == 2465


def test_a_password_or_token_in_a_url_never_reaches_the_mail() -> None:
    source = "https://ci-bot:git-Pa55word@git.example.org/team/mnist-cnn.git"
    failed = outcome(
        reached=False,
        repo=source,
        verdict=f"pull failed: cannot fetch {source}",
        build_url="https://ghp_T0KEN@ci.example.org/job/7/",
        log_tail=f"fatal: unable to access '{source}'",
    )
    message = build_message(failed, SETTINGS)
    text, html = parts(message)
    for secret in ("git-Pa55word", "ghp_T0KEN"):
        assert secret not in message.as_string() and secret not in text + html
    assert "Repository   https://ci-bot:***@git.example.org/team/mnist-cnn.git" in text
    assert "ssh://git@host/x.git" in redact("ssh://git@host/x.git")  # a user, kept
