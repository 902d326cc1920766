"""The report email end to end: `tweakops run` on a real repo, mailed through a real SMTP server
on 127.0.0.1 (aiosmtpd) that requires STARTTLS and then AUTH, configured the way a user does it
(tweakops.yaml `notify:` and TWEAKOPS_SMTP_* / TWEAKOPS_NOTIFY_* variables; the password only in
TWEAKOPS_SMTP_PASSWORD)."""

from __future__ import annotations

import email
import json
import re
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES

SmtpServer = Any  # the object the smtp_* fixtures of conftest.py yield
BUILD_URL = "https://jenkins.example.org/job/tweakops/42/"
BROKEN_TRAIN = "import sklearn\nprint('loading the data')\nraise RuntimeError('boom in training')\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def iris_config(notify_yaml: str) -> dict[str, str]:
    """The iris example's own tweakops.yaml with a `notify:` section appended."""
    own = (EXAMPLES / "iris-sklearn" / "tweakops.yaml").read_text()
    return {"tweakops.yaml": own + notify_yaml}


def secret_env(server: SmtpServer, **extra: str) -> dict[str, str]:
    """What a Jenkins credential binding and the agent provide: the password, the test CA."""
    return {
        "TWEAKOPS_SMTP_PASSWORD": server.password,
        "TWEAKOPS_SMTP_CAFILE": str(server.cafile),
        **extra,
    }


def smtp_env(server: SmtpServer, port: int | None = None, **extra: str) -> dict[str, str]:
    """Everything from the environment: no `smtp:` in tweakops.yaml."""
    return secret_env(
        server,
        TWEAKOPS_SMTP_HOST="127.0.0.1",
        TWEAKOPS_SMTP_PORT=str(port or server.port),
        TWEAKOPS_SMTP_USER=server.user,
        TWEAKOPS_SMTP_SECURITY="starttls",
        TWEAKOPS_NOTIFY_TO="oncall@example.org",
        TWEAKOPS_NOTIFY_FROM="tweakops-ci@example.org",
        **extra,
    )


