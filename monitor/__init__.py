"""The watchdog: classify failures, restart infrastructure failures (bounded), find stale trials."""

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
)
from monitor._stale import HEARTBEAT_FILE, find_stale, read_heartbeat
from monitor._supervise import Attempt, Supervised, supervise

__all__ = [
    "CODE_ERROR",
    "CONTAINER_KILL_CODES",
    "HEARTBEAT_FILE",
    "INFRASTRUCTURE",
    "OK",
    "OOM",
    "RESTARTS_EXHAUSTED",
    "TIMEOUT",
    "Attempt",
    "RestartPolicy",
    "Supervised",
    "classify",
    "find_stale",
    "read_heartbeat",
    "supervise",
]
