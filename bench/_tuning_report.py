"""bench/bench_tuning.py's report: the per-seed rows, the summary against the best peer, the
goal lines, where the time goes and the two overhead measures. Pure: text from finished runs
and from measured numbers.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Sequence
from typing import Protocol

from bench._common import ROOT, met_word, ratio
from bench._tuning_runs import (
    PARTS,
    Run,
    Summary,
    best_peer,
    median_startup,
    split_trial,
    summarize,
    time_split,
)
from bench._tuning_setup import ESCALATION, EXAMPLE, KT_ORACLES, TWEAKOPS, Setup

WALL_GOAL = 0.7  # tweakops's median wall ≤ 0.7× the best peer's
STARTUP_GOAL = 1.2  # tweakops's median per-trial start-up ≤ 1.2× Keras Tuner's in-process
CHECKPOINT_GOAL = 0.10  # per-epoch checkpoint + epoch record ≤ 10% of an epoch
CHECKPOINT_MISSING = "checkpoint overhead: not measured (bench/checkpoint_overhead.py missing)"
DEFINITIONS = (
    "wall = launching the tuner's process → the end of the first trial scoring ≥ the "
    "threshold; ∞ when not reached (a median over seeds counts such a run as infinitely long)",
    "trials = trials started up to the end of that first trial (trial 0 included)",
    "compute s = the sum of the tuner's trials' wall seconds up to the end of that first trial "
    "(a trial still running then counts up to that moment; with trials at once each counts), "
    "or to the end of the run when not reached",
    "ratios = tweakops's median over this tuner's; best peer (*) = the peer that reached the "
    "threshold on the most seeds, ties broken by the lowest median wall",
)


class EpochCost(Protocol):
    """What bench/checkpoint_overhead.py's epoch_overhead() returns."""

    @property
    def plain_s_per_epoch(self) -> float: ...
    @property
    def tweakops_s_per_epoch(self) -> float: ...
    @property
    def overhead_s(self) -> float: ...
    @property
    def share(self) -> float: ...


def num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def wall_text(value: float | None, digits: int = 1) -> str:
    """A wall time to threshold: ∞ when not reached."""
    return "∞" if value is None else f"{value:.{digits}f}"


# ---- per seed, per tuner, the goal -----------------------------------------------------------


def run_rows(runs: Sequence[Run], threshold: float) -> list[str]:
    lines = [
        f"{'tuner':<12} {'seed':>4} {'trials to ' + format(threshold, 'g'):>17} {'wall s':>7} "
        f"{'compute s':>9} {'best':>6} {'load start/mean':>15}  verdict"
    ]
    for run in runs:
        reach = run.reach(threshold)
        trials = str(reach.trials) if reach else f"not in {len(run.trials)}"
        lines.append(
            f"{run.tuner:<12} {run.seed:>4} {trials:>17} {wall_text(run.wall(threshold)):>7} "
            f"{run.compute(threshold):>9.1f} {num(run.best(), 4):>6} "
            f"{f'{run.load_start:.2f} / {run.load_mean:.2f}':>15}  {run.verdict}"
        )
    return lines


def summary_rows(summaries: Sequence[Summary], best: Summary | None) -> list[str]:
    """Per tuner: reached k/n, median trials, wall and compute, tweakops's ratios to it."""
    ours = next((s for s in summaries if s.tuner == TWEAKOPS), None)
    lines = [
        f"{'tuner':<13} {'reached':>7} {'trials':>6} {'wall s':>7} {'compute s':>9} "
        f"{'wall ratio':>10} {'compute ratio':>13}"
    ]
    for summary in summaries:
        peer = ours is not None and summary.tuner != TWEAKOPS
        name = summary.tuner + ("*" if best is not None and summary.tuner == best.tuner else "")
        lines.append(
            f"{name:<13} {f'{summary.reached}/{summary.runs}':>7} "
            f"{wall_text(summary.trials, 0):>6} {wall_text(summary.wall):>7} "
            f"{num(summary.compute):>9} "
            f"{wall_ratio(ours.wall, summary.wall) if peer and ours else '—':>10} "
            f"{ratio(ours.compute, summary.compute) if peer and ours else '—':>13}"
        )
    return lines


def wall_ratio(ours: float | None, peer: float | None) -> str:
    """tweakops's median wall over a peer's, where None is ∞."""
    if ours is None and peer is None:
        return "∞/∞"
    if ours is None:
        return "∞"
    if peer is None:
        return "peer ∞"
    return ratio(ours, peer)


def tuning_goal_line(ours: Summary | None, best: Summary | None) -> str:
    text = (
        "goal: tweakops reaches the threshold on at least as many seeds as the best peer, with "
        f"median wall ≤ {WALL_GOAL:g}× that peer's: "
    )
    if ours is None or best is None:
        return text + "not measured (needs tweakops and a peer)"
    seeds = f"{ours.reached}/{ours.runs} vs {best.tuner} {best.reached}/{best.runs}"
    if ours.wall is None:
        return text + f"NOT met ({seeds}; tweakops's median wall is ∞)"
    faster = best.wall is None or ours.wall <= WALL_GOAL * best.wall
    met = ours.reached >= best.reached and faster
    return text + f"{met_word(met)} ({seeds}; wall {wall_ratio(ours.wall, best.wall)})"


# ---- the overheads ---------------------------------------------------------------------------