def parsed(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    crlf = "\r\n"  # SMTP carries CRLF line ends; a mail reader shows lines
    return text.get_content().replace(crlf, "\n"), html.get_content().replace(crlf, "\n")


class HtmlTables(HTMLParser):
    """The rows of every table of an HTML body (cell texts, entities decoded) and its links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def text_summary(text: str) -> dict[str, str]:
    """The `Label   value` block under the title of the text part."""
    block = text.split("\n\n")[1]
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in block.splitlines())


def text_trial_rows(text: str) -> list[list[str]]:
    """The rows of the text part's trial table, split into cells."""
    lines = text.split("\nTrials\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines[0].split()[:3] == ["#", "status", "accuracy"]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]


def expected_trial_cells(trial: dict[str, Any]) -> list[str]:
    """#, status, accuracy (3 decimals), duration, restarts: as a reader of the mail sees them."""
    accuracy = "—" if trial["accuracy"] is None else f"{trial['accuracy']:.3f}"
    duration = f"{trial['ended'] - trial['started']:.1f}"
    return [str(trial["number"]), trial["status"], accuracy, duration, str(trial["restarts"])]


def params_shown(cell: str, params: dict[str, Any]) -> bool:
    """Whether `cell` shows every key=value of `params` (any order; a cut one ends with …)."""
    pairs = {f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()}
    if not params:
        return cell == "defaults"  # trial 0: the script's own
    shown = cell.removesuffix("…").split()
    if not cell.endswith("…"):
        return sorted(shown) == sorted(pairs)
    whole, cut = shown[:-1], shown[-1]
    return set(whole) <= pairs and any(pair.startswith(cut) for pair in pairs - set(whole))


def files_holding(root: Path, secret: str) -> list[Path]:
    """Every file under `root` whose bytes contain `secret`."""
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def snapshot(cli, run_id: str | None = None) -> dict[str, Any]:
    args = ("--json", "status", *(("--run", run_id) if run_id else ()))
    shown = cli(*args)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def assert_both_parts_summarise_the_run(
    text: str, tables: HtmlTables, expected: dict[str, str], best_params: dict[str, Any]
) -> None:
    """The text and HTML parts show the same summary, the best params in full, the build link."""
    html_summary = {row[0]: row[1] for row in tables.rows if len(row) == 2}
    for label, value in expected.items():
        assert text_summary(text)[label] == value, label
        assert html_summary[label] == value, label
    assert params_shown(text_summary(text)["Best params"], best_params)
    assert html_summary["Best params"] == text_summary(text)["Best params"]
    assert not text_summary(text)["Best params"].endswith("…")
    assert BUILD_URL in tables.links


def assert_both_parts_list_every_trial(
    text: str, tables: HtmlTables, trials: list[dict[str, Any]]
) -> None:
    """One row per trial in the text and the HTML trial tables, with the same cells."""
    text_rows = text_trial_rows(text)
    html_rows = [row for row in tables.rows if len(row) == 6][1:]  # without the header
    assert len(trials) >= 2 and len(text_rows) == len(html_rows) == len(trials)
    for trial, in_text, in_html in zip(trials, text_rows, html_rows, strict=True):
        assert in_text[:5] == in_html[:5] == expected_trial_cells(trial)
        assert in_text[5] == in_html[5] and params_shown(in_text[5], trial["params"])


def assert_the_plot_is_attached_and_inline(message: EmailMessage, html: str) -> None:
    """accuracy.png as an attachment, and the same image inline in the HTML part."""
    [plot] = list(message.iter_attachments())
    assert (plot.get_filename(), plot.get_content_type()) == ("accuracy.png", "image/png")
    png = plot.get_content()
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE) and len(png) > 1000
    [inline] = [p for p in message.walk() if p.get("Content-ID")]  # the same plot, in the HTML
    assert inline.get_content() == png and inline.get_content_disposition() != "attachment"
    assert f'<img src="cid:{inline["Content-ID"].strip("<>")}"' in html


def assert_the_password_is_nowhere_tweakops_shows_or_keeps(
    secret: str, result: Any, cli: Any, home: Path
) -> None:
    """Not in the run's output, not in `status`, not in any file of the run store."""
    assert secret not in result.stdout + result.stderr
    assert secret not in cli("status").stdout + cli("--json", "status").stdout
    assert (home / "tweakops.db").is_file() and list(home.rglob("log.txt"))  # what is walked
    assert files_holding(home, secret) == []


def test_a_real_run_mails_its_report_through_starttls_and_auth_without_showing_the_password(
    make_repo, cli, home: Path, smtp_starttls_server: SmtpServer
) -> None:
    server = smtp_starttls_server
    repo = make_repo(
        "iris-sklearn",
        files=iris_config(
            "notify:\n"
            "  to: [ml-team@example.org, lead@example.org]\n"
            "  from: tweakops-ci@example.org\n"
            f"  smtp: {{host: 127.0.0.1, port: {server.port}, user: ci-bot, security: starttls}}\n"
        ),
    )
    server.refuse_next(1)  # one transient 421 first: retried on a new connection

    result = cli("run", str(repo), **secret_env(server, BUILD_URL=BUILD_URL))

    assert result.returncode == 0, result.stderr[-3000:]
    shown = snapshot(cli)
    run, trials = shown["run"], shown["trials"]
    assert f"run {run['id']}: SMTP attempt 1/3 to 127.0.0.1:{server.port} failed" in result.stderr
    assert "sent to ml-team@example.org, lead@example.org" in result.stderr
    assert server.handler.mail_commands == 2
    [mail] = server.messages
    assert mail.mail_from == "tweakops-ci@example.org"
    assert mail.rcpt_tos == ("ml-team@example.org", "lead@example.org")

    message = parsed(mail.content)
    best = max((t for t in trials if t["accuracy"] is not None), key=lambda t: t["accuracy"])
    assert message["Subject"] == (
        f"[tweakops] repo: threshold reached — accuracy {best['accuracy']:.3f} ≥ 0.95 "
        f"(run {run['id']})"
    )
    expected = {
        "Repository": run["source"],
        "Commit": run["sha"][:10],
        "Threshold": "accuracy ≥ 0.95",
        "Result": "reached",
        "Verdict": run["verdict"],
        "Best": f"{best['accuracy']:.3f} (trial {best['number']})",
        "Report": str(home / "runs" / run["id"] / "report.html"),
        "Build": BUILD_URL,
    }
    text, html = bodies(message)
    tables = HtmlTables(html)
    assert_both_parts_summarise_the_run(text, tables, expected, best["params"])
    assert_both_parts_list_every_trial(text, tables, trials)
    assert_the_plot_is_attached_and_inline(message, html)
    assert Path(expected["Report"]).is_file()

    secret = server.password
    assert secret.encode() not in mail.content and secret not in text + html
    assert_the_password_is_nowhere_tweakops_shows_or_keeps(secret, result, cli, home)


def test_a_failed_training_sends_the_failure_mail_with_the_last_log_lines(
    make_repo, cli, home: Path, smtp_starttls_server: SmtpServer
) -> None:
    server = smtp_starttls_server
    repo = make_repo(
        files={"train.py": BROKEN_TRAIN, "tweakops.yaml": "notify:\n  on: [success, failure]\n"}
    )

    result = cli("run", str(repo), **smtp_env(server))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: trial 0 (the defaults) failed")
    assert "sent to oncall@example.org" in result.stderr
    run_id = snapshot(cli)["run"]["id"]
    [mail] = server.messages
    assert (mail.mail_from, mail.rcpt_tos) == ("tweakops-ci@example.org", ("oncall@example.org",))
    message = parsed(mail.content)
    assert message["Subject"] == (
        f"[tweakops] repo: run failed — no accuracy measured, target 0.9 (run {run_id})"
    )
    text, html = bodies(message)
    assert text_summary(text)["Result"] == "failed"
    assert text_summary(text)["Verdict"].startswith("train failed: trial 0 (the defaults) failed")
    tail = text.split("\nLast log lines\n", 1)[1]
    assert "loading the data" in tail and "RuntimeError: boom in training" in tail
    assert "RuntimeError: boom in training" in html
    assert server.password not in result.stderr and files_holding(home, server.password) == []


def test_a_failed_training_sends_no_mail_by_default_and_says_so(
    make_repo, cli, smtp_starttls_server: SmtpServer
) -> None:
    repo = make_repo(files={"train.py": BROKEN_TRAIN, "model.py": "import sklearn\n"})

    result = cli("run", str(repo), **smtp_env(smtp_starttls_server))

    assert result.returncode == 1
    assert "no email: notify.on does not include failure" in result.stderr
    assert smtp_starttls_server.messages == []
    notify = next(s for s in snapshot(cli)["stages"] if s["name"] == "notify")
    assert notify["status"] == "succeeded" and notify["result"]["skipped"] is True


def test_a_failed_pull_mails_when_the_environment_asks_for_failures(
    make_repo, cli, smtp_starttls_server: SmtpServer
) -> None:
    repo = make_repo("iris-sklearn")  # its tweakops.yaml is never read: the pull fails
    env = smtp_env(smtp_starttls_server, TWEAKOPS_NOTIFY_ON="success,failure")

    result = cli("run", str(repo), "--ref", "no-such-ref", **env)

    assert result.returncode == 1
    assert "sent to oncall@example.org" in result.stderr
    [mail] = smtp_starttls_server.messages
    message = parsed(mail.content)
    assert message["Subject"].startswith("[tweakops] repo: run failed — no accuracy measured")
    text, _ = bodies(message)
    assert text_summary(text)["Verdict"].startswith("pull failed: ref 'no-such-ref' not found")


def test_a_message_kept_while_the_server_was_down_goes_out_with_notify_resend(
    make_repo, cli, home: Path, smtp_starttls_server: SmtpServer, unused_port: int
) -> None:
    server = smtp_starttls_server
    repo = make_repo("iris-sklearn")

    down = cli("run", str(repo), **smtp_env(server, port=unused_port))

    assert down.returncode == 1
    shown = snapshot(cli)
    run_id, folder = shown["run"]["id"], Path(shown["folder"])
    [kept] = sorted((folder / "outbox").glob("*.eml"))
    [error] = [line for line in down.stderr.splitlines() if line.startswith("error: ")]
    assert error == (
        f"error: could not reach SMTP server 127.0.0.1:{unused_port} after 3 attempts: "
        f"Connection refused; the message is kept at {kept}; "
        f"fix the settings and run `tweakops notify --run {run_id} --resend`"
    )
    assert down.stderr.count(f"run {run_id}: SMTP attempt") == 2  # retried with backoff
    # the run's own result is kept: only the notify stage failed
    assert shown["run"]["status"] == "reached"
    stages = {s["name"]: s["status"] for s in shown["stages"]}
    assert stages["tune"] == "succeeded" and stages["notify"] == "failed"
    assert server.messages == []

    server.refuse_next(2)  # the server is back, but busy at first
    resent = cli("notify", "--run", run_id, "--resend", **smtp_env(server))

    assert resent.returncode == 0, resent.stderr
    assert resent.stderr.count(f"run {run_id}: SMTP attempt") == 2
    assert f"resent 1 message(s) from {folder / 'outbox'}" in resent.stderr
    assert server.handler.mail_commands == 3
    [mail] = server.messages
    assert mail.rcpt_tos == ("oncall@example.org",)
    original = parsed(kept.with_name("sent").joinpath(kept.name).read_bytes())
    assert parsed(mail.content)["Message-ID"] == original["Message-ID"]
    assert parsed(mail.content)["Subject"].startswith("[tweakops] repo: threshold reached")
    assert list((folder / "outbox").glob("*.eml")) == []
    assert (folder / "outbox" / "sent" / kept.name).is_file()
    stages = {s["name"]: s["status"] for s in snapshot(cli, run_id)["stages"]}
    assert stages["notify"] == "succeeded"
    for output in (down.stdout, down.stderr, resent.stdout, resent.stderr):
        assert server.password not in output
    assert files_holding(home, server.password) == []
