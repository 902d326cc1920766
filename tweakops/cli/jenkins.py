"""`tweakops jenkins`: put the jobs/ chain on a Jenkins server, start a job, show the chain, rerun.

The server comes from JENKINS_URL / JENKINS_USER / JENKINS_API_TOKEN or
~/.config/tweakops/jenkins.yaml; every command but `sync --dry-run` talks to it through
tweakops.jenkins.client, the one module that does.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tweakops.errors import ConfigError, JenkinsError
from tweakops.files import atomic_write
from tweakops.report.console import render_table

if TYPE_CHECKING:  # imported when a command runs: python-jenkins and JJB are an extra
    from tweakops.jenkins.client import BuildInfo, JenkinsClient, SyncChange, TriggerResult
    from tweakops.jenkins.jobs import ChainKind, JenkinsSettings, RenderedJobs

WAIT_SECONDS = 60.0
JENKINSFILE = "Jenkinsfile"
INSTALL = "pip install 'tweakops[jenkins]'"

settings_option = click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Jenkins settings file (default jobs/settings.yaml): job prefix, repo URL, view name.",
)
wait_option = click.option(
    "--wait",
    is_flag=True,
    help=f"Wait (up to {WAIT_SECONDS:g} s) until the build has started and print its number.",
)


@dataclass(frozen=True)
class SyncReport:
    changes: list[SyncChange]
    view_kind: str  # "pipeline" or "list"
    fallback: str | None  # why a list view replaced the pipeline view
    chain_kind: str = "parameterized"  # how the run id travels: "parameterized" or "core"
    chain: str = ""  # one line that says it


def chain_kind_of(client: JenkinsClient) -> ChainKind:
    """Parameterized-trigger links where Jenkins has the plugin; core triggers otherwise, and
    when this user may not list plugins (a link Jenkins cannot load would break the chain)."""
    from tweakops.jenkins.jobs import PARAMETERIZED_PLUGIN

    return "parameterized" if client.has_plugin(PARAMETERIZED_PLUGIN) else "core"


def sync_jobs(client: JenkinsClient, settings: JenkinsSettings) -> SyncReport:
    """Render jobs/ for this server and sync: the Build Pipeline view where Jenkins has its
    plugin, else (or when Jenkins refuses to load it) a list view; the chain linked with the
    parameterized-trigger plugin where Jenkins has it, else with core triggers."""
    from tweakops.jenkins.client import PIPELINE_PLUGIN, MissingPlugin

    has_plugin = client.has_plugin(PIPELINE_PLUGIN)  # None: this user may not list plugins
    chain_kind = chain_kind_of(client)
    rendered = _render(settings, pipeline_view=has_plugin is not False, chain_kind=chain_kind)
    changes = client.sync(rendered.jobs, {})
    try:
        changes += client.sync({}, rendered.views)
    except MissingPlugin:
        if has_plugin is not None:
            raise
        rendered = _render(settings, pipeline_view=False, chain_kind=chain_kind)
        changes += client.sync({}, rendered.views)
    fallback = None
    if rendered.view_kind == "list":
        fallback = (
            f"view {settings.view_name} is a list view: Jenkins lacks the Build Pipeline "
            f"plugin ({PIPELINE_PLUGIN}); install it and sync again for the pipeline view"
        )
    return SyncReport(changes, rendered.view_kind, fallback, chain_kind, CHAIN_LINES[chain_kind])


CHAIN_LINES = {
    "parameterized": "chain: each job starts the next with its run (parameterized-trigger)",
    "core": (
        "chain: core triggers (no parameterized-trigger plugin): each job takes every run "
        "waiting for its stage; install the plugin and sync again for one build per run"
    ),
}


def job_name(name: str, settings_path: Path | None) -> str:
    """`job1-pull` means `<prefix>job1-pull`; a name that has the prefix is kept."""
    from tweakops.jenkins.jobs import load_settings

    try:
        prefix = load_settings(settings_path).prefix
    except ConfigError:
        if settings_path is not None:
            raise
        prefix = ""  # no jobs/settings.yaml here (an installed tweakops): names as given
    return name if name.startswith(prefix) else prefix + name


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param must be NAME=VALUE, got {pair!r}")
        params[key.strip()] = value
    return params


def _render(
    settings: JenkinsSettings, pipeline_view: bool, chain_kind: ChainKind = "parameterized"
) -> RenderedJobs:
    from tweakops.jenkins.jobs import render

    try:
        return render(settings, pipeline_view=pipeline_view, chain_kind=chain_kind)
    except ImportError as exc:  # jenkins-job-builder is imported when rendering
        raise JenkinsError(f"{exc.name} is not installed: {INSTALL}") from None


def _client() -> JenkinsClient:
    try:
        from tweakops.jenkins.client import JenkinsClient, connection_from_env
    except ImportError as exc:
        raise JenkinsError(f"{exc.name} is not installed: {INSTALL}") from None
    return JenkinsClient(connection_from_env())


def _wants_json(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("json"))


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _describe(result: TriggerResult) -> str:
    params = " ".join(f"{k}={v}" for k, v in result.params.items())
    where = f"started #{result.number}: {result.url}" if result.number else "queued"
    return f"{result.job} {where} (queue item {result.queue_id}){' ' + params if params else ''}"


@click.group("jenkins")
def jenkins_group() -> None:
    """Jenkins: sync the jobs/ chain and its view, trigger, status, rerun.

    Needs JENKINS_URL, JENKINS_USER and JENKINS_API_TOKEN (or ~/.config/tweakops/jenkins.yaml
    with url, user, token). Job names may leave out the settings' prefix.
    """


@jenkins_group.command("sync")
@settings_option
@click.option(
    "--dry-run",
    "dry_run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write <name>.xml of every job and the (pipeline) view here; talk to no server.",
)
@click.pass_context
def sync_command(ctx: click.Context, settings_path: Path | None, dry_run_dir: Path | None) -> None:
    """Create or update the six jobs and the view; only what changed is pushed."""
    from tweakops.jenkins.jobs import load_settings, write_rendered

    settings = load_settings(settings_path)
    if dry_run_dir is not None:
        paths = write_rendered(_render(settings, pipeline_view=True), dry_run_dir)
        if _wants_json(ctx):
            _echo_json([str(p) for p in paths])
            return
        for path in paths:
            click.echo(f"wrote {path}")
        click.echo("(dry run: no server contacted; without its plugin sync makes a list view)")
        return
    report = sync_jobs(_client(), settings)
    if _wants_json(ctx):
        _echo_json(dataclasses.asdict(report))
        return
    for change in report.changes:
        click.echo(f"{change.action:<9}  {change.kind:<4}  {change.name}")
    if report.fallback:
        click.echo(report.fallback)
    click.echo(report.chain)


@jenkins_group.command("init")
@click.argument(
    "folder", default=".", type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--force", is_flag=True, help="Replace a Jenkinsfile that differs from ours.")
def init_command(folder: Path, force: bool) -> None:
    """Write the Jenkinsfile into FOLDER, an ML repository, for "Pipeline script from SCM".

    Jenkins then checks the repository out and the pipeline trains that checkout: no
    REPO_URL to set, no parameters needed for the first build.
    """
    from tweakops.jenkins.jobs import ROOT

    ours = (ROOT / JENKINSFILE).read_text()
    target = folder / JENKINSFILE
    if target.exists() and target.read_text() != ours and not force:
        raise ConfigError(f"{target} exists and differs from ours: keep it, or pass --force")
    state = "unchanged" if target.exists() and target.read_text() == ours else "wrote"
    if state == "wrote":
        atomic_write(target, ours)
    click.echo(f"{state} {target}")
    click.echo(
        "next: commit and push it; in Jenkins, New Item > Pipeline > Definition: Pipeline "
        "script from SCM, Git, this repository's URL, Script Path: Jenkinsfile"
    )


@jenkins_group.command("trigger")
@click.argument("job")
@click.option("--param", "pairs", multiple=True, metavar="NAME=VALUE", help="Build parameter.")
@wait_option
@settings_option
@click.pass_context
def trigger_command(
    ctx: click.Context, job: str, pairs: tuple[str, ...], wait: bool, settings_path: Path | None
) -> None:
    """Start a build of JOB (its parameters' defaults, overridden by --param)."""
    from tweakops.jenkins.jobs import REQUIRED_PARAMS

    name, params = job_name(job, settings_path), parse_params(pairs)
    for key, value in params.items():
        if key in REQUIRED_PARAMS and not value.strip():
            raise ConfigError(
                f"--param {key}= is empty, and {key} {REQUIRED_PARAMS[key]}: give a value, "
                "or leave the parameter out for its default"
            )
    result = _client().trigger(name, params, wait_started=WAIT_SECONDS if wait else 0)
    click.echo(json.dumps(dataclasses.asdict(result)) if _wants_json(ctx) else _describe(result))


@jenkins_group.command("rerun")
@click.argument("job")
@click.option("--run", "run_id", help="The run to redo (default: the run of JOB's last build).")
@click.option("--email-again", is_flag=True, help="Email the result even if it did not change.")
@wait_option
@settings_option
@click.pass_context
def rerun_command(
    ctx: click.Context,
    job: str,
    run_id: str | None,
    email_again: bool,
    wait: bool,
    settings_path: Path | None,
) -> None:
    """Run JOB again by hand with the parameters of its last build, on the same run.

    The jobs after it follow. The email goes out again only if the result changed
    (--email-again: always); the command says which.
    """
    client, name = _client(), job_name(job, settings_path)
    params, description = client.last_build(name)
    run = run_id or params.get(RUN_PARAM) or _only_run(name, description)
    changes = {RUN_PARAM: run} if run else {}
    if email_again:
        changes[AGAIN_PARAM] = "true"
    result = client.rerun(name, WAIT_SECONDS if wait else 0, changes)
    if _wants_json(ctx):
        click.echo(json.dumps(dataclasses.asdict(result)))
        return
    click.echo(_describe(result))
    click.echo(_email_line(client, name, result, email_again))


RUN_PARAM, AGAIN_PARAM = "TWEAKOPS_RUN_ID", "TWEAKOPS_NOTIFY_AGAIN"


def _only_run(job: str, description: str) -> str | None:
    """The run a build's description names ("run <id>: ..."); an error when it names several."""
    runs = re.findall(r"^run (\S+):", description, flags=re.MULTILINE)
    if len(runs) > 1:
        raise ConfigError(
            f"the last build of {job} worked on runs {', '.join(runs)}: say which with --run ID"
        )
    return runs[0] if runs else None


def _email_line(client: JenkinsClient, job: str, result: TriggerResult, again: bool) -> str:
    """Whether this rerun will email its result again."""
    run = result.params.get(RUN_PARAM)
    if RUN_PARAM not in result.params:  # job1 (a new run) or the watchdog
        return "email: as for any run, when the run ends"
    if not again:
        return (
            f"email: only if the result of run {run} changes (it was emailed already); "
            "--email-again sends it anyway"
        )
    if job.endswith("job5-notify") or chain_kind_of(client) == "parameterized":
        return f"email: run {run} is emailed again when it reaches notify"
    return (
        "email: not again: this Jenkins passes no parameters down the chain (core triggers); "
        "rerun job5-notify --email-again after it"
    )


@jenkins_group.command("status")
@settings_option
@click.pass_context
def status_command(ctx: click.Context, settings_path: Path | None) -> None:
    """The last build of each job of the chain, upstream first, with its result and URL."""
    from tweakops.jenkins.jobs import chain, load_settings

    rendered = _render(load_settings(settings_path), pipeline_view=True)
    ordered = chain(rendered)
    builds = _client().last_builds([*ordered, *sorted(set(rendered.jobs) - set(ordered))])
    if _wants_json(ctx):
        _echo_json([dataclasses.asdict(b) for b in builds])
        return
    rows = [(b.job, f"#{b.number}" if b.number else "—", _result(b), b.url or "") for b in builds]
    click.echo(render_table(("JOB", "BUILD", "RESULT", "URL"), rows))


def _result(build: BuildInfo) -> str:
    if build.number is None:
        return "never built"
    return "building" if build.building else str(build.result)
