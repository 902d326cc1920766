"""The one exception hierarchy users meet: every message says what was wrong and what to do."""

from __future__ import annotations

import errno
import reprlib

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 120, 120
_REPR.maxtuple = _REPR.maxlist = _REPR.maxdict = _REPR.maxset = 6
QUOTE_LIMIT = 200


def quoted(value: object) -> str:
    """repr() of a value for a message: bounded in time and memory, at most 200 characters,
    however large or deeply nested the value (a YAML file can hold anything)."""
    text = _REPR.repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…"


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


class EngineAway(RuntimeUnavailable):
    """The Docker engine of a docker run does not answer: the stage is left interrupted (the
    run stays resumable on docker, never moved to another runtime)."""


class DiskFull(TweakopsError):
    """No space left where tweakops writes."""


class InternalError(TweakopsError):
    """An error tweakops did not expect; the message says what it was and what to do."""


def explain(exc: BaseException) -> TweakopsError:
    """Any exception as one of ours: what went wrong and what to do, in one line."""
    if isinstance(exc, TweakopsError):
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" at {exc.filename}" if exc.filename else ""
        return DiskFull(
            f"no space left on the disk{where}: free some space, then run the stage again; "
            "what was stored before is kept"
        )
    if isinstance(exc, PermissionError):
        return InternalError(
            f"permission denied: {exc.filename or exc}: run tweakops as a user that may write "
            "its run store (TWEAKOPS_HOME) and caches (TWEAKOPS_CACHE)"
        )
    if isinstance(exc, OSError):
        return InternalError(f"{exc.strerror or exc}: {exc.filename or ''} (errno {exc.errno})")
    return InternalError(
        f"{type(exc).__name__}: {quoted(str(exc))[1:-1]}: an error tweakops did not expect; "
        "rerun with --debug for the traceback, and report it"
    )
