"""Stage 3: train once with the user's own defaults (trial 0) and read accuracy.txt."""

from __future__ import annotations

from pathlib import Path

from tuning.stop import reached
from tweakops.context import RunContext
from tweakops.errors import TrialFailed
from tweakops.plan import make_plan
from tweakops.results import Trained
from tweakops.trials import execute_trial, log_tail, publish_best, resume_trial
from tweakops.vocabulary import TrialStatus


def train(ctx: RunContext, again: bool = False) -> Trained:
    """Run trial 0; a rerun keeps a finished trial 0 unless `again`, and resumes a lost one."""
    plan = make_plan(ctx)
    ctx.console.say(f"    trials run on {plan.describe()}")
    plan.runtime.keep_spares(plan.trials_at_once()[0])  # ready for tune's first trials at once
    existing = {t.number: t for t in ctx.store.trials(ctx.run.id)}.get(0)
    if existing and existing.status == TrialStatus.RUNNING and not again:
        record = resume_trial(ctx, plan, existing, plan.config.time_budget)
    elif existing and existing.status == TrialStatus.SUCCEEDED and not again:
        ctx.console.say("    trial 0 already finished; keeping it (use --again to retrain)")
        record = existing
    else:
        record = execute_trial(ctx, plan, 0, {}, plan.config.time_budget)
    if record.status != TrialStatus.SUCCEEDED or record.accuracy is None:
        log = f"{record.folder}/log.txt"
        tail = log_tail(Path(log), 5)
        last = tail.splitlines()[-1] if tail else "(no output)"
        raise TrialFailed(
            f"trial 0 (the defaults) failed: {record.error}; last log line: {last!r}; "
            f"full log: {log}",
            verdict=record.verdict or "failed",
            log_tail=tail,
        )
    publish_best(ctx, record, plan.config.metric)
    return Trained(
        trial=0,
        accuracy=record.accuracy,
        threshold=plan.config.threshold,
        reached=reached(record.accuracy, plan.config.threshold),
        runtime=plan.runtime.name,
        image=plan.image,
        entrypoint=plan.entrypoint,
        seconds=record.duration or 0.0,
        restarts=record.restarts,
    )
