"""The run report as an email: subject, plain text, an HTML alternative and attachments."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path

from notify import _render
from notify.settings import NotifySettings
from tweakops.errors import NotifyError
from tweakops.records import RunRecord, TrialRecord

RUN_HEADER = "X-Tweakops-Run"


@dataclass(frozen=True)
class RunOutcome:
    """Everything the report says about one finished run."""

    run: RunRecord
    trials: tuple[TrialRecord, ...]
    repo: str
    commit: str | None
    branch: str | None
    metric: str
    threshold: float
    reached: bool
    verdict: str
    best: TrialRecord | None
    model_path: str | None = None
    build_url: str | None = None
    log_tail: str = ""


def build_message(
    outcome: RunOutcome, settings: NotifySettings, attachments: Sequence[Path] = ()
) -> EmailMessage:
    """The report email for `outcome`, addressed from `settings`, with files attached."""
    message = EmailMessage(policy=default_policy)
    message["Subject"] = _render.subject(outcome)
    message["From"] = settings.sender
    if settings.to:
        message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="tweakops")
    message[RUN_HEADER] = outcome.run.id
    message.set_content(_render.text_body(outcome), cte="quoted-printable")
    message.add_alternative(_render.html_body(outcome), subtype="html", cte="quoted-printable")
    for path in attachments:
        _attach(message, Path(path))
    return message


def _attach(message: EmailMessage, path: Path) -> None:
    """Attach one file with the MIME type its name implies."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotifyError(
            f"cannot attach {path} to the report: {exc.strerror or exc}; "
            "check that the file exists and is readable"
        ) from exc
    mime, encoding = mimetypes.guess_type(path.name)
    if mime is None or encoding is not None:
        mime = "application/octet-stream"
    maintype, subtype = mime.split("/", 1)
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
