"""The stages' results as the store keeps them, and the one place that reads them back typed.

A stage returns one of these frozen dataclasses; the store keeps its `to_dict()` (plus the
stage's one-line summary) as JSON. `stage_result` and `read_result` turn that JSON back into
the same dataclass, so that every reader (plan, the report, status, JUnit) works on fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar, overload

from tweakops.analysis.record import Inspected
from tweakops.errors import StoreError
from tweakops.pull.git import PullResult
from tweakops.records import StageRecord
from tweakops.store import RunStore
from tweakops.vocabulary import StageStatus


@dataclass(frozen=True)
class Pulled:
    """Stage 1: the commit pulled and the run's copy of the project."""

    repo: PullResult

    def to_dict(self) -> dict[str, Any]:
        return self.repo.to_dict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pulled:
        return cls(PullResult.from_dict(data))

    def summary(self) -> str:
        where = f" on {self.repo.branch}" if self.repo.branch else ""
        return (
            f"{self.repo.sha[:10]}{where}, {len(self.repo.changed_files)} changed "
            f"file(s) from {self.repo.source}"
        )


@dataclass(frozen=True)
class Trained:
    """Stage 3: trial 0, the user's own defaults, against the threshold."""

    trial: int
    accuracy: float
    threshold: float
    reached: bool
    runtime: str
    image: str | None
    entrypoint: str
    seconds: float
    restarts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trained:
        return cls(**_known(cls, data))

    def summary(self) -> str:
        mark = "≥" if self.reached else "<"
        return (
            f"trial 0 (defaults) accuracy {self.accuracy:.4f} {mark} {self.threshold} "
            f"in {self.seconds:.1f} s on the {self.runtime} runtime"
            + (f" in {self.image}" if self.runtime == "docker" else "")
        )


@dataclass(frozen=True)
class Tuned:
    """Stage 4: what tuning came to, the rule that stopped it and the best trial."""

    reached: bool
    rule: str
    verdict: str
    threshold: float
    best_trial: int | None
    best_accuracy: float | None
    best_params: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    model_dir: str | None = None
    outcome: str = ""  # reached | budget spent | stalled
    strategy: str = "optuna"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tuned:
        return cls(**_known(cls, data))

    def summary(self) -> str:
        return self.verdict


@dataclass(frozen=True)
class Notified:
    """Stage 5: whether the result was emailed, kept in the outbox, or not sent and why."""

    sent: bool
    skipped: bool
    reason: str
    recipients: tuple[str, ...] = ()
    message_id: str | None = None
    outbox_path: str | None = None
    report_path: str | None = None  # the run's report.html, written before the email

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notified:
        values = _known(cls, data)
        values["recipients"] = tuple(values.get("recipients") or ())
        return cls(**values)

    def summary(self) -> str:
        return self.reason


Result = Pulled | Inspected | Trained | Tuned | Notified
_TYPES: dict[str, Any] = {
    "pull": Pulled,
    "inspect": Inspected,
    "train": Trained,
    "tune": Tuned,
    "notify": Notified,
}
T = TypeVar("T")


def _known(cls: type[T], data: dict[str, Any]) -> dict[str, Any]:
    """The items of `data` that are fields of `cls` (the stored summary and the like dropped)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return {key: value for key, value in data.items() if key in names}


@overload
def read_result(record: StageRecord, kind: type[T]) -> T | None: ...
@overload
def read_result(record: StageRecord) -> Result | None: ...
def read_result(record: StageRecord, kind: type[Any] | None = None) -> Any:
    """The stage's stored result as its dataclass, whatever the stage's status now (a stage
    that runs again keeps its last result until it succeeds); None when there is none or it
    is not whole (a record from before a field existed)."""
    cls = kind or _TYPES.get(record.name)
    if cls is None or not record.result:
        return None
    try:
        return cls.from_dict(record.result)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@overload
def stage_result(store: RunStore, run_id: str, stage: Literal["pull"]) -> Pulled: ...
@overload
def stage_result(store: RunStore, run_id: str, stage: Literal["inspect"]) -> Inspected: ...
@overload
def stage_result(store: RunStore, run_id: str, stage: Literal["train"]) -> Trained: ...
@overload
def stage_result(store: RunStore, run_id: str, stage: Literal["tune"]) -> Tuned: ...
@overload
def stage_result(store: RunStore, run_id: str, stage: Literal["notify"]) -> Notified: ...
def stage_result(store: RunStore, run_id: str, stage: str) -> Result:
    """The result of a stage that succeeded; a StoreError that says what to run otherwise."""
    record = require_succeeded(store, run_id, stage)
    result: Result = _TYPES[stage].from_dict(record.result)
    return result


def require_succeeded(store: RunStore, run_id: str, stage: str) -> StageRecord:
    """The stage's record; a StoreError that says what to run when it has not succeeded."""
    record = store.get_stage(run_id, stage)
    if record.status != StageStatus.SUCCEEDED:
        raise StoreError(
            f"run {run_id}: stage {stage!r} has not succeeded (it is {record.status}); "
            f"run `tweakops {stage} --run {run_id}` first"
        )
    return record
