"""One trial: a fresh copy of the source, params in, a supervised process, the metric recorded."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor import Attempt, Probe, Supervised, supervise
from monitor.resume import last_epoch, resume_lost_trial
from tuning import TrialControl
from tweakops.config import Config
from tweakops.context import RunContext
from tweakops.errors import MetricError
from tweakops.files import atomic_write
from tweakops.knobs import apply_knobs
from tweakops.plan import TrialPlan
from tweakops.progress import EpochProgress
from tweakops.records import TrialRecord
from tweakops.report.console import fmt_params
from tweakops.runtime import Handle, TrialSpec
from tweakops.trialfiles import CHANGES_FILE, metric_written, read_metric
from tweakops.trialfiles import trial_log_tail as log_tail
from tweakops.vocabulary import STOPPED_VERDICTS, TrialStatus, TrialVerdict


def trial_folder(ctx: RunContext, number: int) -> Path:
    return ctx.folder / "trials" / f"{number:03d}"


def prepare_trial(ctx: RunContext, plan: TrialPlan, number: int, params: dict[str, Any]) -> Path:
    """A fresh writable copy of the source, with any committed metric file removed (never
    stale), the trial's values written into its knobs, and that change kept as changes.diff."""
    folder = trial_folder(ctx, number)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(ctx.source_dir, folder / "src", symlinks=True)
    (folder / "src" / f"{plan.config.metric}.txt").unlink(missing_ok=True)
    (folder / "output").mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    diff = apply_knobs(folder / "src", plan.knobs, params)
    (folder / CHANGES_FILE).write_text(diff, encoding="utf-8")
    return folder


def trial_spec(ctx: RunContext, plan: TrialPlan, number: int, params: dict[str, Any]) -> TrialSpec:
    folder = trial_folder(ctx, number)
    env = {
        **{name: os.environ[name] for name in plan.config.env if name in os.environ},
        "TWEAKOPS_PARAMS": str(folder / "params.json"),
        "TWEAKOPS_RUN_ID": ctx.run.id,
        "TWEAKOPS_TRIAL": str(number),
        **{f"TWEAKOPS_PARAM_{k.upper()}": _env_value(v) for k, v in params.items()},
    }
    return TrialSpec(
        name=f"tweakops-{ctx.run.id}-t{number}",
        command=plan.command(),
        workdir=folder / "src",
        output_dir=folder / "output",
        log_path=folder / "log.txt",
        env=env,
        image=plan.image,
        labels={"tweakops.run": ctx.run.id, "tweakops.trial": str(number)},
        memory_limit=plan.config.resources.memory,
        cpus=plan.config.resources.cpus,
    )


def execute_trial(
    ctx: RunContext,
    plan: TrialPlan,
    number: int,
    params: dict[str, Any],
    timeout: float,
    control: TrialControl | None = None,
) -> TrialRecord:
    """Start trial `number` from scratch and supervise it to the end (or the tuner's stop)."""
    folder = prepare_trial(ctx, plan, number, params)
    record = TrialRecord(
        run_id=ctx.run.id,
        number=number,
        params=params,
        status=TrialStatus.RUNNING,
        started=time.time(),
        folder=str(folder),
    )
    ctx.store.save_trial(record)
    ctx.console.say(f"    trial {number}: {fmt_params(params, sep=', ') or 'the defaults'}")
    return _supervise_and_record(ctx, plan, record, timeout, control=control)


def resume_trial(
    ctx: RunContext,
    plan: TrialPlan,
    record: TrialRecord,
    timeout: float,
    control: TrialControl | None = None,
) -> TrialRecord:
    """Finish a trial whose tweakops process was lost (the caller holds the run's lease).

    The watchdog (monitor.resume) adopts a container or process that still runs, to be
    followed to its end; a gone one is started again in the trial's own folder and resumes
    from its checkpoints.
    """
    output = Path(record.folder or trial_folder(ctx, record.number)) / "output"
    record, found = resume_lost_trial(ctx, plan.runtime, record, output)
    return _supervise_and_record(ctx, plan, record, timeout, adopt=found.orphan, control=control)


def _supervise_and_record(
    ctx: RunContext,
    plan: TrialPlan,
    record: TrialRecord,
    timeout: float,
    adopt: Handle | None = None,
    control: TrialControl | None = None,
) -> TrialRecord:
    spec = trial_spec(ctx, plan, record.number, record.params)
    probe = _probe(plan.config, spec, control)
    started = record
    current: list[Handle] = []  # the running attempt, for the tuner's stop order

    def on_start(handle: Handle, attempt: int) -> None:
        nonlocal started
        current[:] = [handle]
        started = replace(record, handle=str(handle))
        ctx.store.update_trial(started, restarts=record.restarts + attempt - 1)

    def on_restart(attempt: Attempt, delay: float) -> None:
        _announce_restart(ctx, record.number, spec, attempt, delay)

    def on_poll(epochs: list[dict[str, Any]]) -> None:
        if control is not None:
            _report_epochs(plan, control, epochs, current)

    with EpochProgress(ctx.console, spec.output_dir, record.number, on_poll):
        outcome = supervise(
            plan.runtime,
            spec,
            plan.policy,
            timeout=max(timeout, 1.0),
            on_start=on_start,
            on_restart=on_restart,
            probe=probe,
            adopt=adopt,
        )
    return _record_outcome(ctx, plan.config, started, spec, outcome)


