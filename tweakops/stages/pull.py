"""Stage 1: pull the repository and keep the run's copy of the project at that commit."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from tweakops.context import RunContext
from tweakops.errors import RepoError
from tweakops.pull.git import PullResult, export_tree
from tweakops.pull.git import pull as git_pull
from tweakops.redact import MASK
from tweakops.results import Pulled


def pull(ctx: RunContext) -> Pulled:
    source = ctx.source or ctx.run.source
    if MASK in source:
        raise RepoError(
            f"{source} needs the password it had when the run started, and passwords are "
            "never stored: start a new run with it (`tweakops run URL`), or keep the "
            "credentials in a git credential helper and give the URL without them"
        )
    result = git_pull(source, ctx.store.home / "repos", ref=ctx.run.overrides.get("ref"))
    for warning in result.warnings:
        ctx.console.warn(warning)
    result = _with_branch(ctx, result, ctx.run.overrides.get("branch"))
    ctx.store.drop_config(ctx.run.id)  # the copy changes: the next stage resolves it again
    if ctx.source_dir.exists():
        shutil.rmtree(ctx.source_dir)
    export_tree(Path(result.clone_dir), result.sha, result.subdir, ctx.source_dir)
    ctx.store.update_run(ctx.run.id, sha=result.sha)
    return Pulled(result)


def _with_branch(ctx: RunContext, result: PullResult, pushed_to: str | None) -> PullResult:
    """A pushed commit (--ref SHA) is on no branch by itself: the hook says which (--branch)."""
    if not pushed_to or result.branch == pushed_to:
        return result
    if result.branch is not None:
        ctx.console.warn(f"--branch {pushed_to} ignored: {result.ref} is branch {result.branch}")
        return result
    return replace(result, branch=pushed_to)
