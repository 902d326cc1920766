"""bench/bench_tuning.py's pure part: trials, time to threshold, compute, medians, the best
peer, and where the time went. No clocks and no processes here: only arithmetic on
finished trials.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trial:
    """One finished (or stopped) trial, all times time.time()."""

    number: int
    began: float
    ended: float
    status: str  # succeeded | failed | pruned | cancelled | timeout
    accuracy: float | None
    epoch_times: tuple[float, ...] = ()  # the end of each epoch
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.ended - self.began

    def reached(self, threshold: float) -> bool:
        return (
            self.status == "succeeded"
            and self.accuracy is not None
            and (self.accuracy >= threshold)
        )


@dataclass(frozen=True)
class Reach:
    trials: int  # trials started up to the end of the first one that reached the threshold
    ended: float  # that trial's end


def first_reaching(trials: Sequence[Trial], threshold: float) -> Reach | None:
    """The first trial (by its end) that scored ≥ threshold, and how many trials had started
    by then (with parallel trials, siblings started before it count too)."""
    reaching = sorted((t for t in trials if t.reached(threshold)), key=lambda t: t.ended)
    if not reaching:
        return None
    first = reaching[0]
    return Reach(sum(1 for t in trials if t.began <= first.ended), first.ended)


def compute_seconds(trials: Sequence[Trial], threshold: float) -> float:
    """The trials' summed wall seconds up to the end of the first trial that reached the
    threshold (a trial still running then counts up to that moment; trials at once each
    count), or to the end of the run when none reached."""
    reach = first_reaching(trials, threshold)
    if reach is None:
        return sum(t.seconds for t in trials)
    return sum(min(t.ended, reach.ended) - t.began for t in trials if t.began <= reach.ended)


@dataclass(frozen=True)
class Run:
    """One tuner on one seed."""

    tuner: str
    seed: int
    launched: float  # time.time() just before the tuner's process was started
    trials: tuple[Trial, ...]
    verdict: str
    load_start: float
    load_mean: float
    max_trials: int
    runtime: str = ""  # where the trials ran: docker (image …), local, in-process
    notes: tuple[str, ...] = ()

    def reach(self, threshold: float) -> Reach | None:
        return first_reaching(self.trials, threshold)

    def wall(self, threshold: float) -> float | None:
        """Seconds from the launch to the end of the first trial ≥ threshold; None: never."""
        reach = self.reach(threshold)
        return None if reach is None else reach.ended - self.launched

    def compute(self, threshold: float) -> float:
        return compute_seconds(self.trials, threshold)

    def best(self) -> float | None:
        scores = [t.accuracy for t in self.trials if t.accuracy is not None]
        return max(scores) if scores else None

    def until(self, threshold: float) -> list[Trial]:
        """The trials that began before the end of the measurement (all, when not reached)."""
        reach = self.reach(threshold)
        ordered = sorted(self.trials, key=lambda t: t.began)
        return ordered if reach is None else [t for t in ordered if t.began <= reach.ended]


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median where None (never reached) counts as infinitely long; None when that is the
    median (or there is nothing)."""
    if not values:
        return None
    middle = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(middle) else middle


# ---- per tuner over the seeds, and the best peer ---------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One tuner over its seeds; None for a median means ∞ (not reached on most seeds)."""

    tuner: str
    runs: int
    reached: int
    trials: float | None  # median trials to threshold
    wall: float | None  # median wall seconds to threshold
    compute: float | None  # median compute seconds (finite whenever there is a run)


def summarize(runs: Sequence[Run], tuner: str, threshold: float) -> Summary:
    mine = [r for r in runs if r.tuner == tuner]
    reaches = [r.reach(threshold) for r in mine]
    return Summary(
        tuner=tuner,
        runs=len(mine),
        reached=sum(1 for x in reaches if x is not None),
        trials=median_or_none([None if x is None else float(x.trials) for x in reaches]),
        wall=median_or_none([r.wall(threshold) for r in mine]),
        compute=median_or_none([r.compute(threshold) for r in mine]),
    )


def best_peer(summaries: Sequence[Summary], ours: str) -> Summary | None:
    """The peer that reached the threshold on the most seeds, ties broken by the lowest
    median wall (∞ when not reached), then by the order given; None without peers."""
    peers = [s for s in summaries if s.tuner != ours and s.runs > 0]
    if not peers:
        return None
    return min(peers, key=lambda s: (-s.reached, math.inf if s.wall is None else s.wall))


# ---- where the time went ---------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One trial's seconds: start-up (process, imports, data, model build, tracing, up to the
    first epoch less one typical epoch), training (its epochs) and tail (after the last
    epoch: evaluation, writing the metric, exit, the tuner noticing)."""

    startup: float
    training: float
    tail: float
    epoch: float | None  # median seconds between consecutive epochs


def split_trial(trial: Trial) -> Split:
    times = sorted(trial.epoch_times)
    if not times:
        return Split(trial.seconds, 0.0, 0.0, None)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    epoch = statistics.median(gaps) if gaps else None
    first = times[0] - trial.began - (epoch or 0.0)
    return Split(first, times[-1] - times[0] + (epoch or 0.0), trial.ended - times[-1], epoch)


def median_startup(trials: Sequence[Trial]) -> float | None:
    """The median start-up of the trials that logged two epochs or more (so that one epoch's
    length is known and can be taken off); None when there is none."""
    startups = [split_trial(t).startup for t in trials if len(t.epoch_times) >= 2]
    return statistics.median(startups) if startups else None


PARTS = ("before 1st trial", "trial start-up", "training epochs", "after last epoch", "between")


def time_split(run: Run, threshold: float) -> dict[str, float]:
    """Where the wall time to threshold went (to the last trial's end when not reached).

    With one trial at a time the parts add up to that wall time; trials at once overlap.
    """
    trials = run.until(threshold)
    parts = dict.fromkeys(PARTS, 0.0)
    if not trials:
        return parts
    parts["before 1st trial"] = trials[0].began - run.launched
    for trial in trials:
        split = split_trial(trial)
        parts["trial start-up"] += split.startup
        parts["training epochs"] += split.training
        parts["after last epoch"] += split.tail
    for before, after in itertools.pairwise(trials):
        parts["between"] += after.began - before.ended
    return parts
