"""Email the result of a run: build the report, send it by SMTP or keep it in the outbox."""

from __future__ import annotations

from notify.message import RunOutcome, build_message
from notify.send import Delivery, deliver, resend
from notify.settings import NotifySettings

__all__ = [
    "Delivery",
    "NotifySettings",
    "RunOutcome",
    "build_message",
    "deliver",
    "resend",
    "should_notify",
]


def should_notify(settings: NotifySettings, reached: bool) -> bool:
    """Whether this result is mailed: "success" in `on` when reached, "failure" when not."""
    return ("success" if reached else "failure") in settings.on
