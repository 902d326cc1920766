"""The `tweakops` command: each subcommand parses, calls one library function, prints."""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tweakops.cli_hook import hook_group
from tweakops.cli_images import images_group
from tweakops.cli_jenkins import jenkins_group
from tweakops.config import Config, apply_overrides
from tweakops.console import COLOR_CHOICES, Console, terminal_width, use_color
from tweakops.context import RunContext, run_stage
from tweakops.errors import TweakopsError, explain
from tweakops.gitpull import check_source
from tweakops.pipeline import EXIT_NOT_REACHED, run_pipeline
from tweakops.plan import run_runtime
from tweakops.redact import redact
from tweakops.runtime import get_runtime
from tweakops.stages import inspect, notify, pull, train, tune, watch
from tweakops.stages.watch import follow as follow_runs
from tweakops.stages.watch import sweep
from tweakops.status import as_json, render_runs, render_status, run_snapshot
from tweakops.store import RunStore, default_home

RUNTIMES = click.Choice(["auto", "local", "docker"])


def _store(home: str | None, read_only: bool = False) -> RunStore:
    return RunStore(Path(home) if home else default_home(), read_only=read_only)


def normalize_source(source: str) -> str:
    """Local paths become absolute, so a later `--source` finds the same runs."""
    path = Path(source).expanduser()
    return str(path.resolve()) if "://" not in source and path.exists() else source


def _new_run(obj: dict[str, Any], source: str, values: dict[str, Any]) -> RunContext:
    """Validate the source and the flags first: a refused request leaves no run behind."""
    check_source(source)
    runtime = values.pop("runtime", "auto")
    if runtime != "auto":
        get_runtime(runtime)  # no engine: say so now, not after pull and inspect
    store = _store(obj["home"])
    given = normalize_source(source)
    run = store.create_run(given, _overrides(**values))
    return RunContext(store, run, Console(quiet=obj["json"]), runtime, source=given)


def _overrides(**values: Any) -> dict[str, Any]:
    chosen = {k: v for k, v in values.items() if v is not None}
    apply_overrides(Config(), {k: v for k, v in chosen.items() if k != "ref"})  # fail fast
    return chosen


def _context(
    obj: dict[str, Any],
    run_id: str | None,
    source: str | None,
    runtime: str,
    read_only: bool = False,
) -> RunContext:
    store = _store(obj["home"], read_only)
    run = (
        store.get_run(run_id)
        if run_id
        else store.latest_run(normalize_source(source) if source else None)
    )
    run_runtime(run.id, run.runtime, runtime)  # refused before anything is recorded
    return RunContext(store, run, Console(quiet=obj["json"]), runtime)


def _has_run(obj: dict[str, Any], source: str | None) -> bool:
    return bool(_store(obj["home"]).list_runs(normalize_source(source) if source else None, 1))


def _emit(obj: dict[str, Any], result: Any) -> None:
    if obj["json"] and result is not None:
        click.echo(as_json(result.to_dict()))


