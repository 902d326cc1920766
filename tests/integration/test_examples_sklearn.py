"""examples/iris-sklearn run as a real trial: defaults, tuned params, SIGKILL and resume."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.example_trial import ExampleTrial
from training import SklearnCheckpoint, read_epochs, read_metric

THRESHOLD = 0.95
GOOD = {"epochs": 60, "learning_rate": 0.02, "hidden_units": 16, "alpha": 0.0005}


class Trial(ExampleTrial):
    def __init__(self, root: Path, params: dict[str, Any] | None) -> None:
        super().__init__("iris-sklearn", root, params, timeout=60)

    def accuracy(self) -> float:
        return read_metric(self.output, self.workdir)


def test_default_params_score_below_the_threshold(tmp_path: Path) -> None:
    trial = Trial(tmp_path, {})
    trial.run()
    assert (trial.output / "accuracy.txt").is_file()
    assert not (trial.workdir / "accuracy.txt").exists()
    assert 0.5 <= trial.accuracy() < THRESHOLD
    assert [r["epoch"] for r in read_epochs(trial.output)] == list(range(1, 21))


def test_good_params_reach_the_threshold(tmp_path: Path) -> None:
    trial = Trial(tmp_path, GOOD)
    trial.run()
    assert trial.accuracy() >= THRESHOLD
    assert len(read_epochs(trial.output)) == GOOD["epochs"]


def test_run_by_hand_writes_accuracy_next_to_the_script(tmp_path: Path) -> None:
    trial = Trial(tmp_path, None)
    trial.run()
    assert (trial.workdir / "accuracy.txt").is_file()
    assert (trial.workdir / "checkpoints").is_dir()
    assert 0.5 <= read_metric(tmp_path / "nowhere", trial.workdir) < THRESHOLD


def test_trial_resumes_from_last_checkpoint_after_sigkill(tmp_path: Path) -> None:
    epochs = 12
    params = {**GOOD, "epochs": epochs, "epoch_seconds": 0.2}
    trial = Trial(tmp_path / "killed", params)
    proc = trial.start()
    deadline = time.monotonic() + 30
    while max((r["epoch"] for r in read_epochs(trial.output)), default=0) < 3:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the trial never logged epoch 3"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not (trial.output / "accuracy.txt").exists()

    before = read_epochs(trial.output)
    last_logged = before[-1]["epoch"]
    checkpointed = SklearnCheckpoint(trial.output / "checkpoints").latest_step()
    assert checkpointed is not None
    assert last_logged <= checkpointed <= last_logged + 1  # logged epochs are always saved
    assert checkpointed < epochs

    out = trial.run()
    assert f"resuming after epoch {checkpointed}" in out
    rerun = [r["epoch"] for r in read_epochs(trial.output) if r["pid"] != before[0]["pid"]]
    assert rerun == list(range(checkpointed + 1, epochs + 1))
    assert rerun[0] > last_logged  # nothing logged before the kill is trained again

    uninterrupted = Trial(tmp_path / "uninterrupted", {**params, "epoch_seconds": 0.0})
    uninterrupted.run()
    assert trial.accuracy() == uninterrupted.accuracy()  # the resumed model is the same model


def test_rerun_of_a_finished_trial_trains_nothing_and_reports_the_same(tmp_path: Path) -> None:
    trial = Trial(tmp_path, GOOD)
    trial.run()
    first = trial.accuracy()
    out = trial.run()
    assert f"resuming after epoch {GOOD['epochs']}" in out
    assert trial.accuracy() == first
    assert len(read_epochs(trial.output)) == GOOD["epochs"]


@pytest.mark.parametrize("corrupt", ["truncate", "sidecar"])
def test_resume_skips_a_torn_newest_checkpoint(tmp_path: Path, corrupt: str) -> None:
    trial = Trial(tmp_path, {**GOOD, "epochs": 8})
    trial.run()
    checkpoints = trial.output / "checkpoints"
    if corrupt == "truncate":
        payload = checkpoints / "ckpt-000008.joblib"
        payload.write_bytes(payload.read_bytes()[:50])
    else:
        (checkpoints / "ckpt-000008.json").write_text("{")
    out = trial.run()
    assert "resuming after epoch 7" in out
    assert [r["epoch"] for r in read_epochs(trial.output)][-1] == 8
