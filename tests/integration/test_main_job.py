"""The README's main job: `tweakops run examples/digits-cnn`, this checkout's example."""

from __future__ import annotations

import email
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES


@pytest.mark.slow
def test_main_job_reaches_the_threshold_on_the_keras_example(cli: Any) -> None:
    # The README's command: the default runtime (auto) unless this machine sets one.
    runtime = os.environ.get("TWEAKOPS_RUNTIME", "auto")
    run = cli("run", str(EXAMPLES / "digits-cnn"), timeout=900, TWEAKOPS_RUNTIME=runtime)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "epoch" in run.stderr  # per-epoch progress is shown while trials train
    shown = cli("--json", "status")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    trials = status["trials"]
    assert status["run"]["status"] == "reached"
    assert 0.80 <= trials[0]["accuracy"] < 0.97  # the defaults leave work for tuning
    best = max(t["accuracy"] or 0.0 for t in trials)
    assert best >= 0.97
    folder = Path(status["folder"])
    assert float((folder / "accuracy.txt").read_text()) == best
    assert (folder / "accuracy.png").stat().st_size > 1000
    best_trial = max(trials, key=lambda t: t["accuracy"] or 0.0)
    assert (Path(best_trial["folder"]) / "output" / "checkpoints" / "best.keras").is_file()
    (eml,) = (folder / "outbox").glob("*.eml")
    assert "threshold reached" in email.message_from_bytes(eml.read_bytes())["Subject"]
