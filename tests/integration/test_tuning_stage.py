"""The tune stage end to end: real trial processes (local runtime), the real CLI, one study.

The training script logs a val_accuracy curve per epoch and writes `quality` as its metric,
so each test chooses, through the search space or the ladder, which trials are good, bad,
crash or run long. Epochs are short; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml as yamllib

from tests.conftest import start_tweakops
from tests.integration.test_resume import wait_for_epoch
from training import read_epochs
from tweakops.store import RunStore

CURVE_SCRIPT = """\
import os
import time

import training

epochs = training.param("epochs", 3)
quality = training.param("quality", 0.5)
pause = training.param("epoch_seconds", 0.05)
if os.environ["TWEAKOPS_TRIAL"] == str(training.param("slow_trial", -1)):
    pause = 5.0  # this one trial would run for a long time
if training.param("crash", False):
    raise SystemExit("this configuration always crashes")
for epoch in range(1, epochs + 1):
    time.sleep(pause)
    training.log_epoch(epoch, val_accuracy=quality * epoch / epochs)
training.write_metric(quality)
"""
SKLEARN_HELPER = "import sklearn  # noqa: F401  (the sklearn image)\n"
EXIT_REACHED, EXIT_CONFIG, EXIT_NOT_REACHED = 0, 2, 3

Cli = Callable[..., subprocess.CompletedProcess[str]]


def repo_with(make_repo: Callable[..., Path], yaml: str) -> Path:
    """A repo whose tweakops.yaml is `yaml`, one trial at a time unless it says otherwise:
    these tests count trials in order (trials at once: test_parallel_* here and
    tests/unit/test_tuner_loop.py)."""
    try:
        config = yamllib.safe_load(yaml)
    except yamllib.YAMLError:
        config = None  # a test of a broken file: as it is
    if isinstance(config, dict) and "parallel" not in yaml:
        tuning = config.setdefault("tuning", {})
        if isinstance(tuning, dict):
            tuning.setdefault("parallel", 1)
        yaml = yamllib.safe_dump(config, sort_keys=False)
    return make_repo(
        files={"train.py": CURVE_SCRIPT, "model.py": SKLEARN_HELPER, "tweakops.yaml": yaml}
    )


def run_json(cli: Cli, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`tweakops --json run ...`: the process and its run snapshot."""
    done = cli("--json", "run", *args)
    assert done.stdout.strip(), done.stderr
    return done, json.loads(done.stdout)


