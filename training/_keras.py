"""Keras wiring: resumable backups, an atomic best model, and epoch logging.

Keras is imported only when keras_callbacks() is called, so `import training` stays fast.

What an epoch costs the training thread: Keras's weights file written from the variables
(training/_fastsave.py: no walk over the model as in model.save_weights), its CRC-32, a few
renames and hard links (training/_backup.py), one appended line; and, when the monitored
value improves, the best model's .keras zip around the same weights file. Each of these is
visible to other processes at once, in this order, so a killed trial leaves every logged
epoch's backup on disk. Waiting for the device (fsync) is left to a background thread
(training/_durable.py); an epoch's writes start only when the previous epoch's are synced,
and fit() returns only when all of them are.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from training import _durable
from training._backup import commit, has_state, make_latest_whole, next_weights, use_previous
from training._fastsave import Saver
from training._paths import checkpoint_dir
from training.epochs import append_epoch
from training.files import atomic_write, fsync_dir

BACKUP = "backup"
BEST = "best.keras"
BEST_META = "best.json"
_BEST_PARTIAL = "best.partial.keras"


def keras_callbacks(monitor: str = "val_accuracy") -> list[Any]:
    """[BackupAndRestore, best-model ModelCheckpoint, EpochLogger] under checkpoint_dir().

    Pass them to model.fit(callbacks=...): every epoch is backed up (the last two are kept),
    a process restarted after a kill resumes at the epoch after the last one backed up,
    the best model by `monitor` is kept apart in checkpoints/best.keras, and each epoch
    is appended to epochs.jsonl after its backup, with a heartbeat.
    """
    classes = _callback_classes()
    folder = checkpoint_dir()
    backup = classes.Backup(backup_dir=str(folder / BACKUP))
    return [backup, classes.Best(folder, monitor, backup), classes.EpochLogger()]


def _previous_best(folder: Path, monitor: str) -> float | None:
    """The monitored value of the saved best model, so a resumed run does not overwrite it."""
    try:
        meta = json.loads((folder / BEST_META).read_text(encoding="utf-8"))
        value = float(meta[monitor])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if zipfile.is_zipfile(folder / BEST) and math.isfinite(value) else None


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
        """BackupAndRestore that keeps two states, checks them, and saves them cheaply.

        Keras 3 falls back to the previous state only on OSError from the weights file;
        a metadata JSON torn by a kill raises ValueError and would fail every restart.
        Here the newest whole state (training/_backup.py) is put under the latest names
        before Keras reads it, and when neither is usable training starts over with a
        warning. Keras's own restore (on_train_begin) loads it. Saving writes Keras's own
        weights file from the variables (training/_fastsave.py), and leaves the fsync to
        the background (training/_durable.py). `state` keeps the last weights file's bytes
        for the Best callback when it asks (keep_state).
        """

        def __init__(self, backup_dir: str) -> None:
            super().__init__(backup_dir=backup_dir, double_checkpoint=True, delete_checkpoint=False)
            self._dir = Path(backup_dir)
            self._before: Future[None] | None = None
            self.saver: Saver | None = None
            self.keep_state = False
            self.state: tuple[int, bytes] | None = None  # the last epoch saved, its weights

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            _durable.wait()  # an earlier fit() of this process may still be syncing
            self.saver, self.state = Saver(self.model), None
            keras_restore = keras.callbacks.BackupAndRestore.on_train_begin
            _restore(self._dir, functools.partial(keras_restore, self, logs))

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._before = _durable.last()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            _durable.wait(self._before)  # the previous epoch's state is synced: ≤ 1 in flight
            self._current_epoch = epoch + 1
            self._dir.mkdir(parents=True, exist_ok=True)
            if self.saver is None:
                self.saver = Saver(self.model)
            weights = self.saver.save_weights(next_weights(self._dir))
            _durable.sync(commit(self._dir, epoch + 1), [self._dir])
            self.state = (epoch + 1, weights) if self.keep_state else None

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            super().on_train_end(logs)
            if self.saver is not None:
                self.saver.close()
            self.saver, self.state = None, None
            _durable.wait()

    return Backup


def _restore(folder: Path, keras_restore: Callable[[], None]) -> None:
    """Put the newest whole state under the latest names, and let Keras restore it; the
    previous state if Keras cannot load the latest; nothing (start over) if neither."""
    if has_state(folder) and not make_latest_whole(folder):
        _start_over(folder, "neither the latest nor the previous state is whole")
        return
    try:
        keras_restore()
        return
    except (OSError, ValueError, KeyError) as exc:
        error = exc
    if use_previous(folder):
        try:
            keras_restore()
            return
        except (OSError, ValueError, KeyError) as exc:
            error = exc
    _start_over(folder, error)


def _start_over(folder: Path, error: Exception | str) -> None:
    """Move an unusable backup aside: training starts from epoch 1."""
    aside = folder.with_name(f"{folder.name}.unusable-{time.time_ns()}")
    folder.rename(aside)
    print(
        f"tweakops: backup in {folder} is unusable ({error}); moved to {aside}, "
        "training starts from epoch 1",
        file=sys.stderr,
    )


def _best_class(keras: Any) -> type:
    """The best-model callback, a subclass of keras.callbacks.ModelCheckpoint."""

    class Best(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint of the best model: saved to a partial file, then synced, renamed
        into place and recorded in best.json in the background.

        With the Backup of the same fit(), the .keras file is made from the weights file it
        has just written (training/_fastsave.py), with Keras's own choice of the better
        epoch (ModelCheckpoint._should_save_model); else ModelCheckpoint saves it itself.
        """

        def __init__(self, folder: Path, monitor: str, backup: Any = None) -> None:
            super().__init__(
                filepath=str(folder / _BEST_PARTIAL),
                monitor=monitor,
                save_best_only=True,
                initial_value_threshold=_previous_best(folder, monitor),
            )
            self._folder = folder
            self._backup = backup
            if backup is not None:
                backup.keep_state = True
            self._before: Future[None] | None = None

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            _durable.wait()
            with contextlib.suppress(FileNotFoundError):
                (self._folder / _BEST_PARTIAL).unlink()
            super().on_train_begin(logs)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_epoch_begin(epoch, logs)
            self._before = _durable.last()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            _durable.wait(self._before)  # the last partial file is renamed: it may be reused
            partial = self._folder / _BEST_PARTIAL
            state = getattr(self._backup, "state", None)
            better = getattr(self, "_should_save_model", None)  # Keras's own choice
            if state is None or state[0] != epoch + 1 or better is None:
                super().on_epoch_end(epoch, logs)  # Keras's own model.save when better
            else:
                if getattr(self, "monitor_op", None) is None:
                    self._set_monitor_op()
                if better(epoch, None, logs or {}, str(partial)):
                    self._backup.saver.save_keras(partial, state[1])
                self._backup.state = None  # its bytes are not kept for longer than the epoch
            if not partial.exists():
                return
            value = float((logs or {}).get(self.monitor, math.nan))
            record = json.dumps({"epoch": epoch + 1, self.monitor: value}) + "\n"
            _durable.submit(functools.partial(_keep_best, self._folder, record))

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            super().on_train_end(logs)
            _durable.wait()

    return Best


def _keep_best(folder: Path, record: str) -> None:
    """Sync the partial best model, rename it into place, then write best.json (both durable).

    A kill before the rename leaves the previous best model and its best.json."""
    partial = folder / _BEST_PARTIAL
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, folder / BEST)
    fsync_dir(folder)
    atomic_write(folder / BEST_META, record)


def _epoch_logger_class(keras: Any) -> type:
    """The epoch-logging callback, a subclass of keras.callbacks.Callback."""

    class EpochLogger(keras.callbacks.Callback):
        """Logs epoch offset + epoch + 1 with its logs at the end of every epoch, like
        training.log_epoch but with the fsync in the background (after the backup's).

        `offset` counts the epochs of earlier fit() calls of the same script, so that the
        epochs of a script that fits twice keep counting up.
        """

        def __init__(self, offset: int = 0) -> None:
            super().__init__()
            self.offset = offset
            self._before: Future[None] | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._before = _durable.last()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            _durable.wait(self._before)
            _durable.sync([append_epoch(self.offset + epoch + 1, logs or {})])

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            _durable.wait()

    return EpochLogger