def startup_lines(runs: Sequence[Run]) -> list[str]:
    """(a) per-trial start-up: tweakops's trials (a process each) against Keras Tuner's
    trials in its search's process; both start → first epoch, less one epoch."""
    ours = [t for r in runs if r.tuner in (TWEAKOPS, ESCALATION) for t in r.trials]
    theirs = [t for r in runs if r.tuner in KT_ORACLES for t in r.trials]
    mine, peer = median_startup(ours), median_startup(theirs)
    counted = sum(1 for t in ours if len(t.epoch_times) >= 2)
    counted_peer = sum(1 for t in theirs if len(t.epoch_times) >= 2)
    return [
        "per-trial start-up (trial start → first epoch, less one epoch; trials of 2+ epochs): "
        f"tweakops {num(mine, 2)} s (median of {counted}, tweakops and escalation runs), "
        f"Keras Tuner in-process {num(peer, 2)} s (median of {counted_peer}, all its tuners)",
        startup_goal_line(mine, peer),
    ]


def startup_goal_line(ours: float | None, keras_tuner: float | None) -> str:
    text = (
        "goal: tweakops's median per-trial start-up ≤ "
        f"{STARTUP_GOAL:g}× Keras Tuner's in-process trials': "
    )
    if ours is None or keras_tuner is None:
        return text + "not measured (needs trials of 2+ epochs from both)"
    return text + f"{met_word(ours <= STARTUP_GOAL * keras_tuner)} ({ratio(ours, keras_tuner)})"


def checkpoint_lines(cost: EpochCost | None) -> list[str]:
    """(b) per-epoch checkpoint + epoch record against the same fit without them."""
    text = f"goal: per-epoch checkpoint + epoch record ≤ {CHECKPOINT_GOAL:.0%} of an epoch: "
    if cost is None:
        return [CHECKPOINT_MISSING, text + "not measured"]
    return [
        f"checkpoint + epoch record: the plain fit {cost.plain_s_per_epoch:.3f} s/epoch, with "
        f"tweakops's per-epoch checkpoint and epoch record {cost.tweakops_s_per_epoch:.3f} "
        f"s/epoch: {cost.overhead_s:+.3f} s per epoch",
        text + f"{met_word(cost.share <= CHECKPOINT_GOAL)} ({cost.share:.1%} of an epoch)",
    ]


# ---- where the time goes ---------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def breakdown_rows(runs: Sequence[Run], threshold: float, tuners: Sequence[str]) -> list[str]:
    """Where each tuner's time went: medians per trial, and shares of the summed wall time."""
    lines = [
        f"{'tuner':<12} {'trials':>6} {'trial s':>7} {'start-up s':>10} {'epochs':>6} "
        f"{'s/epoch':>7} {'after s':>7} {'between s':>9} {'before 1st s':>12}"
    ]
    shares: list[str] = []
    for tuner in tuners:
        mine = [r for r in runs if r.tuner == tuner]
        trials = [t for r in mine for t in r.until(threshold)]
        if not trials:
            continue
        splits = [split_trial(t) for t in trials]
        gaps = [
            after.began - before.ended
            for r in mine
            for before, after in itertools.pairwise(r.until(threshold))
        ]
        firsts = [r.until(threshold)[0].began - r.launched for r in mine if r.until(threshold)]
        lines.append(
            f"{tuner:<12} {len(trials):>6} {num(_median([t.seconds for t in trials])):>7} "
            f"{num(_median([s.startup for s in splits])):>10} "
            f"{num(_median([float(len(t.epoch_times)) for t in trials]), 0):>6} "
            f"{num(_median([s.epoch for s in splits if s.epoch is not None]), 2):>7} "
            f"{num(_median([s.tail for s in splits])):>7} {num(_median(gaps)):>9} "
            f"{num(_median(firsts)):>12}"
        )
        totals = dict.fromkeys(PARTS, 0.0)
        for run in mine:
            for part, seconds in time_split(run, threshold).items():
                totals[part] += seconds
        whole = sum(totals.values())
        if whole > 0:
            shares.append(
                f"  {tuner}: {whole:.0f} s = "
                + ", ".join(f"{part} {seconds / whole:.0%}" for part, seconds in totals.items())
            )
    shares.insert(0, "share of the summed wall time (to threshold; to the end if not reached):")
    return [*lines, *shares]


# ---- the whole report ------------------------------------------------------------------------


def report(
    setup: Setup, runs: Sequence[Run], heading: Sequence[str], checkpoint: Sequence[str]
) -> str:
    """The report; `checkpoint` is checkpoint_lines() of the measured cost (empty when the
    overheads were skipped)."""
    threshold = setup.threshold
    summaries = [summarize(runs, t, threshold) for t in setup.tuners]
    summaries = [s for s in summaries if s.runs]
    best = best_peer(summaries, TWEAKOPS)
    ours = next((s for s in summaries if s.tuner == TWEAKOPS), None)
    space = setup.space.relative_to(ROOT) if setup.space.is_relative_to(ROOT) else setup.space
    lines = [
        f"tuning (issue #18): {EXAMPLE.relative_to(ROOT)} on {space}, threshold {threshold:g}, "
        f"at most {setup.max_trials} trials and {setup.time_budget:g} s per tuner and seed, "
        f"seeds {' '.join(map(str, setup.seeds))}, {os.cpu_count()} CPUs",
        *heading,
        *DEFINITIONS,
        "",
        *run_rows(runs, threshold),
        "",
        "median over seeds:",
        *summary_rows(summaries, best),
        tuning_goal_line(ours, best),
        "",
        "where the time goes (medians per trial, trials up to the one that reached):",
        *breakdown_rows(runs, threshold, setup.tuners),
        "",
    ]
    if setup.overheads:
        lines += ["overheads:", *startup_lines(runs), *checkpoint]
    else:
        lines.append("overheads: skipped (--no-overheads)")
    if len(setup.seeds) < 3:
        lines.append("NOTE: fewer than 3 seeds: not the issue's measurement")
    return "\n".join(lines)
