"""The environment trials run in, made from the repository's own requirements, and checked.

docker: the framework image, or an image derived from it with the requirements it lacks
(tweakops/images/derived.py). local: this Python, or a cached venv layered over it
(_venv.py); with `dependencies: host`, nothing is installed and the check alone runs.
Before any training, every import the entrypoint needs is looked up in that environment
(check_imports): a missing one fails inspect with file:line and where to declare it.
"""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import replace
from pathlib import Path

import training
from tweakops.analysis.requirements import Declarations
from tweakops.environment._check import check_imports
from tweakops.environment._model import Environment
from tweakops.environment._plan import InstallPlan, plan_install
from tweakops.environment._probe import distributions
from tweakops.environment._venv import ensure_venv
from tweakops.errors import RuntimeUnavailable, TweakopsError
from tweakops.report.console import Console
from tweakops.runtime import Runtime, docker_waiting, get_runtime, local_forbidden

IMAGE_LAUNCHER = "/opt/tweakops/training/autorun.py"  # where the images keep the harness
LOCAL_LAUNCHER = str(Path(training.__file__).resolve().parent / "autorun.py")

__all__ = ["Environment", "check_imports", "prepare_environment"]


def prepare_environment(
    choice: str,
    image: str | None,
    declared: Declarations,
    mode: str,
    folder: Path,
    console: Console,
    engine_wait: float = 0.0,
) -> tuple[Runtime, Environment]:
    """The runtime `choice` and the environment on it, made if missing.

    `auto` takes docker when an engine answers and the image can be had, else the local
    runtime, saying so with what it means (unless TWEAKOPS_LOCAL_RUNTIME=forbid). `docker`
    waits up to `engine_wait` s for an engine that does not answer (EngineAway after that).
    """
    try:
        runtime = docker_waiting(engine_wait) if choice == "docker" else get_runtime(choice)
    except RuntimeUnavailable as exc:
        if choice != "auto":
            raise
        runtime, reason = get_runtime("local"), str(exc)  # forbidden: get_runtime raised
    else:
        if runtime.name != "docker" or image is None:
            return runtime, _local(declared, mode, console)
        try:
            return runtime, _docker(runtime, image, declared, mode, folder, console)
        except TweakopsError as exc:
            if choice != "auto" or local_forbidden():
                raise
            runtime, reason = get_runtime("local"), str(exc)
    console.warn(
        f"trials run on the LOCAL runtime, outside any sandbox ({reason}): the pushed code runs "
        "as this user, with this machine's files and network; set TWEAKOPS_LOCAL_RUNTIME=forbid "
        "to refuse that"
    )
    return runtime, _local(declared, mode, console)


def _docker(
    runtime: Runtime, chosen: str, declared: Declarations, mode: str, folder: Path, console: Console
) -> Environment:
    from tweakops.images.build import cache_dir, container_image, is_ours
    from tweakops.images.derived import ensure_derived

    base = container_image(chosen, console)
    ours = is_ours(base)
    bare = Environment("docker", "python", base, base, IMAGE_LAUNCHER if ours else "", mode=mode)
    if not declared.requirements:
        return bare
    cache = cache_dir(None) / "dists" / f"{base.replace('/', '_').replace(':', '-')}.json"
    have, purelib = distributions(runtime, "python", base, folder, cache if ours else None)
    as_is, install = _with_plan(bare, declared, have, ours)
    if not install:
        return as_is
    made = ensure_derived(base, install, have, purelib, console)
    return replace(as_is, image=made.tag, installed=made.added, key=made.tag, built=made.built)


def _local(declared: Declarations, mode: str, console: Console) -> Environment:
    from tweakops.images.build import cache_dir

    base = f"this Python ({sys.executable})"
    bare = Environment("local", "python", base, None, LOCAL_LAUNCHER, mode=mode)
    if not declared.requirements:
        return bare
    have = {
        str(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }
    as_is, install = _with_plan(bare, declared, have, True)
    if not install:
        return as_is
    python, built = ensure_venv(cache_dir(None), install, have, console.say)
    venv = str(python.parents[1])
    return replace(as_is, python=str(python), installed=tuple(install), key=venv, built=built)


def _with_plan(
    bare: Environment, declared: Declarations, have: dict[str, str], ours: bool
) -> tuple[Environment, list[str]]:
    """The base environment with what it provides and the notes, and what is left to install
    (nothing under `dependencies: host`, or in an image of the user's own)."""
    plan = plan_install(declared.requirements, have)
    skipped = _not_installed(plan, bare.mode, ours)
    as_is = replace(bare, provided=plan.provided, notes=(*plan.notes, *skipped))
    return as_is, [] if skipped else [d.spec for d in plan.install]


def _not_installed(plan: InstallPlan, mode: str, ours: bool) -> tuple[str, ...]:
    """Notes for requirements left out: `dependencies: host`, or an image of the user's own."""
    if not plan.install or (mode == "install" and ours):
        return ()
    why = "dependencies: host" if mode == "host" else "the image is your own (`image:`)"
    names = ", ".join(d.spec for d in plan.install)
    return (f"not installed ({why}): {names}",)
