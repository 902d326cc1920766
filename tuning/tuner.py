"""The tuner loops: Optuna (seeded multivariate TPE, median pruning, trials at once), escalation.

Both loops only decide: `evaluate(number, params, control)` runs a trial somewhere else and
returns its metric (None when it failed or was stopped). `control` carries the per-epoch
reports back (for pruning) and the order to stop (pruned, or cancelled because the
threshold was reached by a sibling). The Optuna study lives in a database, so a restarted
loop finishes the trials that were in flight and never repeats a finished one.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

from tuning.pruner import ReachedEpochMedianPruner
from tuning.settings import Pruning
from tuning.space import ParamSpec
from tuning.stop import (
    CANCELLED,
    COMPLETE,
    FAILED,
    PRUNED,
    Observation,
    StopRules,
    Verdict,
    best_of,
    judge,
)
from tweakops.errors import StoreError


@dataclass
class TrialControl:
    """A running trial's line to the tuner: epoch reports in, a stop order out."""

    number: int
    params: dict[str, Any]
    trial: optuna.Trial | None = None  # None: no pruning for this trial
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # pruned | cancelled, once stopped

    def report(self, epoch: int, value: float) -> bool:
        """Record one epoch's metric; True when the trial must stop now."""
        if self.trial is not None and not self.stop.is_set():
            self.trial.report(value, epoch)
            if self.trial.should_prune():
                self.halt(PRUNED)
        return self.stop.is_set()

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    @property
    def state(self) -> str | None:
        return self.reason


STORAGE_ATTEMPTS = 5
OWNER_ATTR = "tweakops_owner"  # the run that asked a trial: only it may resume the trial
Evaluate = Callable[[int, dict[str, Any], TrialControl], float | None]
"""Runs trial `number` with `params`; returns its metric, or None when it failed or stopped."""
OnResult = Callable[[Observation], None]


@dataclass(frozen=True)
class TuneOutcome:
    verdict: Verdict
    history: tuple[Observation, ...]
    best: Observation | None


