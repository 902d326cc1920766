"""Killed training comes back from its checkpoint; a killed tuner never repeats a finished trial."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from tests.conftest import start_tweakops, train_in_background
from tweakops.context import RunContext, run_stage
from tweakops.plan import make_plan
from tweakops.report.console import Console
from tweakops.stages import inspect, pull
from tweakops.store import RunStore
from tweakops.trials import execute_trial

# A resumable "training" that checkpoints every epoch with the training/ helpers.
COUNTER_SCRIPT = """\
import time
import sklearn  # noqa: F401  (picks the sklearn image)
import training

epochs = training.param("epochs", 20)
checkpoint = training.SklearnCheckpoint()
state = checkpoint.load()
start = state[1] + 1 if state else 1
for epoch in range(start, epochs + 1):
    time.sleep(training.param("epoch_seconds", 0.2))
    checkpoint.save({"epoch": epoch}, epoch)
    training.log_epoch(epoch, accuracy=epoch / epochs)
training.write_metric(0.5 + training.param("quality", 0.0))
"""
SLOW_SPACE = """\
threshold: 1.0
max_trials: 5
search_space:
  quality: {type: float, low: 0.0, high: 0.4}
  epoch_seconds: [0.15]
  epochs: [8]
"""


def epochs_by_pid(output: Path) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for line in (output / "epochs.jsonl").read_text().splitlines():
        row = json.loads(line)
        seen.setdefault(row["pid"], []).append(row["epoch"])
    return seen


def wait_for_epoch(output: Path, epoch: int, timeout: float = 60) -> int:
    """Poll the harness's epoch log; return the pid that logged `epoch`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (output / "epochs.jsonl").exists():
            rows = [json.loads(x) for x in (output / "epochs.jsonl").read_text().splitlines() if x]
            if rows and rows[-1]["epoch"] >= epoch:
                return int(rows[-1]["pid"])
        time.sleep(0.05)
    raise AssertionError(f"epoch {epoch} never logged in {output}")


def test_trial_resumes_from_last_epoch_after_sigkill(make_repo, home: Path) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT})
    store = RunStore(home)
    ctx = RunContext(store, store.create_run(str(repo)), Console(quiet=True), "local")
    run_stage(ctx, "pull", pull)
    run_stage(ctx, "inspect", inspect)
    plan = make_plan(ctx)
    output = ctx.folder / "trials" / "001" / "output"
    result: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            record=execute_trial(ctx, plan, 1, {"epochs": 15, "epoch_seconds": 0.2}, timeout=120)
        )
    )
    worker.start()
    os.kill(wait_for_epoch(output, 4), signal.SIGKILL)
    worker.join(120)
    record = result["record"]
    assert record.status == "succeeded" and record.restarts == 1  # type: ignore[attr-defined]
    (before, after) = epochs_by_pid(output).values()
    assert after[0] in (before[-1], before[-1] + 1)  # at most one epoch is done again
    assert after[-1] == 15
    restarted = store.events(ctx.run.id, "trial_restarted")
    assert restarted[0].data["resumed_from_epoch"] == before[-1]
    assert "killed by SIGKILL" in restarted[0].message


def test_watch_resumes_a_run_whose_agent_and_training_died(make_repo, cli, home: Path) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT, "tweakops.yaml": "threshold: 0.5\n"})
    run_id, train = train_in_background(cli, home, repo)
    output = home / "runs" / run_id / "trials" / "000" / "output"
    trainer_pid = wait_for_epoch(output, 3)
    train.kill()  # the agent dies...
    train.wait()
    os.kill(trainer_pid, signal.SIGKILL)  # ...and takes its training process with it
    watched = cli("--json", "watch", "--all")
    assert watched.returncode == 0, watched.stderr
    (swept,) = json.loads(watched.stdout)["runs"]
    assert swept["run_id"] == run_id and swept["action"] == "resumed", swept
    before, after = epochs_by_pid(output).values()
    assert after[0] in (before[-1], before[-1] + 1)
    status = json.loads(cli("--json", "status", "--run", run_id).stdout)
    assert status["trials"][0]["status"] == "succeeded"
    assert status["run"]["status"] == "reached"  # the pipeline went on: tune, notify
    resumed = [e for e in status["events"] if e["kind"] == "trial_resumed"]
    assert resumed[0]["data"]["resumed_from_epoch"] == before[-1]


def test_watch_adopts_a_trial_that_outlived_its_agent(make_repo, cli, home: Path) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT, "tweakops.yaml": "threshold: 0.5\n"})
    run_id, train = train_in_background(cli, home, repo)
    output = home / "runs" / run_id / "trials" / "000" / "output"
    wait_for_epoch(output, 3)
    train.kill()  # the agent dies; its training process (own session) goes on
    train.wait()
    watched = cli("--json", "watch", "--run", run_id)
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["runs"][0]["action"] == "resumed"
    (only,) = epochs_by_pid(output).values()  # one process did every epoch: nothing redone
    assert only == list(range(1, 21))
    status = json.loads(cli("--json", "status", "--run", run_id).stdout)
    assert status["trials"][0]["status"] == "succeeded"
    assert status["trials"][0]["restarts"] == 0
    assert [e["kind"] for e in status["events"]].count("trial_adopted") == 1


def test_watch_leaves_a_run_to_the_live_process_that_holds_it(make_repo, cli, home: Path) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT, "tweakops.yaml": "threshold: 0.5\n"})
    run_id, train = train_in_background(cli, home, repo)
    wait_for_epoch(home / "runs" / run_id / "trials" / "000" / "output", 2)
    watched = cli("--json", "watch", "--all")
    assert train.wait(60) == 0
    assert watched.returncode == 0, watched.stderr
    (swept,) = json.loads(watched.stdout)["runs"]
    assert swept["action"] == "watched" and f"pid {train.pid}" in swept["detail"]
    status = json.loads(cli("--json", "status", "--run", run_id).stdout)
    assert status["trials"][0]["restarts"] == 0


def test_killed_tuner_resumes_without_repeating_a_finished_trial(
    make_repo, cli, home: Path
) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT, "tweakops.yaml": SLOW_SPACE})
    run_id = cli("pull", str(repo)).stdout.strip().splitlines()[-1]
    for stage in ("inspect", "train"):
        assert cli(stage, "--run", run_id).returncode == 0
    tuner = start_tweakops(home, "tune", "--run", run_id)
    store = RunStore(home)
    deadline = time.monotonic() + 120
    while len([t for t in store.trials(run_id) if t.status == "succeeded"]) < 3:
        assert time.monotonic() < deadline and tuner.poll() is None
        time.sleep(0.1)
    wait_for_epoch(home / "runs" / run_id / "trials" / "003" / "output", 2)
    tuner.kill()
    tuner.wait()
    finished = {t.number: t for t in store.trials(run_id) if t.status == "succeeded"}
    resumed = cli("tune", "--run", run_id)
    assert resumed.returncode == 3, resumed.stderr  # threshold 1.0: budget spent, not reached
    trials = store.trials(run_id)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    for number, before in finished.items():
        assert trials[number] == before  # finished trials are never run again
    assert "max_trials (5) spent" in store.get_run(run_id).verdict  # type: ignore[operator]
