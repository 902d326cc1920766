"""The `tweakops` command: each subcommand parses, calls one library function, prints."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from tweakops.cli.common import (
    chosen_runs,
    color_option,
    context_of,
    has_run,
    normalize_source,
    run_option,
    runtime_option,
    source_option,
    store_of,
    this_build_option,
)
from tweakops.cli.hook import hook_group
from tweakops.cli.images import images_group
from tweakops.cli.jenkins import jenkins_group
from tweakops.cli.stages import STAGE_COMMANDS
from tweakops.context import RunContext, run_stage
from tweakops.errors import TweakopsError, explain
from tweakops.jenkins.build import describe_build
from tweakops.pipeline import resume_run, watch_stage
from tweakops.redact import redact
from tweakops.report.console import Console, terminal_width, use_color
from tweakops.report.status import as_json, render_runs, render_status, run_snapshot
from tweakops.runtime import get_runtime
from tweakops.stages.watch import FAILED, RESUMED, Watched, sweep
from tweakops.stages.watch import follow as follow_runs
from tweakops.store import RunStore
from tweakops.vocabulary import RunStatus


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="TWEAKOPS_HOME", help="Run store folder (default ./.tweakops).")
@click.option("--json", "as_json_", is_flag=True, help="Print results as JSON for scripts.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="tweakops")
@click.pass_context
def cli(ctx: click.Context, home: str | None, as_json_: bool, debug: bool) -> None:
    """Pull ML code, pick its image, train, tune to a threshold, email, and watch.

    `tweakops run SOURCE` does all six stages; each stage is also a command of
    its own that works on a stored run (`--run ID`, default the latest run).
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = {"home": home, "json": as_json_, "debug": debug}


@cli.command("watch")
@run_option
@source_option
@runtime_option
@click.option("--all", "all_runs", is_flag=True, help="Every run recorded as running.")
@click.option(
    "--follow", is_flag=True, help="Keep watching until the run(s) end: wake on Docker events."
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between sweeps when following (Docker events wake it sooner).",
)
@click.option("--for", "duration", type=click.FloatRange(min=0), help="Stop following after N s.")
@click.option(
    "--report-to",
    type=click.Path(file_okay=False, path_type=Path),
    help="For each run it resumed: <DIR>/<run>/ with its artifacts and tweakops-junit.xml "
    "(for the Jenkins job to publish and archive).",
)
@click.pass_obj
def watch_cmd(
    obj: dict[str, Any],
    run_id: str | None,
    source: str | None,
    runtime: str,
    all_runs: bool,
    follow: bool,
    poll: float,
    duration: float | None,
    report_to: Path | None,
) -> None:
    """Stage 6: resume runs whose process died mid-stage, from their last checkpoints.

    A trial container still running is adopted; a gone one restarts from its checkpoint.
    `--all` (the periodic Jenkins job) looks at every run recorded as running; a run that a
    live process holds is left to it. Exit 1 when resuming a run failed.
    """
    store = store_of(obj)
    console = Console(quiet=obj["json"])
    if all_runs:

        def contexts() -> list[RunContext]:
            runs = [r for r in store.list_runs(limit=10_000) if r.status == RunStatus.RUNNING]
            return [RunContext(store, r, console, r.runtime or runtime) for r in runs]
    else:
        if run_id is None and not has_run(obj, source):
            click.echo("nothing to watch: no run yet")  # the periodic job before the first push
            return
        one = context_of(obj, run_id, source, runtime)

        def contexts() -> list[RunContext]:
            return [one.refreshed()]

    if follow:
        waiter = get_runtime(runtime)
        watched = follow_runs(
            contexts, resume_run, waiter.wait_for_exits, poll, duration, time.monotonic
        )
    elif all_runs:
        watched = sweep(contexts(), resume_run)
    else:
        watched = run_stage(contexts()[0], "watch", watch_stage)
    if obj["json"]:
        click.echo(as_json(watched.to_dict()))
    else:
        for swept in watched.runs:
            click.echo(swept.line())
        if not watched.runs:
            click.echo("no run is recorded as running")
    if report_to is not None:
        _publish_resumed(store, watched, report_to)
    describe_build(store)
    if watched.failed:
        sys.exit(1)


def _publish_resumed(store: RunStore, watched: Watched, folder: Path) -> None:
    """What a Jenkins build shows of the runs it resumed: their JUnit files and artifacts."""
    from tweakops.artifacts import export_artifacts
    from tweakops.jenkins.junit import JUNIT_FILE, write_junit

    for swept in watched.runs:
        if swept.action not in (RESUMED, FAILED):
            continue
        try:
            export_artifacts(store, swept.run_id, folder / swept.run_id)
            write_junit(store, swept.run_id, folder / swept.run_id / JUNIT_FILE)
        except TweakopsError as exc:
            click.echo(f"error: run {swept.run_id}: not published: {redact(str(exc))}", err=True)
            continue
        click.echo(f"run {swept.run_id}: report and JUnit result in {folder / swept.run_id}")


