"""Where and how a run's trials execute: the runtime, the environment, the command, the knobs."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from monitor import RestartPolicy
from tuning import auto_parallel
from tuning.space import ParamSpec
from tweakops.analysis.imports import Traced, trace_imports
from tweakops.analysis.inspection import InspectResult
from tweakops.analysis.requirements import Declarations, declared_requirements
from tweakops.config import Config, memory_bytes
from tweakops.context import RunContext
from tweakops.environment import Environment, check_imports, prepare_environment
from tweakops.errors import ConfigError, InspectError
from tweakops.knobs import Knob, knob_space
from tweakops.results import stage_result
from tweakops.runtime import Runtime

# Frameworks whose import is slow enough that the runtime imports them ahead of time: in a
# spare interpreter (local) or a spare container (docker) while the previous trial trains.
WARM_MODULES: dict[str, tuple[str, ...]] = {"keras": ("keras",)}


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a run shares: how to start the entrypoint, and where."""

    config: Config
    entrypoint: str
    image: str | None
    runtime: Runtime
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    python: str = "python"
    launcher: str = ""  # training/autorun.py where the trial runs
    knobs: tuple[Knob, ...] = ()  # written into each trial's copy of the code
    inject_checkpoints: bool = False
    warm: bool = False  # the runtime keeps warm spares for these trials (prewarm)

    def trials_at_once(self, flag: int | None = None) -> tuple[int, str]:
        """How many trials tune runs at once, and why when it was not asked: --parallel, else
        tuning.parallel, else `auto` (what the runtime's CPUs and memory hold for the trials'
        limits, less a CPU for the warm spares); a ladder climbs one rung at a time."""
        settings = self.config.tuning
        if settings.strategy == "escalate":
            return 1, ""
        if flag or settings.parallel:
            return int(flag or settings.parallel or 1), ""
        room, limits = self.runtime.capacity(), self.config.resources
        memory = memory_bytes(limits.memory) if limits.memory else None
        spare = 1 if self.warm and room.cpus > 1 else 0
        at_once = auto_parallel(room.cpus, room.memory, limits.cpus, memory, spare_cpus=spare)
        left = f"; {room.cpus} CPUs, one left to the warm spares" if spare else ""
        return at_once, f" (tuning.parallel: auto{left})"

    def describe(self) -> str:
        where = f" in {self.image}" if self.runtime.name == "docker" else ""
        venv = f" with {self.python}" if self.python != "python" else ""
        return f"the {self.runtime.name} runtime{where}{venv}"

    def command(self) -> tuple[str, ...]:
        """The trial's argv: `python model.py`, or through the launcher for a notebook or for
        injected checkpoints; an entrypoint that is not a file path is an argv of its own."""
        entry = self.entrypoint
        if not entry.endswith((".py", ".ipynb")) or " " in entry:
            return tuple(shlex.split(entry))
        wrap = self.launcher and (entry.endswith(".ipynb") or self.inject_checkpoints)
        if not wrap:
            return (self.python, entry)
        flags = ("--keras-checkpoints",) if self.inject_checkpoints else ()
        return (self.python, self.launcher, *flags, entry)

    def space(self) -> tuple[ParamSpec, ...]:
        """The search space: tweakops.yaml's, else the knobs inspect inferred."""
        return self.config.search_space or knob_space(self.knobs)


def make_plan(ctx: RunContext) -> TrialPlan:
    """The config, entrypoint, environment and runtime that inspect and the flags chose.

    The environment is made again where it is missing (another Jenkins agent, a cleaned
    cache): its tags and folders are content hashes, so it is the same one. When it differs
    from inspect's (the runtime changed), the imports are checked again.
    """
    inspected = stage_result(ctx.store, ctx.run.id, "inspect")
    config = ctx.config()
    found, source = inspected.found, ctx.source_dir
    traced = trace_imports(source, found.entrypoint)
    declared = declared_requirements(source)
    runtime, env = environment_for(ctx, found, traced, declared, config, inspected.environment)
    warm = found.framework in WARM_MODULES and bool(env.launcher)  # the harness is there
    if warm:
        runtime.prewarm(WARM_MODULES[found.framework], env.python)
    return TrialPlan(
        config=config,
        entrypoint=found.entrypoint,
        image=env.image,
        runtime=runtime,
        policy=config.watchdog,
        python=env.python,
        launcher=env.launcher,
        knobs=inspected.knobs,
        inject_checkpoints=inspected.inject_checkpoints,
        warm=warm,
    )


def run_runtime(run_id: str, recorded: str | None, asked: str) -> str:
    """The runtime a stage of the run uses: the one recorded when the run chose it (a run never
    moves), else the one asked for; asking for another one is refused."""
    if recorded is None:
        return asked
    if asked not in ("auto", recorded):
        raise ConfigError(
            f"run {run_id} trains on the {recorded} runtime (chosen when it was inspected) and a "
            f"run never moves: drop --runtime {asked} (or TWEAKOPS_RUNTIME), or start a new run"
        )
    return recorded


def environment_for(
    ctx: RunContext,
    found: InspectResult,
    traced: Traced,
    declared: Declarations,
    config: Config,
    checked: Environment | None = None,
) -> tuple[Runtime, Environment]:
    """Make (or reuse) the trials' environment on this run's runtime, and check the imports
    against it unless `checked` is that same environment (checked by an earlier stage)."""
    folder = ctx.folder / "environment" / "probe"
    recorded = ctx.store.get_run(ctx.run.id).runtime
    choice = run_runtime(ctx.run.id, recorded, ctx.runtime)
    wait = config.watchdog.engine_wait if recorded == "docker" else 0.0
    runtime, env = prepare_environment(
        choice, found.image, declared, config.dependencies, folder, ctx.console, wait
    )
    if recorded is None:
        ctx.store.update_run(ctx.run.id, runtime=env.runtime)
        ctx.event("runtime_chosen", f"trials run on the {env.runtime} runtime", runtime=env.runtime)
    if found.entrypoint.endswith(".ipynb") and not env.launcher:
        raise InspectError(
            f"{found.entrypoint} is a notebook, and {env.image} has no tweakops harness to run "
            "one: use a tweakops image (remove `image:`), or convert it to a script"
        )
    same = checked is not None and (checked.runtime, checked.key, checked.image) == (
        env.runtime,
        env.key,
        env.image,
    )
    if not same:
        check_imports(runtime, env, traced, declared, folder)
    return runtime, env
