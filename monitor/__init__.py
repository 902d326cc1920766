"""The watchdog: classify failures, restart them from checkpoints (bounded), one per run."""

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
from monitor._lease import LEASE_SECONDS, LeaseHeld, holder_gone, owner_id, run_lease
from monitor._supervise import Attempt, Probe, Supervised, supervise

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
