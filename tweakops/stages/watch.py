"""Stage 6: the watchdog sweep: a trial whose process died comes back from its last checkpoint."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monitor import find_stale, read_heartbeat
from tweakops.context import RunContext
from tweakops.plan import make_plan
from tweakops.records import TrialRecord
from tweakops.runtime import Handle, Runtime
from tweakops.trials import resume_trial, trial_folder

GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Watched:
    checked: int
    resumed: tuple[int, ...]
    restarts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        again = f", resumed trial(s) {', '.join(map(str, self.resumed))}" if self.resumed else ""
        return (
            f"{self.checked} trial(s) checked, {len(self.resumed)} lost{again}; "
            f"{self.restarts} restart(s) in this run"
        )


def watch(ctx: RunContext, grace: float = GRACE_SECONDS) -> Watched:
    """Resume every trial recorded as running whose process is gone and heartbeat stale."""
    trials = ctx.store.trials(ctx.run.id)
    resumed: list[int] = []
    if any(t.status == "running" for t in trials):
        plan = make_plan(ctx)
        for trial in find_stale(
            trials,
            _alive_check(plan.runtime),
            time.time(),
            lambda t: read_heartbeat(_output_of(ctx, t)),
            grace,
        ):
            resume_trial(ctx, plan, trial, plan.config.time_budget)
            resumed.append(trial.number)
    restarts = sum(
        len(ctx.store.events(ctx.run.id, kind)) for kind in ("trial_restarted", "trial_resumed")
    )
    return Watched(checked=len(trials), resumed=tuple(resumed), restarts=restarts)


def _alive_check(runtime: Runtime) -> Any:
    def is_alive(handle: str) -> bool:
        parsed = Handle.parse(handle)
        return parsed.runtime == runtime.name and runtime.status(parsed) == "running"

    return is_alive


def _output_of(ctx: RunContext, trial: TrialRecord) -> Path:
    return Path(trial.folder or trial_folder(ctx, trial.number)) / "output"
