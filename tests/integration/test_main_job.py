"""The README's main job, as written: `tweakops run examples/digits-cnn` from this checkout."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_main_job_reaches_the_threshold_on_the_keras_example(tmp_path: Path) -> None:
    env = {**os.environ, "TWEAKOPS_HOME": str(tmp_path / "home"), "CI": "true"}
    run = subprocess.run(
        [sys.executable, "-m", "tweakops", "run", "examples/digits-cnn"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "epoch" in run.stderr  # per-epoch progress is shown while trials train
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tweakops", "--json", "status"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    trials = status["trials"]
    assert status["run"]["status"] == "reached"
    assert 0.80 <= trials[0]["accuracy"] < 0.97  # the defaults leave work for tuning
    best = max(t["accuracy"] for t in trials)
    assert best >= 0.97
    folder = Path(status["folder"])
    assert float((folder / "accuracy.txt").read_text()) == best
    assert (folder / "accuracy.png").stat().st_size > 1000
    best_trial = max(trials, key=lambda t: t["accuracy"])
    assert (Path(best_trial["folder"]) / "output" / "checkpoints" / "best.keras").is_file()
    (eml,) = (folder / "outbox").glob("*.eml")
    assert "threshold reached" in email.message_from_bytes(eml.read_bytes())["Subject"]