run_option = click.option(
    "--run",
    "run_id",
    envvar="TWEAKOPS_RUN_ID",
    help="Run id (default: the latest run, of --source if given).",
)
source_option = click.option("--source", help="Pick the latest run of this repository.")
color_option = click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="Colour the tables: auto = on a terminal, unless NO_COLOR or CI is set or TERM=dumb. "
    "On a terminal, long cells are cut to its width; piped, nothing is cut.",
)
runtime_option = click.option(
    "--runtime",
    type=RUNTIMES,
    default="auto",
    show_default=True,
    envvar="TWEAKOPS_RUNTIME",
    help="Where trials run.",
)


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The overrides shared by `run` and `pull`: they are stored with the run."""
    for option in reversed(
        [
            click.option(
                "--ref", help="Branch, tag or commit to pull (default: the default branch)."
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


@cli.command("run")
@click.argument("source")
@run_options
@runtime_option
@click.pass_obj
def run_cmd(obj: dict[str, Any], source: str, runtime: str, **values: Any) -> None:
    """Run all six stages on SOURCE (a path, file:// or https URL of a Git repo).

    Exit code 0 when the threshold is reached, 3 when it is not, 1-2 on errors.
    """
    ctx = _new_run(obj, source, {**values, "runtime": runtime})
    store, run = ctx.store, ctx.run
    ctx.console.say(f"run {run.id} in {store.run_dir(run.id)}")
    code = run_pipeline(ctx)
    final = store.get_run(run.id)
    if obj["json"]:
        click.echo(as_json(run_snapshot(store, run.id)))
    else:
        click.echo(f"result: {final.verdict} (run {run.id}; `tweakops status --run {run.id}`)")
    sys.exit(code)


@cli.command("pull")
@click.argument("source")
@run_options
@click.pass_obj
def pull_cmd(obj: dict[str, Any], source: str, **values: Any) -> None:
    """Stage 1: start a run and clone or fast-forward SOURCE at --ref."""
    ctx = _new_run(obj, source, values)
    _emit(obj, run_stage(ctx, "pull", pull))
    if not obj["json"]:
        click.echo(ctx.run.id)


def _stage_command(
    name: str, body: Callable[..., Any], help_text: str, extra: list[Any] | None = None
) -> None:
    @run_option
    @source_option
    @runtime_option
    @click.pass_obj
    def command(
        obj: dict[str, Any], run_id: str | None, source: str | None, runtime: str, **flags: Any
    ) -> None:
        ctx = _context(obj, run_id, source, runtime)
        result = run_stage(ctx, name, functools.partial(body, **flags))
        _emit(obj, result)
        if name == "tune" and not result.reached:
            sys.exit(EXIT_NOT_REACHED)

    command.__doc__ = help_text
    for option in extra or []:
        command = option(command)
    cli.command(name)(command)


_stage_command("inspect", inspect, "Stage 2: read the code (ast) and pick the image.")
_stage_command(
    "train",
    train,
    "Stage 3: train trial 0 with the defaults; read accuracy.txt.",
    [click.option("--again", is_flag=True, help="Retrain even if trial 0 finished.")],
)
_stage_command(
    "tune",
    tune,
    "Stage 4: tune until the threshold or a budget stops it (exit 3 if not reached).",
    [
        click.option("--seed", type=int, help="Sampler seed (file: tuning.seed, default 0)."),
        click.option("--parallel", type=click.IntRange(1, 64), help="Trials at once."),
    ],
)
_stage_command(
    "notify",
    notify,
    "Stage 5: email the result, or write it to the run's outbox.",
    [click.option("--resend", "again", is_flag=True, help="Send the outbox again.")],
)


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
) -> None:
    """Stage 6: resume runs whose process died mid-stage, from their last checkpoints.

    A trial container still running is adopted; a gone one restarts from its checkpoint.
    `--all` (the periodic Jenkins job) looks at every run recorded as running; a run that a
    live process holds is left to it. Exit 1 when resuming a run failed.
    """
    store = _store(obj["home"])
    console = Console(quiet=obj["json"])
    if all_runs:

        def contexts() -> list[RunContext]:
            runs = [r for r in store.list_runs(limit=10_000) if r.status == "running"]
            return [RunContext(store, r, console, r.runtime or runtime) for r in runs]
    else:
        if run_id is None and not _has_run(obj, source):
            click.echo("nothing to watch: no run yet")  # the periodic job before the first push
            return
        one = _context(obj, run_id, source, runtime)

        def contexts() -> list[RunContext]:
            return [one.refreshed()]

    if follow:
        waiter = get_runtime(runtime)
        watched = follow_runs(contexts, waiter.wait_for_exits, poll, duration, time.monotonic)
    elif all_runs:
        watched = sweep(contexts())
    else:
        watched = run_stage(contexts()[0], "watch", watch)
    if obj["json"]:
        click.echo(as_json(watched.to_dict()))
    else:
        for swept in watched.runs:
            click.echo(swept.line())
        if not watched.runs:
            click.echo("no run is recorded as running")
    if watched.failed:
        sys.exit(1)


@cli.command("status")
@run_option
@source_option
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
    junit_path: Path | None,
    color: str,
) -> None:
    """Show a run's stages and trials."""
    ctx = _context(obj, run_id, source, "auto", read_only=junit_path is None)
    if junit_path is not None:
        from tweakops.junit import write_junit

        write_junit(ctx.store, ctx.run.id, junit_path)
    if obj["json"]:
        click.echo(as_json(run_snapshot(ctx.store, ctx.run.id)))
    else:
        colored = use_color(sys.stdout, color)
        shown = render_status(ctx.store, ctx.run.id, colored, terminal_width(sys.stdout))
        click.echo(shown, color=colored)


@cli.command("runs")
@source_option
@click.option("--limit", type=int, default=20, show_default=True)
@color_option
@click.pass_obj
def runs_cmd(obj: dict[str, Any], source: str | None, limit: int, color: str) -> None:
    """List runs, newest first."""
    store = _store(obj["home"], read_only=True)
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
    from tweakops.report import copy_report, write_report

    ctx = _context(obj, run_arg or run_id, source, "auto")
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
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to fill (new, or made by an earlier export: it is emptied first).",
)
@click.pass_obj
def artifacts_cmd(obj: dict[str, Any], run_id: str | None, source: str | None, dest: Path) -> None:
    """Copy what a build archives (report, metric, plot, emails, trial logs and diffs, the best
    model's checkpoints) into one folder: regular files only, never through a link."""
    from tweakops.artifacts import export_artifacts

    ctx = _context(obj, run_id, source, "auto")
    exported = export_artifacts(ctx.store, ctx.run.id, dest)
    click.echo(as_json(exported.to_dict()) if obj["json"] else exported.summary())


def _open_in_browser(path: Path) -> bool:
    import webbrowser

    try:
        return webbrowser.open(path.as_uri())
    except webbrowser.Error:
        return False


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
