"""Stage 4: while the metric is under the threshold and budget is left, try new hyperparameters."""

from __future__ import annotations

import time
from typing import Any

import optuna

from tuning import (
    Observation,
    StopRules,
    TrialControl,
    TuneOutcome,
    grown,
    is_size,
    open_study,
    run_ladder,
    run_study,
)
from tweakops.context import RunContext
from tweakops.plan import TrialPlan, make_plan
from tweakops.records import TrialRecord
from tweakops.report.plots import PLOT_FILE, accuracy_plot
from tweakops.results import Tuned, require_succeeded
from tweakops.trialfiles import read_params_used
from tweakops.trials import execute_trial, publish_best, resume_trial, trial_folder
from tweakops.vocabulary import FINISHED_TRIALS, RunStatus, TrialStatus


def tune(ctx: RunContext, seed: int | None = None, parallel: int | None = None) -> Tuned:
    """Resume or start tuning; trial 0 (stage 3) is the baseline. Flags override the file."""
    require_succeeded(ctx.store, ctx.run.id, "train")
    plan = make_plan(ctx)
    config = plan.config
    settings = config.tuning
    at_once, auto = plan.trials_at_once(parallel)
    plan.runtime.keep_spares(at_once)
    ctx.console.say(
        f"    trials run on {plan.describe()}, {at_once} at once{auto} ({settings.strategy})"
    )
    records = {t.number: t for t in ctx.store.trials(ctx.run.id)}
    baseline = Observation(0, {}, records[0].accuracy)
    rules = StopRules(
        config.threshold, config.max_trials, config.time_budget, patience=settings.patience
    )
    spent = sum(
        t.duration or 0.0 for n, t in records.items() if n > 0 and t.status != TrialStatus.RUNNING
    )
    started = time.monotonic()
    deadline = started + config.time_budget - spent

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        timeout = deadline - time.monotonic()
        record = _run_or_resume(ctx, plan, number, params, timeout, control)
        return record.accuracy if record.status == TrialStatus.SUCCEEDED else None

    def on_result(_observed: Observation) -> None:
        trials = ctx.store.trials(ctx.run.id)
        accuracy_plot(trials, config.threshold, config.metric, ctx.folder / PLOT_FILE)

    if settings.strategy == "escalate":
        done = _finished_rungs(records)
        elapsed = spent + time.monotonic() - started
        outcome = run_ladder(
            settings.ladder, evaluate, rules, done, baseline, elapsed, on_result=on_result
        )
    else:
        study = open_study(
            settings.storage or ctx.store.storage_url,
            settings.study or f"tweakops-{ctx.run.id}",
            settings.seed if seed is None else seed,
            startup_trials=min(4, max(2, config.max_trials // 3)),  # random, then TPE
            pruning=settings.pruning,
        )
        outcome = run_study(
            plan.space(),
            evaluate,
            rules,
            study,
            baseline,
            elapsed_before=spent + time.monotonic() - started,
            parallel=at_once,
            on_result=on_result,
            owner=ctx.run.id,
            first=_grown_first(ctx, plan, study),
        )
    if not (ctx.folder / PLOT_FILE).exists():
        on_result(outcome.history[0])  # no tuning trial ran: the plot shows trial 0
    return _conclude(ctx, plan, outcome, settings.strategy)


def _grown_first(ctx: RunContext, plan: TrialPlan, study: optuna.Study) -> dict[str, Any]:
    """A new study's first trial: trial 0's values, each size knob at its top (tuning/prior.py).

    Trial 0's values are the knobs inspect found (as written) and what its param() calls
    handed out (params_used.json, defaults included)."""
    if not plan.config.tuning.grow_first or study.trials:
        return {}
    folder = trial_folder(ctx, 0)
    trial0 = {knob.name: knob.default for knob in plan.knobs}
    trial0.update(read_params_used(folder, folder / "output"))
    first = grown(plan.space(), trial0)
    if first:
        sizes = ", ".join(f"{name} {value}" for name, value in first.items() if is_size(name))
        ctx.event("first_trial_grown", f"the first trial grows trial 0: {sizes}", params=first)
        ctx.console.say(
            f"    the first trial grows trial 0: {sizes} (each size knob at its top, the rest "
            "as trial 0; tuning.grow_first: false turns this off)"
        )
    return first


def _conclude(ctx: RunContext, plan: TrialPlan, outcome: TuneOutcome, strategy: str) -> Tuned:
    metric, threshold = plan.config.metric, plan.config.threshold
    best = outcome.best
    mine = {t.number: t for t in ctx.store.trials(ctx.run.id)}
    best_record = mine.get(best.number) if best is not None and best.value is not None else None
    model_dir = None
    if best_record is not None:
        publish_best(ctx, best_record, metric)
        model_dir = f"{best_record.folder}/output"
    status = RunStatus.REACHED if outcome.verdict.reached else RunStatus.NOT_REACHED
    verdict = outcome.verdict.message + _knobs_tried(plan, outcome)
    ctx.store.update_run(ctx.run.id, status=status, verdict=verdict)
    return Tuned(
        reached=outcome.verdict.reached,
        rule=outcome.verdict.rule,
        outcome=outcome.verdict.outcome,
        verdict=verdict,
        threshold=threshold,
        best_trial=best.number if best else None,
        best_accuracy=best.value if best else None,
        best_params=dict(best.params) if best else {},
        trials=len(outcome.history),
        model_dir=model_dir,
        strategy=strategy,
    )


def _knobs_tried(plan: TrialPlan, outcome: TuneOutcome) -> str:
    """For a run that missed its target on knobs inferred from the code: which were tried."""
    if outcome.verdict.reached or plan.config.search_space or not plan.knobs:
        return ""
    if len(outcome.history) <= 1:
        return ""
    shown = ", ".join(f"{k.name} ({k.site.where})" for k in plan.knobs)
    return f"; knobs tried (inferred from the code): {shown}"


def _finished_rungs(records: dict[int, TrialRecord]) -> list[Observation]:
    """Ladder trials 1..k that an earlier tuner finished, in order (stops at the first gap)."""
    done = []
    for number in range(1, len(records) + 1):
        record = records.get(number)
        if record is None or record.status not in FINISHED_TRIALS:
            break
        state = "complete" if record.status == TrialStatus.SUCCEEDED else record.status
        done.append(Observation(number, record.params, record.accuracy, state))
    return done


def _run_or_resume(
    ctx: RunContext,
    plan: TrialPlan,
    number: int,
    params: dict[str, Any],
    timeout: float,
    control: TrialControl,
) -> TrialRecord:
    existing = {t.number: t for t in ctx.store.trials(ctx.run.id)}.get(number)
    if existing is not None and existing.status == TrialStatus.RUNNING:
        return resume_trial(ctx, plan, existing, timeout, control)
    if existing is not None and existing.status in FINISHED_TRIALS:
        return existing  # finished before a crash of the tuner: never repeated
    return execute_trial(ctx, plan, number, params, timeout, control)
