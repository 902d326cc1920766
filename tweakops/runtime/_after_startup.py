"""The next warm spare is made while a trial starts, and may only use idle CPU until that
trial is past its start-up.

A spare importing TensorFlow (seconds of CPU) takes CPU from the trial it follows if both
run at the same weight: the trial's start-up (process start, imports, data, model build,
tracing) is one thread's work on the critical path. So the docker runtime makes the spare
from a background thread as soon as the trial started, at the lowest CPU weight, and gives
it the default weight once the trial logged its first epoch (epochs.jsonl in its output
folder), ended, or SPARE_AFTER_SECONDS passed (a script that logs no epochs), whichever
comes first. Measured on 2 cores, bench/warm_start.py, a 1-minute load of 2-3 from other
jobs: start-up with the spare made at once at the default weight 1.9 s, made only after the
first epoch 1.2-1.55 s, made at once at the lowest weight until then 0.97-1.04 s.
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
    """One background thread at a time: makes the next spare, then waits for the start-up
    of the trial that was just started and calls its follow-up (the spare's full weight)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(
        self,
        output_dir: Path,
        running: Callable[[], bool],
        make: Callable[[], None],
        then: Callable[[], None],
    ) -> bool:
        """In the background: `make`, then `then` once the trial (its output folder; whether
        it still runs) is past its start-up. False, and nothing done, when busy already."""
        with self._lock:
            if self._thread is not None:
                return False
            self._stop.clear()
            thread = threading.Thread(
                target=self._run,
                args=(output_dir, running, make, then),
                name=self._name,
                daemon=True,
            )
            self._thread = thread
        thread.start()
        return True

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the thread is done (the spare made and at full weight, or given up)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop waiting for a start-up; a spare being made is made (its owner discards it)."""
        self._stop.set()
        self.settle(timeout)

    def _run(
        self,
        output_dir: Path,
        running: Callable[[], bool],
        make: Callable[[], None],
        then: Callable[[], None],
    ) -> None:
        try:
            make()
            if self._await(output_dir, running):
                then()
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
            if os.path.lexists(output_dir / EPOCHS_FILE):
                return True
            if self._stop.wait(_POLL_SECONDS):
                return False
            polls += 1
            if polls % _ALIVE_EVERY == 0 and not running():
                return True
        return not self._stop.is_set()
