"""Per-epoch progress of a running trial, read from the epochs.jsonl its harness writes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tweakops.report.console import Console
from tweakops.trialfiles import read_epochs

POLL_SECONDS = 0.5


class EpochProgress:
    """A background reader that prints each newly logged epoch; use as a context manager.

    `on_poll(new_epochs)` is called from the reader thread at every poll (new_epochs may be
    empty): the tuner's pruning reads the epochs there and may stop the trial.
    """

    def __init__(
        self,
        console: Console,
        output_dir: Path,
        trial: int,
        on_poll: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.console, self.output_dir, self.trial = console, output_dir, trial
        self.on_poll = on_poll
        self._shown = len(read_epochs(output_dir.parent, output_dir))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-t{trial}", daemon=True)

    def __enter__(self) -> EpochProgress:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.show_new()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.show_new()

    def show_new(self) -> None:
        epochs = read_epochs(self.output_dir.parent, self.output_dir)
        new = epochs[self._shown :]
        for row in new:
            metrics = " ".join(
                f"{k}={v:.4f}"
                for k, v in row.items()
                if isinstance(v, float) and k not in ("time",)
            )
            self.console.say(f"      trial {self.trial} epoch {row.get('epoch')}: {metrics}")
        self._shown = max(self._shown, len(epochs))
        if self.on_poll is not None:
            self.on_poll(new)