def status(cli: Cli, run_id: str) -> dict[str, Any]:
    shown = cli("--json", "status", "--run", run_id)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def tuned(snapshot: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [s for s in snapshot["stages"] if s["name"] == "tune"]
    assert stage["status"] == "succeeded", stage
    return dict(stage["result"])


def trained_run(cli: Cli, repo: Path) -> str:
    """pull, inspect and train (trial 0): the run's id, ready for `tweakops tune`."""
    pulled = cli("pull", str(repo))
    assert pulled.returncode == 0, pulled.stderr
    run_id = pulled.stdout.strip().splitlines()[-1]
    for stage in ("inspect", "train"):
        done = cli(stage, "--run", run_id)
        assert done.returncode == 0, f"{stage}: {done.stderr}"
    return run_id


def start_tune(home: Path, run_id: str, *flags: str) -> subprocess.Popen[bytes]:
    return start_tweakops(home, "tune", "--run", run_id, *flags)


def study_of(home: Path, run_id: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(
        study_name=f"tweakops-{run_id}", storage=f"sqlite:///{home}/tweakops.db"
    )


def epochs_logged(trial: dict[str, Any]) -> list[int]:
    return [int(row["epoch"]) for row in read_epochs(Path(trial["folder"]) / "output")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- stop rules ------------------------------------------------------------------------------


def test_the_first_trial_reaching_the_threshold_ends_tuning(make_repo, cli: Cli) -> None:
    yaml = """\
threshold: 0.9
max_trials: 10
search_space:
  quality: [0.3, 0.95]
"""
    done, snapshot = run_json(cli, str(repo_with(make_repo, yaml)))
    assert done.returncode == EXIT_REACHED, done.stderr
    trials = snapshot["trials"]
    *before, last = trials[1:]
    assert last["accuracy"] == 0.95 and last["status"] == "succeeded"
    assert all(t["accuracy"] == 0.3 for t in before)  # nothing ran after the first 0.95
    result = tuned(snapshot)
    assert result["rule"] == "threshold" and result["outcome"] == "reached"
    assert result["reached"] is True and result["best_trial"] == last["number"]
    assert result["best_params"] == {"quality": 0.95}
    assert snapshot["run"]["status"] == "reached"
    assert result["verdict"].startswith(f"threshold 0.9 reached: 0.9500 at trial {last['number']}")
    folder = Path(snapshot["folder"])
    assert float((folder / "accuracy.txt").read_text()) == 0.95


GROW_YAML = """\
threshold: 0.9
max_trials: 2
search_space:
  epochs: {type: int, low: 1, high: 4}
  quality: [0.3, 0.5, 0.7]
  epoch_seconds: [0.01, 0.05]
"""


def test_the_first_tuned_trial_grows_trial_zero_each_size_knob_at_its_top(
    make_repo, cli: Cli
) -> None:
    done, snapshot = run_json(cli, str(repo_with(make_repo, GROW_YAML)))
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    trial0, trial1 = snapshot["trials"]
    assert trial0["params"] == {}
    # epochs is a size: its top; quality and epoch_seconds are not: what train.py used
    assert trial1["params"] == {"epochs": 4, "quality": 0.5, "epoch_seconds": 0.05}
    assert epochs_logged(trial1) == [1, 2, 3, 4]
    (grown,) = [e for e in snapshot["events"] if e["kind"] == "first_trial_grown"]
    assert grown["message"] == "the first trial grows trial 0: epochs 4"
    assert grown["data"]["params"] == trial1["params"]


def test_grow_first_false_leaves_the_first_trial_to_the_sampler(make_repo, cli: Cli) -> None:
    yaml = GROW_YAML.replace("max_trials: 2", "max_trials: 2\ntuning: {grow_first: false}")
    done, snapshot = run_json(cli, str(repo_with(make_repo, yaml)))
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    assert len(snapshot["trials"]) == 2
    assert not [e for e in snapshot["events"] if e["kind"] == "first_trial_grown"]


@pytest.mark.parametrize(
    ("yaml", "rule", "outcome", "wording", "statuses"),
    [
        pytest.param(
            "max_trials: 3\nsearch_space:\n  quality: [0.3, 0.4]\n",
            "max_trials",
            "budget spent",
            "max_trials (3) spent",
            ["succeeded"] * 3,
            id="max_trials",
        ),
        pytest.param(
            "max_trials: 10\ntuning: {patience: 2}\nsearch_space:\n  quality: [0.3, 0.4]\n",
            "patience",
            "stalled",
            "no new best in the last 2 trial(s)",
            ["succeeded"] * 3,
            id="patience",
        ),
        pytest.param(
            "max_trials: 10\nsearch_space:\n  crash: [true]\n",
            "failures",
            "stalled",
            "3 trials in a row failed",
            ["succeeded", "failed", "failed", "failed"],
            id="failures",
        ),
        pytest.param(
            "time_budget: 2\nsearch_space:\n  epochs: [200]\n  epoch_seconds: [0.1]\n",
            "time_budget",
            "budget spent",
            "time_budget (2 s) spent",
            None,  # trial 1 is stopped by the budget (and a later one may start at its end)
            id="time_budget",
        ),
    ],
)
def test_each_stop_rule_ends_the_run_with_its_outcome(
    make_repo,
    cli: Cli,
    yaml: str,
    rule: str,
    outcome: str,
    wording: str,
    statuses: list[str] | None,
) -> None:
    done, snapshot = run_json(cli, str(repo_with(make_repo, f"threshold: 0.9\n{yaml}")))
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    result = tuned(snapshot)
    assert result["rule"] == rule and result["outcome"] == outcome
    assert result["reached"] is False
    assert result["verdict"].startswith(f"{outcome}: threshold 0.9 not reached, {wording}")
    assert snapshot["run"]["status"] == "not_reached"
    assert snapshot["run"]["verdict"] == result["verdict"]
    if statuses is not None:
        assert [t["status"] for t in snapshot["trials"]] == statuses
    else:
        first, *late = snapshot["trials"]
        assert first["status"] == "succeeded" and late
        assert all(t["status"] == "failed" and t["verdict"] == "timeout" for t in late)
    assert result["best_trial"] == 0 and "best 0.5000 at trial 0" in result["verdict"]


# --- pruning ---------------------------------------------------------------------------------

PRUNING_YAML = """\
threshold: 1.0
max_trials: 6
search_space:
  quality: {type: float, low: 0.05, high: 0.95}
  epochs: [8]
  epoch_seconds: [0.15]
tuning:
  seed: 0
  pruning: {metric: val_accuracy, warmup_epochs: 1, startup_trials: 2}
"""


def test_a_hopeless_trial_is_pruned_early_and_tuning_goes_on(
    make_repo, cli: Cli, home: Path
) -> None:
    done, snapshot = run_json(cli, str(repo_with(make_repo, PRUNING_YAML)))
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    trials = snapshot["trials"]
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned, [(t["number"], t["status"], t["params"]) for t in trials]
    for trial in pruned:
        logged = epochs_logged(trial)
        assert logged and max(logged) < 8  # stopped before its configured epochs
        assert trial["accuracy"] is None and trial["verdict"] == "pruned"
        assert trial["error"].startswith(f"pruned after epoch {max(logged)}: below the median")
        # its curve (quality * epoch / 8) was below the median of the trials finished before
        earlier = [
            t["params"]["quality"]
            for t in trials[1:]
            if t["status"] == "succeeded" and t["ended"] <= trial["started"]
        ]
        assert len(earlier) >= 2 and trial["params"]["quality"] < statistics.median(earlier)
    events = [e for e in snapshot["events"] if e["kind"] == "trial_pruned"]
    assert sorted(e["data"]["trial"] for e in events) == [t["number"] for t in pruned]
    # tuning went on after the first pruned trial, to max_trials
    assert [t["number"] for t in trials] == list(range(6))
    assert all(t["status"] in ("succeeded", "pruned") for t in trials)
    assert tuned(snapshot)["rule"] == "max_trials"
    states = {t.number + 1: t.state for t in study_of(home, snapshot["run"]["id"]).trials}
    for trial in trials[1:]:
        expected = "PRUNED" if trial["status"] == "pruned" else "COMPLETE"
        assert states[trial["number"]].name == expected


# --- parallel trials -------------------------------------------------------------------------

PARALLEL_YAML = """\
threshold: 0.99
max_trials: 3
search_space:
  quality: [0.3, 0.4]
  epochs: [6]
  epoch_seconds: [0.25]
tuning:
  pruning: false
"""


@pytest.mark.parametrize("how", ["run --parallel 2", "tune --parallel 2"])
def test_two_trials_run_at_once_into_one_study(make_repo, cli: Cli, home: Path, how: str) -> None:
    repo = repo_with(make_repo, PARALLEL_YAML)
    if how.startswith("run"):
        done, snapshot = run_json(cli, str(repo), "--parallel", "2")
        run_id = snapshot["run"]["id"]
    else:
        run_id = trained_run(cli, repo)
        done = cli("--json", "tune", "--run", run_id, "--parallel", "2")
        snapshot = status(cli, run_id)
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    first, second = snapshot["trials"][1:]
    assert first["status"] == second["status"] == "succeeded"
    # the two [started, ended] intervals overlap: both ran at the same time
    assert max(first["started"], second["started"]) < min(first["ended"], second["ended"])
    study = study_of(home, run_id)
    assert sorted(t.number + 1 for t in study.trials) == [1, 2]
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    by_number = {t.number + 1: t for t in study.trials}
    for trial in (first, second):
        assert by_number[trial["number"]].params == trial["params"]
        assert by_number[trial["number"]].value == trial["accuracy"]
    assert tuned(snapshot)["rule"] == "max_trials" and tuned(snapshot)["trials"] == 3


def test_the_threshold_cancels_a_sibling_still_training(make_repo, cli: Cli, home: Path) -> None:
    yaml = """\
threshold: 0.9
max_trials: 10
search_space:
  quality: [0.95]
  slow_trial: [2]
  epochs: [4]
tuning:
  pruning: false
"""
    done, snapshot = run_json(cli, str(repo_with(make_repo, yaml)), "--parallel", "2")
    assert done.returncode == EXIT_REACHED, done.stderr
    first, second = snapshot["trials"][1:]
    assert first["status"] == "succeeded" and first["accuracy"] == 0.95
    assert second["status"] == "cancelled" and second["accuracy"] is None
    assert max(epochs_logged(second), default=0) < 4  # killed mid-training
    assert second["error"].startswith("cancelled after epoch ")
    assert "decided by another trial" in second["error"]
    (event,) = [e for e in snapshot["events"] if e["kind"] == "trial_cancelled"]
    assert event["data"]["trial"] == 2
    result = tuned(snapshot)
    assert result["rule"] == "threshold" and result["best_trial"] == 1
    (stopped,) = [t for t in study_of(home, snapshot["run"]["id"]).trials if t.number == 1]
    assert stopped.state.name == "FAIL" and stopped.user_attrs["stopped"] == "cancelled"


# --- the escalate strategy -------------------------------------------------------------------

LADDER_YAML = """\
threshold: 0.9
max_trials: 10
tuning:
  strategy: escalate
  ladder:
    - {{quality: {0}, epochs: 2}}
    - {{quality: {1}, epochs: 3}}
    - {{quality: {2}, epochs: 4}}
"""


def test_escalate_climbs_the_ladder_until_a_rung_reaches_the_threshold(make_repo, cli: Cli) -> None:
    done, snapshot = run_json(cli, str(repo_with(make_repo, LADDER_YAML.format(0.3, 0.95, 0.99))))
    assert done.returncode == EXIT_REACHED, done.stderr
    trials = snapshot["trials"]
    assert [t["params"] for t in trials] == [
        {},
        {"quality": 0.3, "epochs": 2},
        {"quality": 0.95, "epochs": 3},
    ]
    assert [max(epochs_logged(t)) for t in trials[1:]] == [2, 3]
    result = tuned(snapshot)
    assert result["strategy"] == "escalate" and result["rule"] == "threshold"
    assert result["outcome"] == "reached" and result["best_trial"] == 2


def test_a_ladder_that_never_reaches_spends_its_budget(make_repo, cli: Cli) -> None:
    done, snapshot = run_json(cli, str(repo_with(make_repo, LADDER_YAML.format(0.3, 0.4, 0.6))))
    assert done.returncode == EXIT_NOT_REACHED, done.stderr
    assert [t["params"].get("quality") for t in snapshot["trials"]] == [None, 0.3, 0.4, 0.6]
    result = tuned(snapshot)
    assert result["rule"] == "ladder" and result["outcome"] == "budget spent"
    assert "the ladder's 3 rung(s) are all trained" in result["verdict"]
    assert result["best_trial"] == 3 and result["best_accuracy"] == 0.6


SLOW_LADDER_YAML = """\
threshold: 0.9
max_trials: 10
tuning:
  strategy: escalate
  ladder:
    - {quality: 0.3, epochs: 3, epoch_seconds: 0.1}
    - {quality: 0.4, epochs: 6, epoch_seconds: 0.25}
    - {quality: 0.5, epochs: 3, epoch_seconds: 0.1}
"""


def test_a_killed_escalation_resumes_on_the_rung_it_was_on(make_repo, cli: Cli, home: Path) -> None:
    run_id = trained_run(cli, repo_with(make_repo, SLOW_LADDER_YAML))
    tuner = start_tune(home, run_id)
    store = RunStore(home)
    deadline = time.monotonic() + 60
    while not [t for t in store.trials(run_id) if t.number == 1 and t.status == "succeeded"]:
        assert time.monotonic() < deadline and tuner.poll() is None
        time.sleep(0.05)
    wait_for_epoch(home / "runs" / run_id / "trials" / "002" / "output", 2)
    tuner.kill()  # the tuner dies on rung 2; its training process goes on
    tuner.wait()
    rung_one = {t.number: t for t in store.trials(run_id)}[1]
    resumed = cli("--json", "tune", "--run", run_id)
    assert resumed.returncode == EXIT_NOT_REACHED, resumed.stderr
    trials = store.trials(run_id)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[1] == rung_one  # a finished rung is never trained again
    assert [t.status for t in trials] == ["succeeded"] * 4
    followed = store.events(run_id, "trial_adopted") + store.events(run_id, "trial_resumed")
    assert [e.data["trial"] for e in followed] == [2]  # rung 2 was picked up, not restarted anew
    assert json.loads(resumed.stdout)["rule"] == "ladder"


# --- the accuracy plot -----------------------------------------------------------------------


def test_the_plot_is_rewritten_after_every_finished_trial(make_repo, cli: Cli, home: Path) -> None:
    yaml = """\
threshold: 0.99
max_trials: 5
search_space:
  quality: [0.3, 0.4, 0.6]
  epochs: [4]
  epoch_seconds: [0.15]
tuning:
  pruning: false
"""
    run_id = trained_run(cli, repo_with(make_repo, yaml))
    plot = home / "runs" / run_id / "accuracy.png"
    assert not plot.exists()
    store = RunStore(home)
    tuner = start_tune(home, run_id)
    versions: list[tuple[int, int, int]] = []
    finished_when_seen: list[int] = []
    while tuner.poll() is None:
        try:
            seen = plot.stat()
        except FileNotFoundError:
            seen = None
        if seen is not None:
            version = (seen.st_ino, seen.st_mtime_ns, seen.st_size)
            if not versions or versions[-1] != version:
                versions.append(version)
                finished_when_seen.append(
                    len([t for t in store.trials(run_id) if t.number > 0 and t.ended])
                )
        time.sleep(0.01)
    assert tuner.returncode == EXIT_NOT_REACHED
    tuning_trials = [t for t in store.trials(run_id) if t.number > 0]
    assert len(tuning_trials) == 4
    # one new plot per finished trial, each written after that trial was recorded
    assert finished_when_seen == [1, 2, 3, 4]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_mtime >= max(t.ended or 0 for t in tuning_trials)


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "search_space:\n  lr: {type: float, low: 1, high: 0.1}\n",
            "error: search_space in tweakops.yaml: lr: low must be below high, got low=1 high=0.1",
        ),
        (
            "search_space:\n  units: {type: int, low: 8, hihg: 64}\n",
            "error: search_space in tweakops.yaml: units: unknown key 'hihg' for a int",
        ),
        (
            "search_space:\n  lr: {type: gaussian}\n",
            "error: search_space in tweakops.yaml: lr.type must be one of float, int, categorical",
        ),
        (
            "tuning: {parallel: 0}\n",
            "error: tuning.parallel in tweakops.yaml must be auto or a whole number from 1 to 64, "
            "got 0",
        ),
        (
            "tuning: {strategy: escalate}\n",
            "error: tuning.strategy escalate in tweakops.yaml needs tuning.ladder",
        ),
        (
            "tuning: {storage: 'postgresql://me:hunter2secret@db/studies'}\n",
            "error: tuning.storage in tweakops.yaml holds a password",
        ),
    ],
    ids=["low-high", "unknown-key", "bad-type", "parallel", "escalate", "password"],
)
def test_configuration_errors_exit_2_with_one_line_naming_the_key(
    make_repo, cli: Cli, yaml: str, expected: str
) -> None:
    repo = repo_with(make_repo, f"threshold: 0.9\n{yaml}")
    done = cli("run", str(repo))
    assert done.returncode == EXIT_CONFIG, done.stderr
    (line,) = error_lines(done.stderr)
    assert line.startswith(expected), line
    assert done.stderr.strip().splitlines()[-1] == line
    assert "hunter2secret" not in done.stderr + done.stdout
    latest = cli("--json", "status")
    assert latest.returncode == 0, latest.stderr
    assert not (Path(json.loads(latest.stdout)["folder"]) / "trials").exists()  # none trained


def test_a_bad_parallel_flag_is_refused_before_a_run_is_made(make_repo, cli: Cli) -> None:
    repo = repo_with(make_repo, "threshold: 0.9\n")
    done = cli("run", str(repo), "--parallel", "0")
    assert done.returncode == EXIT_CONFIG
    (line,) = error_lines(done.stderr)
    assert line.startswith("error: --parallel must be auto or a whole number from 1 to 64")
    assert cli("runs").stdout.startswith("no runs")
