"""Stage 4: while the metric is under the threshold and budget is left, try new hyperparameters."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tuning import Observation, StopRules, open_study, run_study
from tweakops.context import RunContext
from tweakops.plan import TrialPlan, make_plan
from tweakops.records import TrialRecord
from tweakops.trials import execute_trial, publish_best, resume_trial

DEFAULT_SEED = 0


@dataclass(frozen=True)
class Tuned:
    reached: bool
    rule: str
    verdict: str
    threshold: float
    best_trial: int | None
    best_accuracy: float | None
    best_params: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    model_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return self.verdict


def tune(ctx: RunContext, seed: int = DEFAULT_SEED) -> Tuned:
    """Resume or start the run's study; trial 0 (stage 3) is the baseline."""
    ctx.result_of("train")
    plan = make_plan(ctx)
    ctx.console.say(f"    trials run on {plan.describe()}")
    config = plan.config
    records = {t.number: t for t in ctx.store.trials(ctx.run.id)}
    baseline = Observation(0, {}, records[0].accuracy)
    rules = StopRules(config.threshold, config.max_trials, config.time_budget)
    spent = sum(t.duration or 0.0 for n, t in records.items() if n > 0 and t.status != "running")
    deadline = time.monotonic() + config.time_budget - spent
    study = open_study(
        ctx.store.storage_url,
        f"tweakops-{ctx.run.id}",
        seed,
        startup_trials=min(10, max(2, config.max_trials // 3)),
    )

    def evaluate(number: int, params: dict[str, Any]) -> float | None:
        timeout = deadline - time.monotonic()
        record = _run_or_resume(ctx, plan, number, params, timeout)
        return record.accuracy if record.status == "succeeded" else None

    outcome = run_study(config.search_space, evaluate, rules, study, baseline, elapsed_before=spent)
    best = outcome.best
    model_dir = None
    if best is not None and best.value is not None:
        best_record = {t.number: t for t in ctx.store.trials(ctx.run.id)}[best.number]
        publish_best(ctx, best_record, config.metric)
        model_dir = f"{best_record.folder}/output"
    status = "reached" if outcome.verdict.reached else "not_reached"
    ctx.store.update_run(ctx.run.id, status=status, verdict=outcome.verdict.message)
    return Tuned(
        reached=outcome.verdict.reached,
        rule=outcome.verdict.rule,
        verdict=outcome.verdict.message,
        threshold=config.threshold,
        best_trial=best.number if best else None,
        best_accuracy=best.value if best else None,
        best_params=dict(best.params) if best else {},
        trials=len(outcome.history),
        model_dir=model_dir,
    )


def _run_or_resume(
    ctx: RunContext, plan: TrialPlan, number: int, params: dict[str, Any], timeout: float
) -> TrialRecord:
    existing = {t.number: t for t in ctx.store.trials(ctx.run.id)}.get(number)
    if existing is not None and existing.status == "running":
        return resume_trial(ctx, plan, existing, timeout)
    if existing is not None and existing.status in ("succeeded", "failed"):
        return existing  # finished before a crash of the tuner: never repeated
    return execute_trial(ctx, plan, number, params, timeout)
