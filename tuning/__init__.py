"""tuning/ decides: search spaces, the Optuna loop, stop rules. It never runs a trial itself."""

from tuning.prior import grown, is_size
from tuning.settings import Pruning, TuningSettings, auto_parallel
from tuning.space import ParamSpec, SpaceError, parse_space
from tuning.stop import Observation, StopRules, Verdict, best_of, judge
from tuning.tuner import Evaluate, TrialControl, TuneOutcome, open_study, run_ladder, run_study

__all__ = [
    "Evaluate",
    "Observation",
    "ParamSpec",
    "Pruning",
    "SpaceError",
    "StopRules",
    "TrialControl",
    "TuneOutcome",
    "TuningSettings",
    "Verdict",
    "auto_parallel",
    "best_of",
    "grown",
    "is_size",
    "judge",
    "open_study",
    "parse_space",
    "run_ladder",
    "run_study",
]
