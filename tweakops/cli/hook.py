"""`tweakops hook`: install the post-receive hook; `received` is what that hook calls."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tweakops.jenkins.hooks import SETTINGS_FILE, handle_push, install_hook, load_settings
from tweakops.store import default_home


@click.group("hook")
def hook_group() -> None:
    """A git post-receive hook: each push triggers Jenkins, or runs the pipeline locally."""


@hook_group.command("install")
@click.argument("bare_repo", type=click.Path(path_type=Path))
@click.option("--jenkins-job", metavar="JOB", help="Jenkins job a push triggers (REF=<sha>).")
@click.option(
    "--jenkins-url",
    metavar="URL",
    help="Jenkins URL (default: JENKINS_URL of the git server). Never put credentials here.",
)
@click.option(
    "--home",
    "home_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run store for local runs and hook logs (default: tweakops --home, $TWEAKOPS_HOME, "
    "./.tweakops).",
)
@click.option(
    "--branch",
    "branches",
    multiple=True,
    metavar="B",
    help="Only these branches (repeatable; patterns like release/* allowed; default all).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Keep an existing post-receive hook as post-receive.pre-tweakops and run it first.",
)
@click.pass_context
def install_command(
    ctx: click.Context,
    bare_repo: Path,
    jenkins_job: str | None,
    jenkins_url: str | None,
    home_dir: Path | None,
    branches: tuple[str, ...],
    force: bool,
) -> None:
    """Write BARE_REPO/hooks/post-receive and its settings (tweakops-hook.json).

    With --jenkins-job (or JENKINS_URL in the git server's environment, job job1-pull) a push
    starts that Jenkins job with REF=<pushed sha>; the user and API token are read when the
    hook runs (JENKINS_USER / JENKINS_API_TOKEN or ~/.config/tweakops/jenkins.yaml), never
    stored. Without Jenkins a push starts `tweakops run` in the background; its log goes to
    HOME/hook-logs.
    """
    obj = ctx.obj or {}
    home = home_dir or (Path(obj["home"]) if obj.get("home") else default_home())
    hook = install_hook(bare_repo, jenkins_job, jenkins_url, home, branches, force=force)
    settings = load_settings(hook.parent.parent)
    if obj.get("json"):
        click.echo(json.dumps({"hook": str(hook), **settings.to_dict()}, indent=2))
        return
    if settings.jenkins_job:
        where = settings.jenkins_url or "$JENKINS_URL"
        action = f"triggers Jenkins job {settings.jenkins_job} at {where} with REF=<sha>"
    else:
        action = (
            "runs the pipeline locally in the background "
            f"(or triggers job1-pull when JENKINS_URL is set); runs in {settings.home}"
        )
    branches_text = ", ".join(settings.branches) or "any branch"
    click.echo(f"installed {hook}: a push to {branches_text} {action}")
    click.echo(f"settings: {hook.parent.parent / SETTINGS_FILE}")


@hook_group.command("received")
@click.option(
    "--bare",
    "bare_repo",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bare repository that was pushed to.",
)
@click.option("--ref", "branch", required=True, help="The pushed branch (refs/heads/ optional).")
@click.option("--sha", required=True, help="The pushed commit (the hook's newrev).")
def received_command(bare_repo: Path, branch: str, sha: str) -> None:
    """Internal, called by the hook for each pushed branch (also works by hand).

    Triggers the Jenkins job or starts the local pipeline, prints one line for the pusher,
    and exits 0 even when that fails: the push has already happened.
    """
    click.echo(handle_push(bare_repo, branch, sha))
