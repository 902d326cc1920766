"""`tweakops run` and the stage commands: pull, inspect, train, tune, notify.

A stage command works on one run: --run (or TWEAKOPS_RUN_ID), else the latest run. With
--waiting and no run given, it works on every run waiting for that stage (its previous stage
succeeded, this one has not run), oldest first: a Jenkins job whose triggers were merged in
its queue does each run, none mixed up with another. Under Jenkins, each stage sets its
build's description to the run(s) it worked on.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tweakops.cli.common import (
    context_of,
    emit,
    normalize_source,
    run_option,
    runtime_option,
    source_option,
    store_of,
)
from tweakops.config import PULL_OVERRIDES, Config, apply_overrides
from tweakops.context import RunContext, run_stage
from tweakops.errors import TweakopsError
from tweakops.files import atomic_write
from tweakops.jenkins.build import describe_build
from tweakops.pipeline import EXIT_NOT_REACHED, run_pipeline
from tweakops.pull.git import check_source
from tweakops.redact import redact
from tweakops.report.console import Console
from tweakops.report.status import as_json, run_snapshot
from tweakops.runtime import get_runtime
from tweakops.stages import inspect as inspect_stage
from tweakops.stages import notify as notify_stage
from tweakops.stages import pull, train, tune


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The overrides shared by `run` and `pull`: they are stored with the run."""
    for option in reversed(
        [
            click.option(
                "--ref", help="Branch, tag or commit to pull (default: the default branch)."
            ),
            click.option(
                "--branch",
                help="The branch a pushed commit (--ref SHA) was pushed to, for the record.",
            ),
            click.option(
                "--threshold", help="Target metric, 0-1 or a percentage (file: threshold)."
            ),
            click.option("--max-trials", help="Most trials, trial 0 included (file: max_trials)."),
            click.option(
                "--time-budget", help="Tuning wall time, e.g. 900, 15m (file: time_budget)."
            ),
            click.option("--image", help="Container image to train in (file: image)."),
            click.option("--entrypoint", help="Script to run (file: entrypoint)."),
            click.option("--parallel", help="Trials at once while tuning (file: tuning.parallel)."),
        ]
    ):
        func = option(func)
    return func


def new_run(obj: dict[str, Any], source: str, values: dict[str, Any]) -> RunContext:
    """Validate the source and the flags first: a refused request leaves no run behind."""
    check_source(source)
    runtime = values.pop("runtime", "auto")
    if runtime != "auto":
        get_runtime(runtime)  # no engine: say so now, not after pull and inspect
    store = store_of(obj)
    given = normalize_source(source)
    run = store.create_run(given, _overrides(**values))
    return RunContext(store, run, Console(quiet=obj["json"]), runtime, source=given)


def _overrides(**values: Any) -> dict[str, Any]:
    chosen = {k: v for k, v in values.items() if v is not None and v != ""}
    apply_overrides(Config(), {k: v for k, v in chosen.items() if k not in PULL_OVERRIDES})
    return chosen


@click.command("run")
@click.argument("source")
@run_options
@runtime_option
@click.pass_obj
def run_cmd(obj: dict[str, Any], source: str, runtime: str, **values: Any) -> None:
    """Run all six stages on SOURCE (a path, file:// or https URL of a Git repo).

    Exit code 0 when the threshold is reached, 3 when it is not, 1-2 on errors.
    """
    ctx = new_run(obj, source, {**values, "runtime": runtime})
    store, run = ctx.store, ctx.run
    ctx.console.say(f"run {run.id} in {store.run_dir(run.id)}")
    code = run_pipeline(ctx)
    final = store.get_run(run.id)
    if obj["json"]:
        click.echo(as_json(run_snapshot(store, run.id)))
    else:
        click.echo(f"result: {final.verdict} (run {run.id}; `tweakops status --run {run.id}`)")
    sys.exit(code)


