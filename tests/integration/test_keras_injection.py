"""Checkpoints injected into Keras code that has none (training/_inject.py), like MLflow's
autolog: the user's callbacks stay, a BackupAndRestore and an epoch logger are added, and a
script with a BackupAndRestore of its own keeps only its own. Real TensorFlow, real fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import read_epochs

pytestmark = pytest.mark.slow

AUTORUN = Path(__file__).resolve().parents[2] / "training" / "autorun.py"
MODELS = """\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np

x, y = np.random.rand(64, 4), np.random.randint(0, 2, 64)


def model():
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    return net
"""


def run(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "model.py").write_text(MODELS + script)
    return subprocess.run(
        [sys.executable, str(AUTORUN), "--keras-checkpoints", "model.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TWEAKOPS_OUTPUT": str(folder / "output")},
    )


def test_own_callbacks_stay_and_each_fit_gets_its_backup_and_epoch_numbers(
    tmp_path: Path,
) -> None:
    script = """
class Marker(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open("marks.txt", "a") as out:
            out.write(f"{epoch}\\n")


model().fit(x, y, epochs=2, verbose=0, callbacks=[Marker()])
model().fit(x, y, 8, 3, 0)  # positional batch_size, epochs, verbose
open("accuracy.txt", "w").write("0.5")
"""
    done = run(tmp_path, script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "automatic checkpoints are off" not in done.stderr
    assert (tmp_path / "marks.txt").read_text() == "0\n1\n"  # the user's callback ran
    assert [row["epoch"] for row in read_epochs(tmp_path / "output")] == [1, 2, 3, 4, 5]
    checkpoints = tmp_path / "output" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} == {"backup", "backup-2"}
    meta = checkpoints / "backup-2" / "training_metadata.json"
    assert json.loads(meta.read_text())["epoch"] == 3  # the second fit's own epochs, all saved


def test_a_fit_with_its_own_backup_and_restore_keeps_only_its_own(tmp_path: Path) -> None:
    script = """
own = keras.callbacks.BackupAndRestore(backup_dir="mine", delete_checkpoint=False)
model().fit(x, y, epochs=2, verbose=0, callbacks=[own])
"""
    done = run(tmp_path, script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "mine").is_dir()
    assert not (tmp_path / "output" / "checkpoints" / "backup").exists()
    assert [row["epoch"] for row in read_epochs(tmp_path / "output")] == [1, 2]
