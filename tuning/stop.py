"""Stop rules: every loop has a bound, and the verdict names the rule that ended it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

COMPLETE, FAILED, PRUNED, CANCELLED = "complete", "failed", "pruned", "cancelled"

# What each rule means for the run: reached, budget spent, or stalled.
OUTCOMES = {
    "threshold": "reached",
    "max_trials": "budget spent",
    "time_budget": "budget spent",
    "ladder": "budget spent",
    "patience": "stalled",
    "failures": "stalled",
    "nothing_to_tune": "stalled",
}


@dataclass(frozen=True)
class Observation:
    """One finished trial as the tuner sees it: value None unless it completed."""

    number: int
    params: dict[str, Any]
    value: float | None
    state: str = COMPLETE  # complete | failed | pruned | cancelled

    def __post_init__(self) -> None:
        if self.value is None and self.state == COMPLETE:
            object.__setattr__(self, "state", FAILED)


@dataclass(frozen=True)
class StopRules:
    threshold: float
    max_trials: int
    time_budget: float
    max_consecutive_failures: int = 3
    patience: int | None = None  # finished trials in a row without a new best


@dataclass(frozen=True)
class Verdict:
    reached: bool
    rule: str  # a key of OUTCOMES
    message: str

    @property
    def outcome(self) -> str:
        """reached | budget spent | stalled."""
        return OUTCOMES[self.rule]


def reached(value: float | None, threshold: float) -> bool:
    """The one threshold judgment: a metric was measured and is at or above the threshold."""
    return value is not None and value >= threshold


def best_of(history: Sequence[Observation]) -> Observation | None:
    scored = [o for o in history if o.value is not None]
    return max(scored, key=lambda o: (o.value, -o.number)) if scored else None


def judge(history: Sequence[Observation], rules: StopRules, elapsed: float) -> Verdict | None:
    """None while tuning should go on; otherwise the first rule that stops it."""
    best = best_of(history)
    best_text = (
        f"best {best.value:.4f} at trial {best.number}"
        if best and best.value is not None
        else "no trial produced a metric"
    )
    if best is not None and best.value is not None and reached(best.value, rules.threshold):
        return Verdict(
            True,
            "threshold",
            f"threshold {rules.threshold} reached: {best.value:.4f} at trial "
            f"{best.number} after {len(history)} trial(s)",
        )
    if len(history) >= rules.max_trials:
        return _not_reached(
            rules, "max_trials", f"max_trials ({rules.max_trials}) spent", best_text
        )
    if elapsed >= rules.time_budget:
        budget = f"time_budget ({rules.time_budget:.0f} s) spent"
        return _not_reached(rules, "time_budget", budget, best_text)
    tail = history[-rules.max_consecutive_failures :]
    if len(tail) == rules.max_consecutive_failures and all(o.state == FAILED for o in tail):
        failures = f"{rules.max_consecutive_failures} trials in a row failed"
        return _not_reached(rules, "failures", failures, best_text)
    if rules.patience is not None and _since_best(history) >= rules.patience:
        stalled = f"no new best in the last {rules.patience} trial(s)"
        return _not_reached(rules, "patience", stalled, best_text)
    return None


def _not_reached(rules: StopRules, rule: str, why: str, best_text: str) -> Verdict:
    return Verdict(
        False,
        rule,
        f"{OUTCOMES[rule]}: threshold {rules.threshold} not reached, {why}; {best_text}",
    )


def _since_best(history: Sequence[Observation]) -> int:
    """Finished trials after the one that set the current best (all of them if none did)."""
    best, since = None, 0
    for observation in history:
        if observation.value is not None and (best is None or observation.value > best):
            best, since = observation.value, 0
        else:
            since += 1
    return since
