"""Failure classes (keras-tuner#704) and the bounded restart policy (keras-tuner#439)."""

from __future__ import annotations

from dataclasses import dataclass

from tweakops.errors import ConfigError, quoted
from tweakops.runtime import ExitStatus
from tweakops.vocabulary import TrialVerdict

# The failure classes, kept under their old names (the words are TrialVerdict's).
OK = TrialVerdict.OK
CODE_ERROR = TrialVerdict.CODE_ERROR  # the user's code failed: recorded, never retried
OOM = TrialVerdict.OOM  # the model is too large for its limits: skipped, not retried
TIMEOUT = TrialVerdict.TIMEOUT  # the trial's wall-clock budget ran out
INFRASTRUCTURE = TrialVerdict.INFRASTRUCTURE  # killed, engine gone, vanished: restarted, bounded
RESTARTS_EXHAUSTED = TrialVerdict.RESTARTS_EXHAUSTED  # beyond the restart limit

CONTAINER_KILL_CODES: frozenset[int] = frozenset({137, 143})  # 128 + SIGKILL / SIGTERM


def restartable(verdict: str, progressed: bool) -> bool:
    """Whether an attempt that ended with `verdict` is started again from its checkpoint.

    Infrastructure failures always are. A non-zero exit or an OOM-kill is restarted only
    when the attempt finished at least one epoch first: a crash before any progress would
    crash again the same way (a code error, a model too big for its limits), so it stops.
    """
    if verdict == INFRASTRUCTURE:
        return True
    return progressed and verdict in (CODE_ERROR, OOM)


def classify(status: ExitStatus) -> TrialVerdict:
    """ok, oom, timeout, infrastructure or code_error for one ended attempt."""
    if status.oom_killed:
        return OOM
    if status.timed_out:
        return TIMEOUT
    if status.missing or status.signal is not None:
        return INFRASTRUCTURE
    if status.code == 0:
        return OK
    if status.code is None or status.code in CONTAINER_KILL_CODES:
        return INFRASTRUCTURE
    return CODE_ERROR


@dataclass(frozen=True)
class RestartPolicy:
    """How often and how slowly an infrastructure failure is restarted."""

    max_restarts: int = 3
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 10.0
    engine_wait: float = 120.0  # seconds to wait for a stopped Docker engine to come back

    def __post_init__(self) -> None:
        """Reject values that would loop forever or run backwards."""
        checks = (
            ("max_restarts", self.max_restarts, self.max_restarts >= 0, "0 or more"),
            ("backoff_initial", self.backoff_initial, self.backoff_initial >= 0, "0 or more"),
            ("backoff_factor", self.backoff_factor, self.backoff_factor >= 1, "1 or more"),
            ("backoff_max", self.backoff_max, self.backoff_max >= 0, "0 or more"),
            ("engine_wait", self.engine_wait, self.engine_wait >= 0, "0 or more"),
        )
        for name, value, valid, allowed in checks:
            if not valid:
                raise ConfigError(
                    f"restart policy {name} must be {allowed} but got {quoted(value)}"
                )

    def delay(self, restart: int) -> float:
        """Seconds to wait before restart number `restart` (1 = the first restart), capped."""
        if restart < 1:
            raise ValueError(f"restart numbers start at 1 but got {restart}")
        return min(self.backoff_max, self.backoff_initial * self.backoff_factor ** (restart - 1))