def open_study(
    storage_url: str, name: str, seed: int, startup_trials: int, pruning: Pruning | None = None
) -> optuna.Study:
    """Create or load the study; SQLite waits for locks instead of failing (optuna#820)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate and constant_liar are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup_trials,
            multivariate=True,  # models the knobs jointly: learning rate goes with optimizer
            constant_liar=True,  # trials at once: a running trial is not asked again
        )
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if pruning is not None:
        pruner = ReachedEpochMedianPruner(pruning.startup_trials, pruning.warmup_epochs)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if storage_url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
    try:
        storage = _storage(storage_url, engine)
        return optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        )
    except ImportError as exc:
        missing = exc.__cause__ or exc
        raise StoreError(
            f"cannot use the study storage {storage_url.split('://')[0]}://…: its database "
            f"driver is missing ({missing}); install it with pip install 'tweakops[postgres]'"
        ) from exc
    except SQLAlchemyError as exc:
        where = storage_url.split("@")[-1]  # never a user name or anything before it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(
            f"cannot open the study {name!r} at {where}: {first}; check tuning.storage, that "
            "the server answers, and PGPASSWORD (or ~/.pgpass) on this machine"
        ) from exc


def _storage(url: str, engine: dict[str, Any]) -> optuna.storages.RDBStorage:
    """RDBStorage, retried while another machine creates the same tables (optuna#1092)."""
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except (IntegrityError, ProgrammingError):
            if attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def finished(study: optuna.Study) -> list[Observation]:
    """Trials the study already holds; trial numbers are Optuna's + 1 (0 is the defaults)."""
    states = {
        TrialState.COMPLETE: COMPLETE,
        TrialState.FAIL: FAILED,
        TrialState.PRUNED: PRUNED,
    }
    return [
        Observation(
            t.number + 1,
            dict(t.params),
            t.value if t.state == TrialState.COMPLETE else None,
            t.user_attrs.get("stopped", states[t.state]),
        )
        for t in study.trials
        if t.state in states
    ]


def run_study(
    space: Sequence[ParamSpec],
    evaluate: Evaluate,
    rules: StopRules,
    study: optuna.Study,
    baseline: Observation,
    elapsed_before: float = 0.0,
    parallel: int = 1,
    on_result: OnResult | None = None,
    clock: Callable[[], float] = time.monotonic,
    owner: str = "",
    first: Mapping[str, Any] | None = None,
) -> TuneOutcome:
    """Ask, evaluate (up to `parallel` at once), tell, until a stop rule fires.

    `first` fixes params of the first trial asked (tuning/prior.py; the sampler picks the
    rest), enqueued only once a trial is needed. Trials are tagged with `owner` (the run).
    Trials of this owner left RUNNING by a tuner that died are finished first, with their own
    params; on a shared study the RUNNING trials of other owners belong to live tuners
    elsewhere and are left alone. When a rule fires, trials still running are cancelled (the
    threshold stops at once); so are lost trials when a rule already holds on resume.
    """
    start = clock()
    history = [baseline, *finished(study)]
    lost = _lost_trials(study, owner)
    distributions = {p.name: p.distribution() for p in space}
    enqueue = [dict(first)] if first else []

    def next_control() -> TrialControl | None:
        if lost:
            return _revive(study, lost.pop(0))
        if enqueue:
            study.enqueue_trial(enqueue.pop())
        return _ask(study, distributions, owner) if space else None

    def refresh() -> None:
        """Count trials that other machines finished on a shared study since we looked."""
        known = {o.number for o in history}
        history.extend(o for o in finished(study) if o.number not in known)

    def tell(control: TrialControl, value: float | None) -> Observation:
        observed = _tell_study(study, control, value)
        if on_result is not None:
            on_result(observed)
        return observed

    verdict = _loop(
        history,
        rules,
        parallel,
        next_control,
        evaluate,
        tell,
        (start, elapsed_before),
        clock,
        refresh,
    )
    for frozen in lost:  # decided before they were resumed: stop their processes
        control = _revive(study, frozen)
        control.halt(CANCELLED)
        history.append(tell(control, evaluate(control.number, control.params, control)))
    if verdict is None:
        verdict = _nothing_to_tune()
    return TuneOutcome(verdict, tuple(history), best_of(history))


def _lost_trials(study: optuna.Study, owner: str) -> list[optuna.trial.FrozenTrial]:
    """Trials of this owner left RUNNING by a tuner that died."""
    return [
        t
        for t in study.trials
        if t.state == TrialState.RUNNING and t.user_attrs.get(OWNER_ATTR, "") == owner
    ]


def _revive(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> TrialControl:
    """A lost trial, to run again with its own params."""
    trial = optuna.Trial(study, frozen._trial_id)
    return TrialControl(frozen.number + 1, dict(frozen.params), trial)


def _ask(study: optuna.Study, distributions: dict[str, Any], owner: str) -> TrialControl:
    """A new trial from the sampler, tagged with its owner."""
    trial = study.ask(distributions)
    trial.set_user_attr(OWNER_ATTR, owner)
    return TrialControl(trial.number + 1, dict(trial.params), trial)


def _tell_study(study: optuna.Study, control: TrialControl, value: float | None) -> Observation:
    """Record a trial's end in the study: its value, or pruned, or failed (why it stopped)."""
    number = control.number - 1
    observed = _observed(control, value)
    if observed.state == COMPLETE:
        study.tell(number, value)
    else:
        if observed.state != FAILED and control.trial is not None:
            control.trial.set_user_attr("stopped", observed.state)
        pruned = observed.state == PRUNED
        study.tell(number, state=TrialState.PRUNED if pruned else TrialState.FAIL)
    return observed


def run_ladder(
    ladder: Sequence[dict[str, Any]],
    evaluate: Evaluate,
    rules: StopRules,
    done: Sequence[Observation],
    baseline: Observation,
    elapsed_before: float = 0.0,
    on_result: OnResult | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneOutcome:
    """The escalate strategy: trial k runs rung k of the ladder, until a rule fires or the
    ladder ends. `done` are rungs already finished by an earlier tuner (never repeated)."""
    start = clock()
    history = [baseline, *done]
    rungs = list(enumerate(ladder, start=1))[len(done) :]

    def next_control() -> TrialControl | None:
        if not rungs:
            return None
        number, params = rungs.pop(0)
        return TrialControl(number, dict(params))

    def tell(control: TrialControl, value: float | None) -> Observation:
        observed = _observed(control, value)
        if on_result is not None:
            on_result(observed)
        return observed

    verdict = _loop(history, rules, 1, next_control, evaluate, tell, (start, elapsed_before), clock)
    if verdict is None:
        best = best_of(history)
        best_text = f"best {best.value:.4f} at trial {best.number}" if best else "no metric"
        message = (
            f"budget spent: threshold {rules.threshold} not reached, the ladder's "
            f"{len(ladder)} rung(s) are all trained; {best_text}"
        )
        verdict = Verdict(False, "ladder", message)
    return TuneOutcome(verdict, tuple(history), best_of(history))


def _loop(
    history: list[Observation],
    rules: StopRules,
    parallel: int,
    next_control: Callable[[], TrialControl | None],
    evaluate: Evaluate,
    tell: Callable[[TrialControl, float | None], Observation],
    started: tuple[float, float],
    clock: Callable[[], float],
    refresh: Callable[[], None] = lambda: None,
) -> Verdict | None:
    """Keep `parallel` trials running while no rule fires; None when there is nothing to run.

    `started` is (clock() at the start, seconds spent by earlier tuners of this run).
    """
    start, elapsed_before = started
    running: dict[Future[float | None], TrialControl] = {}
    exhausted = False
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="trial") as pool:
        try:
            while True:
                refresh()
                verdict = judge(history, rules, elapsed_before + clock() - start)
                if verdict is not None:
                    break
                while not exhausted and len(running) < parallel:
                    if len(history) + len(running) >= rules.max_trials:
                        break
                    control = next_control()
                    if control is None:
                        exhausted = True
                        break
                    future = pool.submit(evaluate, control.number, control.params, control)
                    running[future] = control
                if not running:
                    return None  # nothing left to try
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f].number):
                    history.append(tell(running.pop(future), future.result()))
        finally:
            for control in running.values():
                control.halt(CANCELLED)  # the siblings of a decided run, or Ctrl-C
    for future, control in sorted(running.items(), key=lambda item: item[1].number):
        history.append(tell(control, future.result()))
    if running and (late := judge(history, rules, 0.0)) is not None and late.reached:
        return late  # a cancelled sibling finished anyway, above the threshold
    return verdict


def _observed(control: TrialControl, value: float | None) -> Observation:
    """A finished value is kept even if a stop order came late (cancel nothing finished)."""
    if value is not None:
        return Observation(control.number, control.params, value)
    return Observation(control.number, control.params, None, control.reason or FAILED)


def _nothing_to_tune() -> Verdict:
    message = (
        "stalled: threshold not reached and nothing to tune: tweakops.yaml has no "
        "search_space and inspect found no tunable literal in the code (fit epochs or "
        "batch_size, layer sizes, the optimizer, scikit-learn estimator arguments), so only "
        "the defaults were trained; add a search_space to let tuning try other values"
    )
    return Verdict(False, "nothing_to_tune", message)