@cli.command("status")
@run_option
@source_option
@this_build_option
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the threshold check and the stages as JUnit XML (for Jenkins).",
)
@color_option
@click.pass_obj
def status_cmd(
    obj: dict[str, Any],
    run_id: str | None,
    source: str | None,
    this_build: bool,
    junit_path: Path | None,
    color: str,
) -> None:
    """Show a run's stages and trials."""
    run_ids = chosen_runs(obj, run_id, source, this_build)
    if not run_ids:
        return
    store = store_of(obj, read_only=junit_path is None)
    if junit_path is not None:
        from tweakops.jenkins.junit import write_junit

        write_junit(store, run_ids, junit_path)
    if obj["json"]:
        snapshots = [run_snapshot(store, one) for one in run_ids]
        click.echo(as_json(snapshots if this_build else snapshots[0]))
        return
    colored = use_color(sys.stdout, color)
    for one in run_ids:
        shown = render_status(store, one, colored, terminal_width(sys.stdout))
        click.echo(shown, color=colored)


@cli.command("runs")
@source_option
@click.option("--limit", type=int, default=20, show_default=True)
@color_option
@click.pass_obj
def runs_cmd(obj: dict[str, Any], source: str | None, limit: int, color: str) -> None:
    """List runs, newest first."""
    store = store_of(obj, read_only=True)
    runs = store.list_runs(normalize_source(source) if source else None, limit)
    if obj["json"]:
        click.echo(as_json([run_snapshot(store, r.id)["run"] for r in runs]))
    elif runs:
        colored = use_color(sys.stdout, color)
        click.echo(render_runs(store, runs, colored, terminal_width(sys.stdout)), color=colored)
    else:
        click.echo(f"no runs in {store.home}")


@cli.command("report")
@click.argument("run_arg", metavar="[RUN]", required=False)
@run_option
@source_option
@click.option("--open", "open_it", is_flag=True, help="Open the report in a web browser.")
@click.option(
    "--copy-to",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also copy report.html into this folder (e.g. $WORKSPACE, for Jenkins to archive).",
)
@click.pass_obj
def report_cmd(
    obj: dict[str, Any],
    run_arg: str | None,
    run_id: str | None,
    source: str | None,
    open_it: bool,
    copy_to: Path | None,
) -> None:
    """Write a run's report.html (stages, plots, trials, restarts, evidence); print its path.

    RUN (or --run) picks the run; the default is the latest run, of --source if given.
    """
    from tweakops.report.page import copy_report, write_report

    ctx = context_of(obj, run_arg or run_id, source, "auto")
    path = write_report(ctx.store, ctx.run.id)
    shown: dict[str, str] = {"report": str(path)}
    if copy_to is not None:
        shown["copy"] = str(copy_report(path, copy_to))
    click.echo(as_json(shown) if obj["json"] else "\n".join(shown.values()))
    if open_it and not _open_in_browser(path):
        click.echo(f"no web browser could be opened: the report is at {path}", err=True)


@cli.command("artifacts")
@run_option
@source_option
@this_build_option
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to fill (new, or made by an earlier export: it is emptied first); "
    "with --this-build, one subfolder per run.",
)
@click.pass_obj
def artifacts_cmd(
    obj: dict[str, Any], run_id: str | None, source: str | None, this_build: bool, dest: Path
) -> None:
    """Copy what a build archives (report, metric, plot, emails, trial logs and diffs, the best
    model's checkpoints) into one folder: regular files only, never through a link."""
    from tweakops.artifacts import export_artifacts

    store = store_of(obj)
    for one in chosen_runs(obj, run_id, source, this_build):
        exported = export_artifacts(store, one, dest / one if this_build else dest)
        click.echo(as_json(exported.to_dict()) if obj["json"] else exported.summary())


def _open_in_browser(path: Path) -> bool:
    import webbrowser

    try:
        return webbrowser.open(path.as_uri())
    except webbrowser.Error:
        return False


for _command in STAGE_COMMANDS:
    cli.add_command(_command)
cli.add_command(images_group)
cli.add_command(jenkins_group)
cli.add_command(hook_group)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: TweakopsError → one `error:` line and its exit code (traceback with --debug)."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _interrupt)  # a Jenkins abort cleans up like Ctrl-C
    try:
        cli.main(args=args, prog_name="tweakops", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except TweakopsError as exc:
        if "--debug" in args:
            raise
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; the run is kept, rerun the stage to resume", err=True)
        sys.exit(130)
    except Exception as exc:  # not ours: still one line, the traceback only with --debug
        if "--debug" in args:
            raise
        error = explain(exc)
        click.echo(f"error: {redact(str(error))}", err=True)
        sys.exit(error.exit_code)
