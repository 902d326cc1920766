"""Stage 5: email the result (success always, failure when asked), or keep it in the outbox."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from notify import NotifySettings, RunOutcome, build_message, deliver, resend, should_notify
from tweakops.config import Config, notify_from_env
from tweakops.context import RunContext
from tweakops.errors import TweakopsError
from tweakops.plots import PLOT_FILE, accuracy_plot
from tweakops.trials import log_tail


@dataclass(frozen=True)
class Notified:
    sent: bool
    skipped: bool
    reason: str
    recipients: tuple[str, ...] = ()
    message_id: str | None = None
    outbox_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return self.reason


def notify(ctx: RunContext, again: bool = False) -> Notified:
    """Build the message from the run store and deliver it; `again` resends the outbox."""
    config = _config_or_defaults(ctx)
    settings = config.notify
    if again:
        sent = resend(ctx.folder / "outbox", settings)
        return Notified(
            sent=bool(sent),
            skipped=not sent,
            reason=f"resent {len(sent)} message(s) from {ctx.folder / 'outbox'}",
        )
    run = ctx.store.get_run(ctx.run.id)
    reached = run.status == "reached"
    if not should_notify(settings, reached):
        which = "success" if reached else "failure"
        return Notified(
            sent=False, skipped=True, reason=f"no email: notify.on does not include {which}"
        )
    message = build_message(_outcome(ctx, config, reached), settings, _attachments(ctx, config))
    delivery = deliver(message, settings, ctx.folder / "outbox")
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
    )


def _name(path: str | None) -> str:
    return os.path.basename(path or "")


def _why_kept(settings: NotifySettings) -> str:
    if not settings.smtp_host:
        return "no SMTP server configured (notify.smtp.host or TWEAKOPS_SMTP_HOST)"
    return "no recipients configured (notify.to or TWEAKOPS_NOTIFY_TO)"


def _config_or_defaults(ctx: RunContext) -> Config:
    try:
        return ctx.config()
    except TweakopsError:  # pull failed: the failure mail still goes out with env settings
        return replace(Config(), notify=notify_from_env(NotifySettings(), os.environ))


def _outcome(ctx: RunContext, config: Config, reached: bool) -> RunOutcome:
    run = ctx.store.get_run(ctx.run.id)
    trials = tuple(ctx.store.trials(ctx.run.id))
    scored = [t for t in trials if t.accuracy is not None]
    best = max(scored, key=lambda t: (t.accuracy or 0.0, -t.number)) if scored else None
    pulled = ctx.store.get_stage(run.id, "pull").result
    failed = [s for s in ctx.store.stages(run.id) if s.status == "failed"]
    verdict = run.verdict or (f"{failed[0].name} failed: {failed[0].error}" if failed else "")
    tail = (
        log_tail(ctx.folder / "trials" / f"{trials[-1].number:03d}" / "log.txt") if trials else ""
    )
    return RunOutcome(
        run=run,
        trials=trials,
        repo=run.source,
        commit=pulled.get("sha"),
        branch=pulled.get("branch"),
        metric=config.metric,
        threshold=config.threshold,
        reached=reached,
        verdict=verdict,
        best=best,
        model_path=f"{best.folder}/output" if best else None,
        build_url=run.build_url or os.environ.get("BUILD_URL"),
        log_tail="" if reached else tail,
    )


def _attachments(ctx: RunContext, config: Config) -> list[Any]:
    trials = ctx.store.trials(ctx.run.id)
    if not trials:
        return []
    return [accuracy_plot(trials, config.threshold, config.metric, ctx.folder / PLOT_FILE)]
