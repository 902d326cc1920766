"""examples/digits-cnn run as a real trial (TensorFlow): defaults, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.example_trial import ExampleTrial
from training import read_epochs, read_metric

pytestmark = pytest.mark.slow


class Trial(ExampleTrial):
    def __init__(self, root: Path, params: dict[str, Any] | None) -> None:
        super().__init__("digits-cnn", root, params, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "2"})

    def backed_up_epoch(self) -> int:
        meta = self.output / "checkpoints" / "backup" / "training_metadata.json"
        return int(json.loads(meta.read_text())["epoch"])


def test_default_params_score_in_the_expected_band(tmp_path: Path) -> None:
    trial = Trial(tmp_path, {})
    out = trial.run()
    assert 0.85 <= read_metric(trial.output, trial.workdir) <= 0.93
    assert [r["epoch"] for r in read_epochs(trial.output)] == [1, 2, 3, 4, 5]
    assert out.count("val_accuracy") == 5  # one line per epoch
    assert (trial.output / "checkpoints" / "best.keras").is_file()


def test_trial_resumes_from_backup_after_sigkill(tmp_path: Path) -> None:
    epochs = 12
    trial = Trial(tmp_path, {"epochs": epochs})
    proc = trial.start()
    deadline = time.monotonic() + 90
    while max((r["epoch"] for r in read_epochs(trial.output)), default=0) < 2:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the trial never logged epoch 2"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    before = read_epochs(trial.output)
    last_logged = before[-1]["epoch"]
    backed_up = trial.backed_up_epoch()
    assert last_logged <= backed_up <= last_logged + 1  # logged epochs are always backed up
    assert backed_up < epochs, "the trial finished before the kill: nothing to resume"

    out = trial.run()
    assert f"Epoch {backed_up + 1}/{epochs}" in out
    assert f"Epoch {backed_up}/{epochs}" not in out
    rerun = [r["epoch"] for r in read_epochs(trial.output) if r["pid"] != before[0]["pid"]]
    assert rerun == list(range(backed_up + 1, epochs + 1))  # at most the killed epoch is lost
    assert read_metric(trial.output, trial.workdir) >= 0.85

    # A kill while Keras rewrote its backup leaves a torn file; the previous state is used.
    backup = trial.output / "checkpoints" / "backup"
    for torn in ("training_metadata.json", "latest.weights.h5"):
        path = backup / torn
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
        out = trial.run()
        assert f"Epoch {epochs}/{epochs}" in out and f"Epoch {epochs - 1}/" not in out, out
        assert trial.backed_up_epoch() == epochs
        assert read_metric(trial.output, trial.workdir) >= 0.85
