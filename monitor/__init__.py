"""The watchdog: classify failures, restart them from checkpoints (bounded), one per run.

monitor.sweep resumes interrupted runs (`tweakops watch`, `watch --all`) and monitor.resume
decides how a trial that lost its process goes on; they are imported from there.
"""

from monitor._classify import (
    CODE_ERROR,
    CONTAINER_KILL_CODES,
    INFRASTRUCTURE,
    OK,
    OOM,
    RESTARTS_EXHAUSTED,
    TIMEOUT,
    RestartPolicy,
    classify,
    restartable,
)
from monitor._supervise import Attempt, Probe, Supervised, supervise
from tweakops.store.lease import LEASE_SECONDS, LeaseHeld, holder_gone, owner_id, run_lease

__all__ = [
    "CODE_ERROR",
    "CONTAINER_KILL_CODES",
    "INFRASTRUCTURE",
    "LEASE_SECONDS",
    "OK",
    "OOM",
    "RESTARTS_EXHAUSTED",
    "TIMEOUT",
    "Attempt",
    "LeaseHeld",
    "Probe",
    "RestartPolicy",
    "Supervised",
    "classify",
    "holder_gone",
    "owner_id",
    "restartable",
    "run_lease",
    "supervise",
]
