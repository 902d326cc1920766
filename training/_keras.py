"""Keras wiring: resumable backups, an atomic best model, and epoch logging.

Keras is imported only when keras_callbacks() is called, so `import training` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from training._paths import checkpoint_dir
from training.epochs import log_epoch
from training.files import atomic_write, fsync_dir

BACKUP = "backup"
BEST = "best.keras"
BEST_META = "best.json"
_BEST_PARTIAL = "best.partial.keras"
_WEIGHTS = "latest.weights.h5"
_META = "training_metadata.json"


def keras_callbacks(monitor: str = "val_accuracy") -> list[Any]:
    """[BackupAndRestore, best-model ModelCheckpoint, EpochLogger] under checkpoint_dir().

    Pass them to model.fit(callbacks=...): every epoch is backed up (the last two are kept),
    a process restarted after a kill resumes at the epoch after the last one backed up,
    the best model by `monitor` is kept apart in checkpoints/best.keras, and each epoch
    is appended to epochs.jsonl after its backup, with a heartbeat.
    """
    classes = _callback_classes()
    folder = checkpoint_dir()
    return [
        classes.Backup(backup_dir=str(folder / BACKUP)),
        classes.Best(folder, monitor),
        classes.EpochLogger(),
    ]


def _valid_backup(backup: Path, suffix: str = "") -> bool:
    """True when the metadata parses with an int epoch and the weights file is non-empty."""
    try:
        meta = json.loads((backup / f"{_META}{suffix}").read_text(encoding="utf-8"))
        weights = backup / f"{_WEIGHTS}{suffix}"
        return isinstance(meta.get("epoch"), int) and weights.stat().st_size > 0
    except (OSError, ValueError, AttributeError):
        return False


def _previous_best(folder: Path, monitor: str) -> float | None:
    """The monitored value of the saved best model, so a resumed run does not overwrite it."""
    try:
        meta = json.loads((folder / BEST_META).read_text(encoding="utf-8"))
        value = float(meta[monitor])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if (folder / BEST).is_file() and math.isfinite(value) else None


@functools.cache
def _callback_classes() -> Any:
    """Define the Callback subclasses on first use (keras imported here, not at import)."""
    import keras

    return SimpleNamespace(
        Backup=_backup_class(keras), Best=_best_class(keras), EpochLogger=_epoch_logger_class(keras)
    )


def _backup_class(keras: Any) -> type:
    """The resumable backup callback, a subclass of keras.callbacks.BackupAndRestore."""

    class Backup(keras.callbacks.BackupAndRestore):
        """BackupAndRestore that keeps two states and survives a torn one.

        Keras 3 falls back to the previous state only on OSError from the weights file;
        a metadata JSON torn by a kill raises ValueError and would fail every restart.
        Here a torn latest state is replaced by the previous one before Keras reads it,
        and when neither is usable training starts over with a warning.
        """

        def __init__(self, backup_dir: str) -> None:
            super().__init__(backup_dir=backup_dir, double_checkpoint=True, delete_checkpoint=False)
            self._dir = Path(backup_dir)

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            has_state = (self._dir / _WEIGHTS).exists() or (self._dir / _META).exists()
            if has_state and not _valid_backup(self._dir):
                self._restore_previous()
            try:
                super().on_train_begin(logs)
                return
            except (OSError, ValueError, KeyError) as exc:
                error = exc
            if self._restore_previous():
                try:
                    super().on_train_begin(logs)
                    return
                except (OSError, ValueError, KeyError) as exc:
                    error = exc
            self._start_over(error)

        def _restore_previous(self) -> bool:
            """Copy the previous state over the latest one when the previous one looks whole."""
            if not _valid_backup(self._dir, ".bkp"):
                return False
            for name in (_WEIGHTS, _META):
                shutil.copyfile(self._dir / f"{name}.bkp", self._dir / name)
            return True

        def _start_over(self, error: Exception) -> None:
            """Move an unusable backup aside and train from epoch 1."""
            aside = self._dir.with_name(f"{self._dir.name}.unusable-{time.time_ns()}")
            self._dir.rename(aside)
            print(
                f"tweakops: backup in {self._dir} is unusable ({error}); moved to {aside}, "
                "training starts from epoch 1",
                file=sys.stderr,
            )

    return Backup


def _best_class(keras: Any) -> type:
    """The best-model callback, a subclass of keras.callbacks.ModelCheckpoint."""

    class Best(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint of the best model, written to a temp file then renamed into place."""

        def __init__(self, folder: Path, monitor: str) -> None:
            super().__init__(
                filepath=str(folder / _BEST_PARTIAL),
                monitor=monitor,
                save_best_only=True,
                initial_value_threshold=_previous_best(folder, monitor),
            )
            self._folder = folder

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            with contextlib.suppress(FileNotFoundError):
                (self._folder / _BEST_PARTIAL).unlink()
            super().on_train_begin(logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            partial = self._folder / _BEST_PARTIAL
            if not partial.exists():
                return
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, self._folder / BEST)
            fsync_dir(self._folder)
            value = float((logs or {}).get(self.monitor, math.nan))
            record = {"epoch": epoch + 1, self.monitor: value}
            atomic_write(self._folder / BEST_META, json.dumps(record) + "\n")

    return Best


def _epoch_logger_class(keras: Any) -> type:
    """The epoch-logging callback, a subclass of keras.callbacks.Callback."""

    class EpochLogger(keras.callbacks.Callback):
        """Calls training.log_epoch(offset + epoch + 1, **logs) at the end of every epoch.

        `offset` counts the epochs of earlier fit() calls of the same script, so that the
        epochs of a script that fits twice keep counting up.
        """

        def __init__(self, offset: int = 0) -> None:
            super().__init__()
            self.offset = offset

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            log_epoch(self.offset + epoch + 1, **(logs or {}))

    return EpochLogger
