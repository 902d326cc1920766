"""What the watchdog needs of a run (tweakops.context.RunContext is one): monitor/ sits below
the stages and the pipeline, so it names the few things it uses instead of importing them."""

from __future__ import annotations

from typing import Any, Protocol

from tweakops.records import RunRecord
from tweakops.store import RunStore


class Speaker(Protocol):
    """Where the watchdog says what it does (tweakops.report.console.Console is one)."""

    def say(self, text: str = "") -> None: ...

    def warn(self, text: str) -> None: ...


class WatchedRun(Protocol):
    """A run as the watchdog sees it: its record, its store, a voice, an event log."""

    @property
    def run(self) -> RunRecord: ...

    @property
    def store(self) -> RunStore: ...

    @property
    def console(self) -> Speaker: ...

    def event(self, kind: str, message: str, **data: Any) -> None: ...
