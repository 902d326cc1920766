"""What the `tweakops` subcommands share: the run store, the run a command works on, options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tweakops.context import RunContext
from tweakops.errors import StoreError
from tweakops.jenkins.build import runs_of_this_build
from tweakops.plan import run_runtime
from tweakops.report.console import COLOR_CHOICES, Console
from tweakops.report.status import as_json
from tweakops.store import RunStore, default_home

RUNTIMES = click.Choice(["auto", "local", "docker"])


def store_of(obj: dict[str, Any], read_only: bool = False) -> RunStore:
    home = obj["home"]
    return RunStore(Path(home) if home else default_home(), read_only=read_only)


def normalize_source(source: str) -> str:
    """Local paths become absolute, so a later `--source` finds the same runs."""
    path = Path(source).expanduser()
    return str(path.resolve()) if "://" not in source and path.exists() else source


def context_of(
    obj: dict[str, Any],
    run_id: str | None,
    source: str | None,
    runtime: str,
    read_only: bool = False,
) -> RunContext:
    """The run of --run (or TWEAKOPS_RUN_ID), else the latest run (of --source)."""
    store = store_of(obj, read_only)
    run = (
        store.get_run(run_id)
        if run_id
        else store.latest_run(normalize_source(source) if source else None)
    )
    run_runtime(run.id, run.runtime, runtime)  # refused before anything is recorded
    return RunContext(store, run, Console(quiet=obj["json"]), runtime)


def chosen_runs(
    obj: dict[str, Any], run_id: str | None, source: str | None, this_build: bool
) -> list[str]:
    """--run (or TWEAKOPS_RUN_ID); else with --this-build the runs this Jenkins build worked
    on (maybe none); else the latest run (of --source)."""
    if run_id or not this_build:
        return [context_of(obj, run_id, source, "auto", read_only=True).run.id]
    this = runs_of_this_build(store_of(obj, read_only=True))
    if this is None:
        raise StoreError(
            "--this-build works inside a Jenkins build (BUILD_URL, JOB_NAME and BUILD_NUMBER "
            "are set there); elsewhere give --run ID"
        )
    build, found = this
    if not found:
        click.echo(f"Jenkins build {build} worked on no run: nothing to show")
    return found


def has_run(obj: dict[str, Any], source: str | None) -> bool:
    return bool(store_of(obj).list_runs(normalize_source(source) if source else None, 1))


def emit(obj: dict[str, Any], result: Any) -> None:
    if obj["json"] and result is not None:
        click.echo(as_json(result.to_dict()))


run_option = click.option(
    "--run",
    "run_id",
    envvar="TWEAKOPS_RUN_ID",
    help="Run id, or TWEAKOPS_RUN_ID (default: the latest run, of --source if given).",
)
source_option = click.option("--source", help="Pick the latest run of this repository.")
this_build_option = click.option(
    "--this-build",
    is_flag=True,
    help="The run(s) this Jenkins build worked on (TWEAKOPS_RUN_ID, when set, wins).",
)
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
