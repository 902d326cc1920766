"""A run's outcome as the email and the report tell it, read from the run store."""

from __future__ import annotations

import os
from dataclasses import replace

from notify import RunOutcome
from notify.render import fmt_threshold
from tweakops.config import Config, notify_from_env
from tweakops.context import RunContext
from tweakops.errors import TweakopsError
from tweakops.records import best_trial
from tweakops.results import Pulled, read_result
from tweakops.trialfiles import trial_log_tail as log_tail
from tweakops.vocabulary import RunStatus, StageStatus


def run_config(ctx: RunContext) -> Config:
    """The run's stored config with this machine's SMTP and notify environment (a Jenkins
    credential is bound to the notify job only); the defaults with that environment when
    the run has none (pull failed, a bad tweakops.yaml)."""
    try:
        config = ctx.config()
    except TweakopsError:  # the failure mail still goes out with the environment's settings
        config = Config()
    return replace(config, notify=notify_from_env(config.notify, os.environ))


def run_outcome(ctx: RunContext, config: Config) -> RunOutcome:
    """What the run came to: the numbers, the verdict, the best trial and where it came from."""
    run = ctx.store.get_run(ctx.run.id)
    reached = run.status == RunStatus.REACHED
    trials = tuple(ctx.store.trials(ctx.run.id))
    best = best_trial(trials)
    pulled = read_result(ctx.store.get_stage(run.id, "pull"), Pulled)
    failed = [s for s in ctx.store.stages(run.id) if s.status == StageStatus.FAILED]
    verdict = run.verdict or (f"{failed[0].name} failed: {failed[0].error}" if failed else "")
    tail = (
        log_tail(ctx.folder / "trials" / f"{trials[-1].number:03d}" / "log.txt") if trials else ""
    )
    return RunOutcome(
        run=run,
        trials=trials,
        repo=run.source,
        commit=pulled.repo.sha if pulled else None,
        branch=pulled.repo.branch if pulled else None,
        metric=config.metric,
        threshold=config.threshold,
        reached=reached,
        verdict=verdict,
        best=best,
        model_path=f"{best.folder}/output" if best else None,
        build_url=run.build_url or os.environ.get("BUILD_URL"),
        log_tail="" if reached else tail,
        settings=settings_from(ctx, config),
    )


def settings_from(ctx: RunContext, config: Config) -> str:
    """ "threshold 0.5 from tweakops.yaml; max_trials 4 from --max-trials (Jenkins:
    MAX_TRIALS); time_budget 3600 s from default"; empty before the pull."""
    if ctx.store.get_stage(ctx.run.id, "pull").status != StageStatus.SUCCEEDED:
        return ""
    found = ctx.origins()
    values = {
        "threshold": fmt_threshold(config.threshold),
        "max_trials": str(config.max_trials),
        "time_budget": f"{config.time_budget:g} s",
    }
    return "; ".join(f"{key} {values[key]} from {origin}" for key, origin in found.items())
