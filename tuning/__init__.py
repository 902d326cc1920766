"""tuning/ decides: search spaces, the Optuna loop, stop rules. It never runs a trial itself."""

from tuning.space import ParamSpec, SpaceError, parse_space
from tuning.stop import Observation, StopRules, Verdict, best_of, judge
from tuning.tuner import Evaluate, TuneOutcome, open_study, run_study

__all__ = [
    "Evaluate",
    "Observation",
    "ParamSpec",
    "SpaceError",
    "StopRules",
    "TuneOutcome",
    "Verdict",
    "best_of",
    "judge",
    "open_study",
    "parse_space",
    "run_study",
]
