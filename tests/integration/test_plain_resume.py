"""Crash safety without code changes: the seed Keras script, killed mid-trial, resumes.

examples/seed-keras/model.py never heard of tweakops: it has no callbacks and no checkpoints.
Inspect injects them (a wrapped Model.fit), so a SIGKILL of its process (local) or a `docker
kill` of its container lands between two epochs' checkpoints, the supervisor restarts it, and
it goes on from the last epoch it saved: no logged epoch is trained twice, at most the one in
flight is lost. The copy here trains 12 epochs instead of 3, so that the kill lands mid-way,
and a tweakops.yaml keeps the run to trial 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, start_tweakops, tweakops_env
from training import read_epochs

pytestmark = pytest.mark.slow

EPOCHS = 12
KILL_AFTER = 3  # epochs logged before the kill
TIMEOUT = 600.0  # for the whole run; a wait, never asserted as a duration


def seed_repo(make_repo: Callable[..., Path]) -> Path:
    script = (EXAMPLES / "seed-keras" / "model.py").read_text()
    assert script.count("epochs=3,") == 1, "examples/seed-keras/model.py changed its fit() call"
    return make_repo(
        "seed-keras",
        files={
            "model.py": script.replace("epochs=3,", f"epochs={EPOCHS},"),
            "tweakops.yaml": "threshold: 0.5\nmax_trials: 1\n",
        },
    )


def start(home: Path, repo: Path, runtime: str) -> subprocess.Popen[str]:
    return start_tweakops(
        home,
        "--json",
        "run",
        str(repo),
        env=tweakops_env(home, TWEAKOPS_RUNTIME=runtime),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epoch(home: Path, run: subprocess.Popen[str], epoch: int) -> Path:
    """Trial 0's output folder once `epoch` is logged there."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for output in (home / "runs").glob("*/trials/000/output"):
            rows = read_epochs(output)
            if rows and rows[-1]["epoch"] >= epoch:
                return output
        if run.poll() is not None:
            raise AssertionError(f"tweakops ended first: {run.communicate()[1][-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"epoch {epoch} was never logged")


def assert_resumed_once(snapshot: dict[str, Any], output: Path) -> None:
    """One restart, from the last epoch logged; every epoch logged once, one at most lost."""
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 1, trial
    (restarted,) = [e for e in snapshot["events"] if e["kind"] == "trial_restarted"]
    resumed = restarted["data"]["resumed_from_epoch"]
    assert resumed >= KILL_AFTER, restarted
    epochs = [row["epoch"] for row in read_epochs(output)]
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS, epochs  # none trained twice
    missing = set(range(1, EPOCHS + 1)) - set(epochs)
    assert len(missing) <= 1, epochs  # saved but killed before its line was written
    log = (output.parent / "log.txt").read_text(errors="replace")
    assert log.count(f"Epoch {resumed + 1}/{EPOCHS}") + log.count(f"Epoch {resumed + 2}/") >= 1


def test_a_killed_plain_keras_trial_resumes_from_its_last_epoch_locally(
    make_repo: Callable[..., Path], home: Path
) -> None:
    run = start(home, seed_repo(make_repo), "local")
    try:
        output = wait_for_epoch(home, run, KILL_AFTER)
        victim = int(read_epochs(output)[-1]["pid"])
        os.kill(victim, signal.SIGKILL)
        out, err = run.communicate(timeout=TIMEOUT)
    finally:
        run.kill()
    assert run.returncode == 0, err[-3000:]
    assert_resumed_once(json.loads(out), output)
    pids = {row["pid"] for row in read_epochs(output)}
    assert victim in pids and len(pids) == 2


@pytest.mark.docker
def test_a_killed_plain_keras_container_resumes_from_its_last_epoch(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path
) -> None:
    run = start(home, seed_repo(make_repo), "docker")
    try:
        output = wait_for_epoch(home, run, KILL_AFTER)
        run_id = output.parents[2].name
        trial_0 = [f"tweakops.run={run_id}", "tweakops.trial=0"]  # not the warm spare
        (container,) = docker_engine.containers.list(filters={"label": trial_0})
        container.kill()  # its restart is the spare made after its first epoch
        out, err = run.communicate(timeout=TIMEOUT)
    finally:
        run.kill()
    assert run.returncode == 0, err[-3000:]
    assert_resumed_once(json.loads(out), output)
