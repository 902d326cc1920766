"""When the next warm spare is made: once the trial just started is past its start-up.

A spare importing TensorFlow (seconds of CPU) while the trial it follows starts up slows that
start-up: the process start, imports, data, model build and tracing are one thread's work
on the critical path, and on a small machine the import takes CPU from it (measured on 2
cores, bench/warm_start.py: a spare made at once, 1.9 s of start-up; made at the first
epoch, 0.85 s, and the trial's whole time shorter too). So the runtimes make the spare from
a background thread once the trial logged its first epoch (epochs.jsonl in its output
folder), ended, or SPARE_AFTER_SECONDS passed (a script that logs no epochs), whichever
comes first. The spare then imports while the trial trains.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from training.epochs import EPOCHS_FILE

log = logging.getLogger("tweakops.runtime")

SPARE_AFTER_SECONDS = 10.0
_POLL_SECONDS = 0.1
_ALIVE_EVERY = 5  # ask whether the trial still runs every this many polls (an engine call)


class SpareMaker:
    """One background thread at a time that makes the next spare after a trial's start-up."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def busy(self) -> bool:
        """A spare is being waited for or made."""
        with self._lock:
            return self._thread is not None

    def after_startup(
        self, output_dir: Path, running: Callable[[], bool], make: Callable[[], None]
    ) -> bool:
        """Call `make` once the trial (its output folder; whether it still runs) is past its
        start-up; False, and nothing done, when a spare is on its way already."""
        with self._lock:
            if self._thread is not None:
                return False
            self._stop.clear()
            thread = threading.Thread(
                target=self._run, args=(output_dir, running, make), name=self._name, daemon=True
            )
            self._thread = thread
        thread.start()
        return True

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the spare on its way was made (or given up)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop waiting for a start-up; let a spare being made be made (its owner discards it)."""
        self._stop.set()
        self.settle(timeout)

    def _run(self, output_dir: Path, running: Callable[[], bool], make: Callable[[], None]) -> None:
        try:
            if self._await(output_dir, running):
                make()
        except Exception:  # a spare is an optimisation: never an error of the trial
            log.warning("no warm spare for the next trial", exc_info=True)
        finally:
            with self._lock:
                self._thread = None

    def _await(self, output_dir: Path, running: Callable[[], bool]) -> bool:
        """True once the trial is past its start-up; False when stopped."""
        deadline = time.monotonic() + SPARE_AFTER_SECONDS
        polls = 0
        while time.monotonic() < deadline:
            if self._stop.wait(_POLL_SECONDS):
                return False
            polls += 1
            if os.path.lexists(output_dir / EPOCHS_FILE):
                return True
            if polls % _ALIVE_EVERY == 0 and not running():
                return True
        return not self._stop.is_set()
