"""Stage 2: read the code, pick the image and the entrypoint, make the trials' environment,
check every import against it, and find the knobs to tune.

Everything found is recorded with where it came from: the rule and evidence of the image and
the entrypoint, the requirements and what was installed, each knob's file:line and range.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tweakops.analysis.code_units import read_units
from tweakops.analysis.imports import Traced, trace_imports
from tweakops.analysis.inspection import InspectResult, inspect_tree
from tweakops.analysis.record import CHECKPOINT_WORDS, Inspected
from tweakops.analysis.requirements import declared_requirements
from tweakops.config import Config
from tweakops.context import RunContext
from tweakops.environment import Environment
from tweakops.knobs import Knob, infer_knobs, space_yaml
from tweakops.plan import environment_for

HELPER_CALLBACKS = frozenset({"keras_callbacks", "BackupAndRestore"})


def inspect(ctx: RunContext) -> Inspected:
    config = ctx.config()
    source = ctx.source_dir
    found = inspect_tree(source, config.image, config.entrypoint, config.metric)
    say = ctx.console.say
    for item in found.evidence[:8]:
        say(f"    evidence: {item}")
    say(f"    entrypoint: {found.entrypoint} ({found.entrypoint_rule})")
    traced = trace_imports(source, found.entrypoint)
    declared = declared_requirements(source)
    _, env = environment_for(ctx, found, traced, declared, config)
    knobs = infer_knobs(source, traced.files) if config.autotune else ()
    inspected = Inspected(
        found,
        env,
        knobs,
        space=_space_source(config, knobs),
        checkpoints=_checkpoints(source, found, traced, config, env),
        files=traced.files,
        requirements=tuple(f"{d.spec} ({d.where})" for d in declared.requirements),
        requirement_notes=(*declared.notes, *env.notes),
        tuned=_tuned(config, knobs),
    )
    _tell(ctx, inspected)
    return inspected


def _space_source(config: Config, knobs: tuple[Knob, ...]) -> str:
    if config.search_space:
        return "tweakops.yaml"
    if not config.autotune:
        return "off"
    return "inferred" if knobs else "none"


def _tuned(config: Config, knobs: tuple[Knob, ...]) -> tuple[str, ...]:
    """The knobs tuning writes into the code: all of an inferred space, or the declared ones."""
    if config.search_space:
        declared = {spec.name for spec in config.search_space}
        return tuple(k.name for k in knobs if k.name in declared)
    return tuple(k.name for k in knobs)


def _checkpoints(
    source: Path, found: InspectResult, traced: Traced, config: Config, env: Environment
) -> str:
    """Whether Keras fit() calls get checkpoints injected, and if not, why."""
    if found.framework != "keras":
        return ""
    if not config.autocheckpoint:
        return "off"
    if _uses_helpers(source, traced.files):
        return "helpers"
    return "injected" if env.launcher else "unavailable"


def _uses_helpers(source: Path, files: tuple[str, ...]) -> bool:
    """The code checkpoints itself: training.keras_callbacks() or a BackupAndRestore."""
    for rel in files:
        for unit in read_units(source, rel):
            tree = unit.parse()
            for node in ast.walk(tree) if tree else ():
                name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
                if name in HELPER_CALLBACKS:
                    return True
    return False


def _tell(ctx: RunContext, inspected: Inspected) -> None:
    """What a person wants to see in the log: environment, checkpoints, knobs and space."""
    say, env = ctx.console.say, inspected.environment
    if env is not None:
        made = "built" if env.built else "reused" if env.key else "as it is"
        say(f"    environment: {env.describe()} ({made})")
    for note in inspected.requirement_notes:
        say(f"    note: {note}")
    if inspected.checkpoints:
        say(f"    checkpoints: {CHECKPOINT_WORDS[inspected.checkpoints]}")
    if inspected.space == "tweakops.yaml":
        say("    search space: from tweakops.yaml")
    elif inspected.space == "inferred":
        say(
            f"    search space inferred from the code ({len(inspected.knobs)} knobs); "
            "paste it into tweakops.yaml to change it:"
        )
        for line in space_yaml(inspected.knobs).splitlines():
            say(f"      {line}")
    elif inspected.space == "none":
        say("    search space: none declared and no tunable literal found")
