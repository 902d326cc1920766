"""SIGKILL of a real Keras training process at random points: every epoch in epochs.jsonl
has its backup on disk, at most one trained epoch is lost, and the restart resumes right
after the backup. Real TensorFlow; a model with a 13 MB backup, and the background fsync
slowed down (60 ms a job, longer than an epoch's training) so that most kills land while
an epoch's writes are still being synced and the next epoch waits for them."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from training import read_epochs
from training._backup import PREVIOUS, whole

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 60
SCRIPT = f"""\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import time

import keras
import numpy as np

import training
from training import _durable

_sync_now = _durable._sync_now
_durable._sync_now = lambda fds, folders: (time.sleep(0.06), _sync_now(fds, folders))


class Trained(keras.callbacks.Callback):  # first in the list: before any backup of the epoch
    def on_epoch_end(self, epoch, logs=None):
        print(f"trained {{epoch + 1}}", flush=True)


keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(256, 64)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
model = keras.Sequential(
    [keras.Input((64,)), keras.layers.Dense(1024, "relu"), keras.layers.Dense(1024, "relu"),
     keras.layers.Dense(2, "softmax")]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
callbacks = [Trained(), *training.keras_callbacks()]
model.fit(x, y, epochs={EPOCHS}, batch_size=128, validation_split=0.25, callbacks=callbacks,
          verbose=0)
print("finished", flush=True)
"""


class Attempt:
    """One run of the script, killed after `delay` seconds past its first trained epoch."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "train.py"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TWEAKOPS_OUTPUT": str(folder / "out")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.lines: list[str] = []

    def first_trained(self) -> int:
        """Block until the first `trained N` line; N."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("the script ended first:\n" + "".join(self.lines))
            self.lines.append(line)
            if match := re.fullmatch(r"trained (\d+)\n", line):
                return int(match[1])
        raise AssertionError("no epoch within 120 s")

    def kill_after(self, delay: float) -> bool:
        """SIGKILL after `delay` s; False if the script finished first."""
        time.sleep(delay)
        self.process.send_signal(signal.SIGKILL)
        out, _ = self.process.communicate(timeout=30)
        self.lines += out.splitlines(keepends=True)
        return self.process.returncode == -signal.SIGKILL

    def last_trained(self) -> int:
        return max(int(m[1]) for m in re.finditer(r"^trained (\d+)$", "".join(self.lines), re.M))


def restorable(backup: Path) -> int:
    """The epoch a restart resumes after: the newest whole state."""
    return max((e for e in (whole(backup), whole(backup, PREVIOUS)) if e is not None), default=0)


def test_kills_during_background_writes_never_log_an_epoch_without_its_backup(
    tmp_path: Path,
) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    out, backup = tmp_path / "out", tmp_path / "out" / "checkpoints" / "backup"
    rng = random.Random(18)
    resumed_at, kills = 0, 0
    for _ in range(4):
        attempt = Attempt(tmp_path)
        assert attempt.first_trained() == resumed_at + 1  # resumes right after the backup
        if not attempt.kill_after(rng.uniform(0.05, 0.8)):
            break
        kills += 1
        logged = max((r["epoch"] for r in read_epochs(out)), default=0)
        resumed_at = restorable(backup)
        assert logged <= resumed_at, "an epoch is logged whose backup is not on disk"
        assert attempt.last_trained() - resumed_at <= 1, "more than one trained epoch lost"
    final = Attempt(tmp_path)
    assert final.first_trained() == resumed_at + 1
    out_text, _ = final.process.communicate(timeout=300)
    assert final.process.returncode == 0, "".join(final.lines) + out_text
    assert "finished" in out_text
    assert whole(backup) == EPOCHS and whole(backup, PREVIOUS) == EPOCHS - 1
    # A kill between an epoch's backup and its line loses the line, not the epoch.
    missing = set(range(1, EPOCHS + 1)) - {r["epoch"] for r in read_epochs(out)}
    assert len(missing) <= kills
    assert zipfile.is_zipfile(out / "checkpoints" / "best.keras")
    assert not (out / "checkpoints" / "best.partial.keras").exists()
