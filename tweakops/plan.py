"""Where and how a run's trials execute: the runtime, the image, the entrypoint, the limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor import RestartPolicy
from tweakops.config import Config
from tweakops.context import RunContext
from tweakops.errors import TweakopsError
from tweakops.runtime import LocalRuntime, Runtime, get_runtime

# Frameworks whose import is slow enough that the local runtime imports them ahead of time.
WARM_MODULES: dict[str, tuple[str, ...]] = {"keras": ("keras",)}


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a run shares: how to start the entrypoint, and where."""

    config: Config
    entrypoint: str
    image: str | None
    runtime: Runtime
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    def describe(self) -> str:
        where = f" in {self.image}" if self.runtime.name == "docker" else ""
        return f"the {self.runtime.name} runtime{where}"


def make_plan(ctx: RunContext) -> TrialPlan:
    """The config, entrypoint, image and runtime that the inspect stage and the flags chose.

    `--runtime auto` takes docker when an engine answers and the image exists or can be
    built, and says why when it falls back to the local runtime.
    """
    inspected = ctx.result_of("inspect")
    config = ctx.config()
    image: str | None = inspected.get("image")
    runtime = get_runtime(ctx.runtime)
    if runtime.name == "docker" and image is not None:
        try:
            image = container_image(image, ctx)
        except TweakopsError as exc:
            if ctx.runtime != "auto":
                raise
            ctx.console.warn(f"using the local runtime: {exc}")
            runtime = get_runtime("local")
    if isinstance(runtime, LocalRuntime) and inspected.get("framework") in WARM_MODULES:
        runtime.prewarm(WARM_MODULES[inspected["framework"]])
    return TrialPlan(
        config=config,
        entrypoint=inspected["entrypoint"],
        image=image,
        runtime=runtime,
        policy=config.watchdog,
    )


def container_image(chosen: str, ctx: RunContext) -> str:
    """The local image to run: our framework images by content tag (built when missing)."""
    from tweakops.runtime.images import ImageError, resolve_image

    if chosen.startswith("dockerfile:"):
        raise ImageError(
            f"the repository brings its own {chosen.split(':', 1)[1]}, which tweakops does not "
            "build yet: build it yourself and name the image with `image:` in tweakops.yaml"
        )
    return resolve_image(chosen, build=True, console=ctx.console)
