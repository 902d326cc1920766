"""examples/iris-sklearn run as a real trial: defaults, tuned params, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from training import SklearnCheckpoint, read_epochs, read_metric

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "iris-sklearn"
THRESHOLD = 0.95
GOOD = {"epochs": 60, "learning_rate": 0.02, "hidden_units": 16, "alpha": 0.0005}


class Trial:
    """A fresh copy of the example plus an output folder, run the way the runtime runs it."""

    def __init__(self, root: Path, params: dict[str, Any] | None) -> None:
        self.workdir = root / "work"
        self.output = root / "output"
        shutil.copytree(EXAMPLE, self.workdir)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.env.pop("TWEAKOPS_OUTPUT", None)
        self.env.pop("TWEAKOPS_PARAMS", None)
        if params is not None:
            params_file = root / "params.json"
            params_file.write_text(json.dumps(params))
            self.env |= {"TWEAKOPS_OUTPUT": str(self.output), "TWEAKOPS_PARAMS": str(params_file)}

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "train.py"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self) -> str:
        proc = self.start()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        return out

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
