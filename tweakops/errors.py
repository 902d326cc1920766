"""The one exception hierarchy users meet: every message says what was wrong and what to do."""

from __future__ import annotations


class TweakopsError(Exception):
    """Base of every error the CLI turns into one `error: <message>` line."""

    exit_code = 1


class ConfigError(TweakopsError):
    """tweakops.yaml or a command-line value is invalid."""

    exit_code = 2


class RepoError(TweakopsError):
    """The source repository cannot be pulled or read."""


class InspectError(TweakopsError):
    """No ML framework could be recognised in the repository."""


class RuntimeUnavailable(TweakopsError):
    """The requested container runtime cannot be used on this machine."""


class TrialFailed(TweakopsError):
    """A trial ended without a usable metric."""

    def __init__(self, message: str, *, verdict: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.verdict = verdict
        self.log_tail = log_tail


class MetricError(TweakopsError):
    """accuracy.txt is missing or unreadable."""


class NotifyError(TweakopsError):
    """The result could not be sent by email."""


class StoreError(TweakopsError):
    """The run store has no such run, or is unusable."""


class JenkinsError(TweakopsError):
    """Jenkins is unreachable or refused a request."""
