"""The run report as an email: subject, plain text, an HTML alternative and attachments."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path

from notify import render
from notify.outcome import RunOutcome
from notify.settings import NotifySettings
from tweakops.errors import NotifyError

RUN_HEADER = "X-Tweakops-Run"


def build_message(
    outcome: RunOutcome,
    settings: NotifySettings,
    attachments: Sequence[Path] = (),
    plot: Path | None = None,
) -> EmailMessage:
    """The report email for `outcome`, addressed from `settings`, with files attached.

    `plot` (a PNG) is shown in the HTML part and attached as a file as well, before the
    other attachments.
    """
    message = EmailMessage(policy=default_policy)
    message["Subject"] = render.subject(outcome)
    message["From"] = settings.sender
    if settings.to:
        message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="tweakops")
    message[RUN_HEADER] = outcome.run.id
    message.set_content(render.text_body(outcome), cte="quoted-printable")
    plot_data = _read(plot) if plot else None
    cid = make_msgid(domain="tweakops")  # <…@tweakops>; the HTML refers to it without <>
    html = render.html_body(outcome, plot_cid=cid[1:-1] if plot_data else None)
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    html_part = message.get_body(preferencelist=("html",))
    if plot_data is not None and isinstance(html_part, EmailMessage):
        html_part.add_related(plot_data, "image", "png", cid=cid)  # becomes multipart/related
    for path in [*([plot] if plot else []), *attachments]:
        _attach(message, Path(path))
    return message


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NotifyError(
            f"cannot attach {path} to the report: {exc.strerror or exc}; "
            "check that the file exists and is readable"
        ) from exc


def _attach(message: EmailMessage, path: Path) -> None:
    """Attach one file with the MIME type its name implies."""
    data = _read(path)
    mime, encoding = mimetypes.guess_type(path.name)
    if mime is None or encoding is not None:
        mime = "application/octet-stream"
    maintype, subtype = mime.split("/", 1)
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
