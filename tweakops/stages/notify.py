"""Stage 5: email the result (success always, failure when asked), or keep it in the outbox."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from notify import NotifySettings, RunOutcome, build_message, deliver, resend, should_notify
from tweakops.config import Config
from tweakops.context import RunContext
from tweakops.report.outcome import run_config, run_outcome
from tweakops.report.page import try_write_report
from tweakops.report.plots import PLOT_FILE, accuracy_plot
from tweakops.results import Notified

NOTIFIED_EVENT = "notified"


def notify(ctx: RunContext, resend_outbox: bool = False, again: bool = False) -> Notified:
    """Build the message from the run store and deliver it.

    A result that was emailed already (the same verdict, best trial and trial count) is not
    sent again, so a rerun of the chain does not mail everyone twice; `again` sends it anyway.
    `resend_outbox` sends what waits in the outbox instead.
    """
    config = run_config(ctx)
    settings = config.notify
    if resend_outbox:
        sent = resend(ctx.folder / "outbox", settings)
        return Notified(
            sent=bool(sent),
            skipped=not sent,
            reason=f"resent {len(sent)} message(s) from {ctx.folder / 'outbox'}",
        )
    report = try_write_report(ctx.store, ctx.run.id)
    outcome = replace(run_outcome(ctx, config), report_path=str(report) if report else None)
    fingerprint = result_fingerprint(outcome)
    earlier = emailed(ctx, fingerprint)
    if earlier and not again:
        return Notified(
            sent=False,
            skipped=True,
            reason=f"this result was emailed already ({earlier}); --again sends it again",
            report_path=outcome.report_path,
        )
    if not should_notify(settings, outcome.reached):
        which = "success" if outcome.reached else "failure"
        return Notified(
            sent=False,
            skipped=True,
            reason=f"no email: notify.on does not include {which}",
            report_path=outcome.report_path,
        )
    message = build_message(outcome, settings, plot=_plot(ctx, config))
    delivery = deliver(message, settings, ctx.folder / "outbox")
    if delivery.sent:
        ctx.event(
            NOTIFIED_EVENT,
            f"emailed {', '.join(delivery.recipients)}",
            fingerprint=fingerprint,
            message_id=delivery.message_id,
        )
    reason = (
        f"sent to {', '.join(delivery.recipients)}"
        if delivery.sent
        else f"{_why_kept(settings)}: message kept in outbox/{_name(delivery.outbox_path)}"
    )
    return Notified(
        sent=delivery.sent,
        skipped=False,
        reason=reason,
        recipients=delivery.recipients,
        message_id=delivery.message_id,
        outbox_path=delivery.outbox_path,
        report_path=outcome.report_path,
    )


def result_fingerprint(outcome: RunOutcome) -> str:
    """What a reader of the email would see change: verdict, best trial, trials, threshold."""
    best = outcome.best
    facts = [
        outcome.run.status,
        outcome.verdict,
        outcome.threshold,
        len(outcome.trials),
        [best.number, best.accuracy] if best else None,
    ]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:16]


def emailed(ctx: RunContext, fingerprint: str) -> str | None:
    """When and to whom this result was emailed, or None if it never was."""
    for event in reversed(ctx.store.events(ctx.run.id, NOTIFIED_EVENT)):
        if event.data.get("fingerprint") == fingerprint:
            return event.message.removeprefix("emailed ") + f" at {_clock(event.time)}"
    return None


def _clock(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def _name(path: str | None) -> str:
    return os.path.basename(path or "")


def _why_kept(settings: NotifySettings) -> str:
    if not settings.smtp_host:
        return "no SMTP server configured (notify.smtp.host or TWEAKOPS_SMTP_HOST)"
    return "no recipients configured (notify.to or TWEAKOPS_NOTIFY_TO)"


def _plot(ctx: RunContext, config: Config) -> Path | None:
    """accuracy.png of the run, redrawn from the store; None before any trial."""
    trials = ctx.store.trials(ctx.run.id)
    if not trials:
        return None
    return accuracy_plot(trials, config.threshold, config.metric, ctx.folder / PLOT_FILE)
