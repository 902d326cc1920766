"""TrialPlan.trials_at_once: the flag, tuning.parallel, else what the machine holds."""

from __future__ import annotations

import pytest

from tweakops.config import parse_config
from tweakops.plan import TrialPlan
from tweakops.runtime._base import Capacity
from tweakops.runtime.local_backend import LocalRuntime

GIB = 1024**3


class Machine(LocalRuntime):
    """The local runtime on a machine of `cpus` CPUs and 24 GiB."""

    def __init__(self, cpus: int) -> None:
        super().__init__()
        self.cpus = cpus

    def capacity(self) -> Capacity:
        return Capacity(self.cpus, 24 * GIB)


def plan(cpus: int, warm: bool, **raw: object) -> TrialPlan:
    config = parse_config({"entrypoint": "train.py", **raw})
    return TrialPlan(config, "train.py", None, Machine(cpus), warm=warm)


@pytest.mark.parametrize(
    ("cpus", "warm", "expected"),
    [
        (2, True, (1, " (tuning.parallel: auto; 2 CPUs, one left to the warm spares)")),
        (4, True, (3, " (tuning.parallel: auto; 4 CPUs, one left to the warm spares)")),
        (2, False, (2, " (tuning.parallel: auto)")),  # no spares: a trial per CPU
        (1, True, (1, " (tuning.parallel: auto)")),  # one CPU: nothing to leave
    ],
)
def test_auto_leaves_a_cpu_to_the_warm_spares(
    cpus: int, warm: bool, expected: tuple[int, str]
) -> None:
    assert plan(cpus, warm).trials_at_once() == expected


def test_a_flag_or_the_file_wins_and_a_ladder_climbs_alone() -> None:
    assert plan(8, True).trials_at_once(3) == (3, "")
    assert plan(8, True, tuning={"parallel": 2}).trials_at_once() == (2, "")
    assert plan(8, True, tuning={"parallel": 2}).trials_at_once(4) == (4, "")
    ladder = {"strategy": "escalate", "ladder": [{"epochs": 1}]}
    assert plan(8, True, tuning=ladder).trials_at_once(4) == (1, "")