@click.command("pull")
@click.argument("source")
@run_options
@click.option(
    "--properties",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write TWEAKOPS_RUN_ID=<run> to this file (Jenkins passes it downstream).",
)
@click.pass_obj
def pull_cmd(obj: dict[str, Any], source: str, properties: Path | None, **values: Any) -> None:
    """Stage 1: start a run and clone or fast-forward SOURCE at --ref."""
    ctx = new_run(obj, source, values)
    try:
        emit(obj, run_stage(ctx, "pull", pull))
    finally:
        describe_build(ctx.store)
    if properties is not None:
        atomic_write(properties, f"TWEAKOPS_RUN_ID={ctx.run.id}\n")
    if not obj["json"]:
        click.echo(ctx.run.id)


def _stage_command(
    name: str, body: Callable[..., Any], help_text: str, extra: list[Any] | None = None
) -> click.Command:
    @run_option
    @source_option
    @runtime_option
    @click.option(
        "--waiting",
        is_flag=True,
        help="With no --run: every run waiting for this stage, oldest first (Jenkins jobs).",
    )
    @click.pass_obj
    def command(
        obj: dict[str, Any],
        run_id: str | None,
        source: str | None,
        runtime: str,
        waiting: bool,
        **flags: Any,
    ) -> None:
        if waiting and not run_id:
            sys.exit(_run_waiting(obj, name, body, runtime, flags))
        ctx = context_of(obj, run_id, source, runtime)
        try:
            result = run_stage(ctx, name, functools.partial(body, **flags))
        finally:
            describe_build(ctx.store)
        emit(obj, result)
        if name == "tune" and not result.reached:
            sys.exit(EXIT_NOT_REACHED)

    command.__doc__ = help_text
    for option in extra or []:
        command = option(command)
    return click.command(name)(command)


def _run_waiting(
    obj: dict[str, Any], name: str, body: Callable[..., Any], runtime: str, flags: dict[str, Any]
) -> int:
    """The stage on every waiting run; an error is one line and the next run goes on."""
    store = store_of(obj)
    runs = store.runs_waiting(name)
    if not runs:
        click.echo(f"no run waits for {name}")
        return 0
    code = 0
    for run in runs:
        ctx = context_of(obj, run.id, None, runtime)
        try:
            result = run_stage(ctx, name, functools.partial(body, **flags))
        except TweakopsError as exc:
            click.echo(f"error: run {run.id}: {redact(str(exc))}", err=True)
            code = code or exc.exit_code
            continue
        emit(obj, result)
        if name == "tune" and not result.reached:
            code = code or EXIT_NOT_REACHED
    describe_build(store)
    return code


STAGE_COMMANDS = [
    run_cmd,
    pull_cmd,
    _stage_command("inspect", inspect_stage, "Stage 2: read the code (ast) and pick the image."),
    _stage_command(
        "train",
        train,
        "Stage 3: train trial 0 with the defaults; read accuracy.txt.",
        [click.option("--again", is_flag=True, help="Retrain even if trial 0 finished.")],
    ),
    _stage_command(
        "tune",
        tune,
        "Stage 4: tune until the threshold or a budget stops it (exit 3 if not reached).",
        [
            click.option("--seed", type=int, help="Sampler seed (file: tuning.seed, default 0)."),
            click.option("--parallel", type=click.IntRange(1, 64), help="Trials at once."),
        ],
    ),
    _stage_command(
        "notify",
        notify_stage,
        "Stage 5: email the result, or write it to the run's outbox. A result that was "
        "emailed already is not sent again (--again sends it).",
        [
            click.option(
                "--resend", "resend_outbox", is_flag=True, help="Send what waits in the outbox."
            ),
            click.option(
                "--again",
                is_flag=True,
                envvar="TWEAKOPS_NOTIFY_AGAIN",
                help="Email this result even if it was (or TWEAKOPS_NOTIFY_AGAIN=1).",
            ),
        ],
    ),
]