def _probe(config: Config, spec: TrialSpec, control: TrialControl | None) -> Probe:
    """What supervise() asks of a trial: its last epoch, whether it finished, a stop order."""
    metric_files = [d / f"{config.metric}.txt" for d in (spec.output_dir, spec.workdir)]
    return Probe(
        last_epoch=lambda: last_epoch(spec.output_dir),
        finished=lambda: any(os.path.lexists(path) for path in metric_files),
        stopped=lambda: control.reason if control is not None else None,
    )


def _announce_restart(
    ctx: RunContext, number: int, spec: TrialSpec, attempt: Attempt, delay: float
) -> None:
    """The trial_restarted event and its console line, with the epoch it resumes from."""
    epoch = last_epoch(spec.output_dir)
    ctx.event(
        "trial_restarted",
        f"trial {number} {attempt.status.describe()}; restarting in {delay:.1f} s "
        f"from epoch {epoch}",
        trial=number,
        cause=attempt.status.describe(),
        verdict=attempt.verdict,
        resumed_from_epoch=epoch,
        attempt=attempt.number,
        delay=delay,
    )
    ctx.console.say(
        f"    trial {number}: {attempt.status.describe()}, "
        f"restarting from its last checkpoint (epoch {epoch})"
    )


def _report_epochs(
    plan: TrialPlan, control: TrialControl, epochs: list[dict[str, Any]], current: list[Handle]
) -> None:
    """Report new epochs' metric to the tuner; kill the running attempt once it says stop."""
    pruning = plan.config.tuning.pruning
    for row in epochs:
        value = _epoch_metric(row, pruning.metric if pruning else None)
        if value is not None:
            control.report(int(row.get("epoch", 0)), value)
    if control.stop.is_set() and current:
        plan.runtime.kill(current[0])  # supervise() sees probe.stopped() and ends


def _record_outcome(
    ctx: RunContext, config: Config, record: TrialRecord, spec: TrialSpec, outcome: Supervised
) -> TrialRecord:
    restarts = record.restarts + outcome.restarts
    done = replace(record, ended=time.time(), restarts=restarts)
    if outcome.verdict in STOPPED_VERDICTS:
        return _stopped(ctx, done, outcome.verdict, spec.output_dir)
    if outcome.verdict != TrialVerdict.OK:
        error = _failure_text(outcome, config)
        return _failed(ctx, done, outcome.verdict, error, spec.log_path)
    try:
        accuracy = read_metric(spec.workdir.parent, spec.output_dir, spec.workdir, config.metric)
    except MetricError as exc:
        written = metric_written(spec.output_dir, spec.workdir, config.metric)
        verdict = TrialVerdict.METRIC_UNREADABLE if written else TrialVerdict.METRIC_MISSING
        return _failed(ctx, done, verdict, str(exc), spec.log_path)
    saved = ctx.store.save_trial(
        replace(done, status=TrialStatus.SUCCEEDED, accuracy=accuracy, verdict=TrialVerdict.OK)
    )
    ctx.console.say(
        f"    trial {record.number}: {config.metric} {accuracy:.4f} in {saved.duration or 0:.1f} s"
    )
    return saved


def _failed(
    ctx: RunContext, record: TrialRecord, verdict: str, error: str, log: Path
) -> TrialRecord:
    saved = ctx.store.save_trial(
        replace(record, status=TrialStatus.FAILED, verdict=verdict, error=error)
    )
    ctx.event(
        "trial_failed",
        f"trial {record.number} failed: {error}",
        trial=record.number,
        verdict=verdict,
        log_tail=log_tail(log),
    )
    ctx.console.say(f"    trial {record.number}: failed: {error}")
    return saved


def _stopped(ctx: RunContext, record: TrialRecord, reason: str, output: Path) -> TrialRecord:
    """A trial the tuner stopped: pruned (hopeless) or cancelled (the run was decided)."""
    epoch = last_epoch(output)
    why = (
        f"pruned after epoch {epoch}: below the median of earlier trials at that epoch"
        if reason == TrialVerdict.PRUNED
        else f"cancelled after epoch {epoch}: the tuning was decided by another trial"
    )
    saved = ctx.store.save_trial(replace(record, status=reason, verdict=reason, error=why))
    ctx.event(f"trial_{reason}", f"trial {record.number} {why}", trial=record.number, epoch=epoch)
    ctx.console.say(f"    trial {record.number}: {why}")
    return saved


def _epoch_metric(row: dict[str, Any], preferred: str | None) -> float | None:
    """The epoch's pruning metric: `preferred`, else val_accuracy, else accuracy."""
    for key in (preferred, "val_accuracy", "accuracy"):
        value = row.get(key) if key else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _failure_text(outcome: Supervised, config: Config) -> str:
    """What went wrong and, where the user can act, what to do."""
    text = f"{outcome.status.describe()} ({outcome.verdict.replace('_', ' ')})"
    if outcome.verdict == TrialVerdict.OOM:
        return (
            f"{text}: the model needs more than the {config.resources.memory} memory limit; "
            "raise resources.memory in tweakops.yaml or shrink the model/batch"
        )
    if outcome.verdict == TrialVerdict.RESTARTS_EXHAUSTED:
        return f"{text}: restarted {outcome.restarts} time(s) from its checkpoint, then gave up"
    return text


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def publish_best(ctx: RunContext, best: TrialRecord, metric: str) -> Path:
    """Copy the best trial's metric file to the run folder: the run's accuracy.txt."""
    return atomic_write(ctx.folder / f"{metric}.txt", f"{best.accuracy}\n")
