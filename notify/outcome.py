"""What the report of one finished run is made of: the input of every rendering."""

from __future__ import annotations

from dataclasses import dataclass

from tweakops.records import RunRecord, TrialRecord


@dataclass(frozen=True)
class RunOutcome:
    """Everything the report says about one finished run."""

    run: RunRecord
    trials: tuple[TrialRecord, ...]
    repo: str
    commit: str | None
    branch: str | None
    metric: str
    threshold: float
    reached: bool
    verdict: str
    best: TrialRecord | None
    model_path: str | None = None
    build_url: str | None = None
    log_tail: str = ""
    report_path: str | None = None  # the run's report.html, when it was written
    settings: str = ""  # "threshold 0.5 from tweakops.yaml; ..." (where each value came from)
