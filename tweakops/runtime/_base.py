"""The one small interface every trial runtime (local process, Docker container) implements."""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

from tweakops.vocabulary import ProcessState

State = ProcessState  # the name the backends and callers used before the enum


@dataclass(frozen=True)
class TrialSpec:
    """Everything a runtime needs to run one trial attempt; restarts reuse the same spec."""

    name: str  # unique per attempt owner, e.g. "<run_id>-t3"; reusable once removed
    command: tuple[str, ...]  # argv; the local runtime runs "python" as sys.executable
    workdir: Path  # the trial's copy of the source: the process's cwd (mounted in containers)
    output_dir: Path  # exported as TWEAKOPS_OUTPUT (mounted in containers)
    log_path: Path  # stdout+stderr are appended here, never truncated
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # containers only
    labels: Mapping[str, str] = field(default_factory=dict)  # containers only
    memory_limit: str | None = None  # e.g. "2g"; containers only (local ignores it)
    cpus: float | None = None  # containers only (local ignores it)

    def __post_init__(self) -> None:
        """Normalise containers and paths so a spec cannot change after it is built."""
        if not self.command:
            raise ValueError(f"trial {self.name!r} has an empty command; give an argv")
        object.__setattr__(self, "command", tuple(self.command))
        for name in ("workdir", "output_dir", "log_path"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclass(frozen=True)
class Handle:
    """A started trial: the runtime that owns it and its id (pid or container id)."""

    runtime: str
    id: str

    def __str__(self) -> str:
        return f"{self.runtime}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Handle:
        """Read back a handle stored as "<runtime>:<id>", e.g. "local:4242"."""
        runtime, sep, ident = text.partition(":")
        if not sep or not runtime or not ident:
            raise ValueError(
                f"expected a handle like 'local:4242' or 'docker:<id>' but got {text!r}"
            )
        return cls(runtime, ident)


@dataclass(frozen=True)
class ExitStatus:
    """How a trial attempt ended, as fields that monitor/ and notify/ read."""

    code: int | None  # None when killed by a signal or unknown
    signal: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    missing: bool = False  # the process/container vanished or was watched from elsewhere

    @property
    def ok(self) -> bool:
        """True only for a clean exit 0."""
        clean = not (self.oom_killed or self.timed_out or self.missing)
        return clean and self.signal is None and self.code == 0

    def describe(self) -> str:
        """A few words for logs and emails: "exit 1", "killed by SIGKILL", "OOM-killed"."""
        if self.oom_killed:
            return "OOM-killed"
        if self.timed_out:
            return "timed out"
        if self.missing:
            return "disappeared"
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        if self.code is not None:
            return f"exit {self.code}"
        return "ended for an unknown reason"


def signal_name(number: int) -> str:
    """SIGKILL for 9; "signal 99" for numbers this platform does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Capacity:
    """What the trials of one runtime share: CPUs and memory in bytes (None: unknown)."""

    cpus: int
    memory: int | None


class Runtime(ABC):
    """Start, wait for, inspect, kill and remove trial attempts.

    Contract shared by every backend (tests/integration/test_runtime_contract.py):
    start() appends output to spec.log_path; wait() on timeout kills and returns
    timed_out=True; kill() and remove() never fail for a trial that is already
    gone; remove() of a running trial kills it first (like ``docker rm -f``);
    every method may be called from several threads at once.
    """

    name: ClassVar[str]

    @abstractmethod
    def start(self, spec: TrialSpec) -> Handle:
        """Start one attempt of the trial and return its handle at once."""

    @abstractmethod
    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        """Block until the attempt ends; after `timeout` seconds kill it and say so."""

    @abstractmethod
    def status(self, handle: Handle) -> State:
        """RUNNING, EXITED (result known) or MISSING (gone, result unknown)."""

    @abstractmethod
    def kill(self, handle: Handle) -> None:
        """SIGKILL the attempt and everything it started; no error if already gone."""

    @abstractmethod
    def remove(self, handle: Handle) -> None:
        """Release what the attempt holds (process entry, container); idempotent."""

    def adopt(self, handle: Handle, spec: TrialSpec) -> Handle:
        """Take over an attempt that an earlier tweakops process started (it kept running).

        The local runtime's process still writes to spec.log_path itself; the docker runtime
        follows the container's output from now on.
        """
        self._check_owner(handle)
        return handle

    def prewarm(self, modules: Sequence[str], python: str = "python") -> None:
        """Keep an interpreter with `modules` imported for the next `python X.py` trial, if this
        backend can (the local and docker runtimes do); the base version does nothing."""
        return None

    def keep_spares(self, count: int) -> None:
        """How many warm spares prewarm() keeps: one per trial at once (the docker runtime;
        the local one keeps one spare process); the base version does nothing."""
        return None

    def close(self) -> None:
        """Let go of what prewarm() keeps (a spare process or container); idempotent."""
        return None

    def ready(self) -> bool:
        """Whether start() can work now (a Docker engine answers); always True locally."""
        return True

    def wait_for_exits(self, timeout: float) -> list[dict[str, str]]:
        """Block up to `timeout` s for attempts to end; the labels of each that ended.

        The base version only sleeps (polling); the docker runtime follows the engine's events.
        """
        time.sleep(timeout)
        return []

    def capacity(self) -> Capacity:
        """This machine's CPUs and memory (the docker runtime asks its engine)."""
        try:
            memory: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            memory = None
        return Capacity(len(os.sched_getaffinity(0)) or 1, memory)

    def is_alive(self, handle: Handle) -> bool:
        """Shortcut for the watchdog: status() is RUNNING."""
        return self.status(handle) == ProcessState.RUNNING

    def _check_owner(self, handle: Handle) -> None:
        """Refuse a handle that another runtime started."""
        if handle.runtime != self.name:
            raise ValueError(
                f"handle {handle} belongs to the {handle.runtime!r} runtime, not {self.name!r}; "
                f"use get_runtime({handle.runtime!r})"
            )
