"""Stop rules: every loop has a bound, and the verdict names the rule that ended it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Observation:
    """One finished trial as the tuner sees it: value None means the trial failed."""

    number: int
    params: dict[str, Any]
    value: float | None


@dataclass(frozen=True)
class StopRules:
    threshold: float
    max_trials: int
    time_budget: float
    max_consecutive_failures: int = 3


@dataclass(frozen=True)
class Verdict:
    reached: bool
    rule: str  # threshold | max_trials | time_budget | failures | nothing_to_tune
    message: str


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
    if best is not None and best.value is not None and best.value >= rules.threshold:
        return Verdict(
            True,
            "threshold",
            f"threshold {rules.threshold} reached: {best.value:.4f} at trial "
            f"{best.number} after {len(history)} trial(s)",
        )
    if len(history) >= rules.max_trials:
        return Verdict(
            False,
            "max_trials",
            f"threshold {rules.threshold} not reached: max_trials "
            f"({rules.max_trials}) spent, {best_text}",
        )
    if elapsed >= rules.time_budget:
        return Verdict(
            False,
            "time_budget",
            f"threshold {rules.threshold} not reached: time_budget "
            f"({rules.time_budget:.0f} s) spent, {best_text}",
        )
    tail = history[-rules.max_consecutive_failures :]
    if len(tail) == rules.max_consecutive_failures and all(o.value is None for o in tail):
        return Verdict(
            False,
            "failures",
            f"stopped after {rules.max_consecutive_failures} consecutive failed "
            f"trials, {best_text}",
        )
    return None
