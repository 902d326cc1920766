"""The watchdog on the local runtime: real trial processes, real faults, the real CLI.

Faults are injected into running trials (SIGKILL at seeded random moments, a torn
checkpoint, a crash of the user's code) and into the tweakops processes that own a run (an
agent killed mid-train, two watchdogs racing, a second command while a live one works).
What is checked is what a user would check: the accuracy is the one of an undisturbed run
(the iris example is deterministic), completed epochs are not trained again, every restart
is an event naming its cause and epoch, and one run is only ever worked on by one process.

The iris example is copied with two edits to its defaults: 36 epochs, and a per-epoch sleep
read from IRIS_EPOCH_SECONDS (default 0.2 s; the undisturbed baseline runs with 0). The
sleep only stretches time: what is computed is the same.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, git, start_tweakops, tweakops_env
from tests.conftest import train_in_background as shared_train_in_background
from training import SklearnCheckpoint, read_epochs
from tweakops.store import RunStore

EPOCHS = 36
KILLS = 11  # planned SIGKILLs; at least 10 must land
LAST_KILL_EPOCH = 32  # no kill once this epoch is logged: never race the trial's own exit
SEED = 20240611
TIMEOUT = 300.0  # for a whole run to end; a wait, never asserted as a duration

IRIS_YAML = """\
entrypoint: train.py
metric: accuracy
threshold: 0.5      # the defaults score above it: the run ends after trial 0
max_trials: 1
time_budget: 600
watchdog: {max_restarts: 15, backoff: 0.1, backoff_max: 0.2}
"""

# A resumable counter that checkpoints every epoch (requirements.txt picks the sklearn image,
# so a start costs no scikit-learn import). It exits with 3 once, after logging epoch
# CRASH_AT (0: before any epoch), marking TWEAKOPS_OUTPUT/crashed so a restart goes on.
COUNTER_SCRIPT = """\
import sys
import time

import training

EPOCHS, EPOCH_SECONDS, CRASH_AT = {epochs}, {epoch_seconds}, {crash_at}
marker = training.output_dir() / "crashed"
if CRASH_AT == 0 and not marker.exists():
    marker.write_text("before any epoch")
    print("simulated crash before the first epoch", flush=True)
    sys.exit(3)
checkpoint = training.SklearnCheckpoint()
state = checkpoint.load()
start = state[1] + 1 if state else 1
for epoch in range(start, EPOCHS + 1):
    time.sleep(EPOCH_SECONDS)
    checkpoint.save({{"epoch": epoch}}, epoch)
    training.log_epoch(epoch, accuracy=epoch / EPOCHS)
    if epoch == CRASH_AT and not marker.exists():
        marker.write_text(f"after epoch {{epoch}}")
        print(f"simulated crash after epoch {{epoch}}", flush=True)
        sys.exit(3)
training.write_metric(0.75)
"""

# Holds a run's lease in a process of its own until its stdin is closed.
LEASE_HOLDER = """\
import sys
from pathlib import Path

from monitor import run_lease
from tweakops.store import RunStore

with run_lease(RunStore(Path(sys.argv[1])), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""

# Runs the CLI once a gate file exists: two of them start their sweeps at the same moment.
GATED_CLI = """\
import sys
import time
from pathlib import Path

from tweakops.cli import main

ready, gate = Path(sys.argv[1]), Path(sys.argv[2])
ready.write_text("ready")
while not gate.exists():
    time.sleep(0.001)
main(sys.argv[3:])
"""


def counter_repo(
    make_repo: Callable[..., Path], epochs: int, epoch_seconds: float, crash_at: int = -1
) -> Path:
    script = COUNTER_SCRIPT.format(epochs=epochs, epoch_seconds=epoch_seconds, crash_at=crash_at)
    return make_repo(
        files={
            "train.py": script,
            "requirements.txt": "scikit-learn\n",
            "tweakops.yaml": "threshold: 0.5\nwatchdog: {backoff: 0.1, backoff_max: 0.2}\n",
        }
    )


def spawn(home: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    """`tweakops ARGS` in the background; stdout and stderr are captured."""
    pipe = subprocess.PIPE
    env = tweakops_env(home, **extra)
    return start_tweakops(home, *args, env=env, stdout=pipe, stderr=pipe, text=True)


def run_folder(home: Path, timeout: float = 60) -> Path:
    """The folder of the only run in `home`, once `tweakops run` has created it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list((home / "runs").glob("*")) if (home / "runs").is_dir() else []
        if runs:
            (only,) = runs
            return only
        time.sleep(0.05)
    raise AssertionError(f"no run appeared in {home}")


def epochs_by_pid(output: Path) -> dict[int, list[int]]:
    """Epochs logged by each trial process, processes in the order they first logged."""
    seen: dict[int, list[int]] = {}
    for row in read_epochs(output):
        seen.setdefault(int(row["pid"]), []).append(int(row["epoch"]))
    return seen


def wait_for_epoch(output: Path, epoch: int, timeout: float = 60) -> int:
    """Poll the harness's epoch log until `epoch` is logged; the pid that logged the last line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_epochs(output)
        if rows and rows[-1]["epoch"] >= epoch:
            return int(rows[-1]["pid"])
        time.sleep(0.02)
    raise AssertionError(f"epoch {epoch} never logged in {output}")


def events(snapshot: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in snapshot["events"] if e["kind"] == kind]


def train_in_background(cli: Any, home: Path, repo: Path) -> tuple[str, subprocess.Popen[str]]:
    """`tweakops train` as its own process (an agent); its stdout and stderr are captured."""
    pipe = subprocess.PIPE
    return shared_train_in_background(cli, home, repo, stdout=pipe, stderr=pipe, text=True)


def snapshot_of(cli: Any, run_id: str) -> dict[str, Any]:
    shown = cli("--json", "status", "--run", run_id)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def assert_no_completed_epoch_redone(segments: list[list[int]]) -> None:
    """Each process logged consecutive epochs; the next one went on after the last logged.

    An epoch is logged after its checkpoint is saved, so a killed process never makes the
    next one train a logged epoch again. The next may start one later than the last logged:
    the killed process saved that epoch's checkpoint but died before logging it.
    """
    assert segments[0][0] == 1, segments
    for segment in segments:
        assert segment == list(range(segment[0], segment[-1] + 1)), segments
    for before, after in itertools.pairwise(segments):
        assert after[0] in (before[-1] + 1, before[-1] + 2), segments
    assert segments[-1][-1] == EPOCHS, segments


# --- the iris example, once per module --------------------------------------------------------


@pytest.fixture(scope="module")
def iris_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of examples/iris-sklearn: 36 epochs, a slow epoch, a quick watchdog."""
    repo = tmp_path_factory.mktemp("iris") / "repo"
    repo.mkdir()
    script = (EXAMPLES / "iris-sklearn" / "train.py").read_text()
    edits = {
        'EPOCHS = training.param("epochs", 20)': f'EPOCHS = training.param("epochs", {EPOCHS})',
        'training.param("epoch_seconds", 0.0)': (
            'training.param("epoch_seconds", float(os.environ.get("IRIS_EPOCH_SECONDS", "0.2")))'
        ),
        "import time\n": "import os\nimport time\n",
    }
    for old, new in edits.items():
        assert script.count(old) == 1, f"examples/iris-sklearn/train.py no longer has {old!r}"
        script = script.replace(old, new)
    (repo / "train.py").write_text(script)
    (repo / "tweakops.yaml").write_text(IRIS_YAML)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "iris with slow epochs")
    return repo


@pytest.fixture(scope="module")
def baseline(iris_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """Trial 0's accuracy in an undisturbed run of the same repo (no sleep per epoch)."""
    home = tmp_path_factory.mktemp("baseline") / "home"
    home.mkdir()
    done = spawn(home, "--json", "run", str(iris_repo), IRIS_EPOCH_SECONDS="0")
    out, err = done.communicate(timeout=TIMEOUT)
    assert done.returncode == 0, err
    (trial,) = json.loads(out)["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 0, trial
    output = Path(trial["folder"]) / "output"
    assert list(epochs_by_pid(output).values()) == [list(range(1, EPOCHS + 1))]
    return float(trial["accuracy"])


class Killer(threading.Thread):
    """SIGKILLs the trial process at seeded random delays after its first logged epoch.

    Each victim is the pid of the newest line in epochs.jsonl, once that pid has not been
    killed yet: every attempt logs at least one epoch, then dies 0-0.3 s later (in its sleep,
    its partial_fit, its checkpoint save or its log write, whichever comes).
    """

    def __init__(self, output: Path, rng: random.Random, planned: int) -> None:
        super().__init__(daemon=True, name="killer")
        self.output, self.rng, self.planned = output, rng, planned
        self.killed: list[int] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while len(self.killed) < self.planned and not self.stop.is_set():
                rows = read_epochs(self.output)
                if not rows or int(rows[-1]["pid"]) in self.killed:
                    time.sleep(0.01)
                    continue
                if rows[-1]["epoch"] >= LAST_KILL_EPOCH:
                    return
                time.sleep(self.rng.uniform(0.0, 0.3))
                os.kill(int(rows[-1]["pid"]), signal.SIGKILL)
                self.killed.append(int(rows[-1]["pid"]))
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)


def test_sigkills_at_random_moments_change_nothing_but_the_time(
    iris_repo: Path, baseline: float, home: Path
) -> None:
    running = spawn(home, "--json", "run", str(iris_repo))
    output = run_folder(home) / "trials" / "000" / "output"
    killer = Killer(output, random.Random(SEED), KILLS)
    killer.start()
    try:
        out, err = running.communicate(timeout=TIMEOUT)
    finally:
        killer.stop.set()
        killer.join(10)
        running.kill()
    assert killer.errors == []
    assert running.returncode == 0, err
    kills = killer.killed
    assert len(kills) >= 10, f"only {len(kills)} kills landed before epoch {LAST_KILL_EPOCH}"

    snapshot = json.loads(out)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["verdict"] == "ok"
    assert trial["accuracy"] == baseline  # deterministic training: the very same number
    assert trial["restarts"] == len(kills)
    assert snapshot["run"]["status"] == "reached"

    by_pid = epochs_by_pid(output)
    assert list(by_pid)[:-1] == kills  # each killed attempt logged epochs; one more finished
    segments = list(by_pid.values())
    assert_no_completed_epoch_redone(segments)

    restarted = events(snapshot, "trial_restarted")
    assert len(restarted) == len(kills)
    for number, (event, killed) in enumerate(zip(restarted, segments, strict=False), start=1):
        assert event["data"]["cause"] == "killed by SIGKILL", event
        assert event["data"]["verdict"] == "infrastructure", event
        assert event["data"]["attempt"] == number, event
        assert event["data"]["resumed_from_epoch"] == killed[-1], (event, segments)
    log = (Path(trial["folder"]) / "log.txt").read_text()
    assert log.count("(restart after killed by SIGKILL) ---") == len(kills)
    assert RunStore(home).lease(snapshot["run"]["id"]) is None  # released at the end


def test_a_torn_checkpoint_is_passed_over_for_the_previous_good_one(
    iris_repo: Path, baseline: float, home: Path
) -> None:
    """After epoch 5 the trial is frozen, its newest checkpoint cut to half, then SIGKILLed.

    Measured: the restart rejects the cut checkpoint by its checksum, resumes after the one
    before it ("resuming after epoch bad-1" in its log), and so trains the cut checkpoint's
    epoch `bad` again: at most one completed (logged) epoch is done twice, exactly the one
    whose checkpoint was lost. The accuracy is still the undisturbed one.
    """
    running = spawn(home, "--json", "run", str(iris_repo))
    output = run_folder(home) / "trials" / "000" / "output"
    try:
        pid = wait_for_epoch(output, 5)
        os.kill(pid, signal.SIGSTOP)  # nothing moves in the checkpoint folder meanwhile
        folder = output / "checkpoints"
        steps = sorted(int(p.name[5:11]) for p in folder.glob("ckpt-*.json"))
        bad = steps[-1]
        payload = folder / f"ckpt-{bad:06d}.joblib"
        size = payload.stat().st_size
        os.truncate(payload, size // 2)
        assert SklearnCheckpoint(folder).latest_step() == bad - 1  # the checksum alone says so
        os.kill(pid, signal.SIGKILL)
        out, err = running.communicate(timeout=TIMEOUT)
    finally:
        running.kill()
    assert running.returncode == 0, err
    snapshot = json.loads(out)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 1
    assert trial["accuracy"] == baseline

    by_pid = epochs_by_pid(output)
    assert next(iter(by_pid)) == pid
    before, after = by_pid.values()
    assert after[0] == bad  # the cut checkpoint's epoch is trained again...
    assert before[-1] - after[0] + 1 <= 1  # ...and it is the only logged epoch done twice
    assert after == list(range(bad, EPOCHS + 1))
    log = (Path(trial["folder"]) / "log.txt").read_text()
    second = log.split("--- attempt 2 (restart after killed by SIGKILL) ---", 1)[1]
    assert f"resuming after epoch {bad - 1} " in second
    (restarted,) = events(snapshot, "trial_restarted")
    assert restarted["data"]["resumed_from_epoch"] == before[-1]


# --- the user's code fails --------------------------------------------------------------------


def test_a_nonzero_exit_after_progress_is_restarted_from_its_checkpoint(
    make_repo: Callable[..., Path], cli: Any
) -> None:
    repo = counter_repo(make_repo, epochs=6, epoch_seconds=0.05, crash_at=3)
    done = cli("--json", "run", str(repo))
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(done.stdout)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 1, trial
    (restarted,) = events(snapshot, "trial_restarted")
    assert restarted["data"]["cause"] == "exit 3"
    assert restarted["data"]["verdict"] == "code_error"
    assert restarted["data"]["resumed_from_epoch"] == 3
    output = Path(trial["folder"]) / "output"
    assert list(epochs_by_pid(output).values()) == [[1, 2, 3], [4, 5, 6]]
    log = (Path(trial["folder"]) / "log.txt").read_text()
    assert "--- attempt 2 (restart after exit 3) ---" in log


def test_a_crash_before_any_epoch_is_a_code_error_and_not_restarted(
    make_repo: Callable[..., Path], cli: Any
) -> None:
    repo = counter_repo(make_repo, epochs=6, epoch_seconds=0.05, crash_at=0)
    done = cli("--json", "run", str(repo))
    assert done.returncode == 1, done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "exit 3 (code error)" in errors[0], done.stderr
    runs = json.loads(cli("--json", "runs").stdout)
    snapshot = snapshot_of(cli, runs[0]["id"])
    (trial,) = snapshot["trials"]
    assert trial["status"] == "failed" and trial["verdict"] == "code_error", trial
    assert trial["restarts"] == 0
    assert events(snapshot, "trial_restarted") == []
    folder = Path(trial["folder"])
    assert (folder / "output" / "crashed").is_file()  # it did crash: a restart would succeed
    assert read_epochs(folder / "output") == []
    assert "--- attempt 2" not in (folder / "log.txt").read_text()


# --- processes that own a run -----------------------------------------------------------------


def test_two_watchdogs_started_together_resume_a_dead_run_once(
    make_repo: Callable[..., Path], cli: Any, home: Path, tmp_path: Path
) -> None:
    repo = counter_repo(make_repo, epochs=12, epoch_seconds=0.15)
    run_id, train = train_in_background(cli, home, repo)
    output = home / "runs" / run_id / "trials" / "000" / "output"
    trainer = wait_for_epoch(output, 3)
    train.kill()  # the agent dies...
    train.communicate()
    os.kill(trainer, signal.SIGKILL)  # ...and its training with it: nothing is running now
    gate = tmp_path / "gate"
    readies = [tmp_path / f"ready-{n}" for n in (1, 2)]
    watchers = [
        subprocess.Popen(
            [sys.executable, "-c", GATED_CLI, str(ready), str(gate), "--json", "watch", "--all"],
            env=tweakops_env(home),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies):
            assert time.monotonic() < deadline, "the watchers never got ready"
            time.sleep(0.01)
        gate.write_text("go")
        results = [w.communicate(timeout=TIMEOUT) for w in watchers]
    finally:
        for w in watchers:
            w.kill()
    swept = []
    for watcher, (out, err) in zip(watchers, results, strict=True):
        assert watcher.returncode == 0, err
        (one,) = json.loads(out)["runs"]
        assert one["run_id"] == run_id
        swept.append(one["action"])
    assert swept.count("resumed") == 1, swept  # one of them acted on the run...
    (other,) = [action for action in swept if action != "resumed"]
    assert other in ("watched", "finished"), swept  # ...the other found it taken or done
    snapshot = snapshot_of(cli, run_id)
    assert len(events(snapshot, "run_resumed")) == 1
    assert len(events(snapshot, "trial_resumed")) == 1
    assert events(snapshot, "trial_adopted") == []
    by_pid = epochs_by_pid(output)
    assert next(iter(by_pid)) == trainer and len(by_pid) == 2  # one process started after the kill
    before, after = by_pid.values()
    assert after[0] == before[-1] + 1 and after[-1] == 12
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 1
    assert snapshot["run"]["status"] == "reached"


def test_train_is_refused_while_a_live_process_holds_the_lease(
    make_repo: Callable[..., Path], cli: Any, home: Path
) -> None:
    repo = counter_repo(make_repo, epochs=3, epoch_seconds=0.01)
    pulled = cli("pull", str(repo))
    run_id = pulled.stdout.strip().splitlines()[-1]
    assert cli("inspect", "--run", run_id).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(home), run_id],
        env=tweakops_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = snapshot_of(cli, run_id)
        lease = RunStore(home).lease(run_id)
        refused = cli("train", "--run", run_id)
        assert refused.returncode == 1, refused.stdout
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith("error: run ") and f"pid {holder.pid} on " in lines[0]
        assert socket.gethostname() in lines[0]
        assert snapshot_of(cli, run_id) == before  # no stage, trial or event changed
        held = RunStore(home).lease(run_id)  # the holder renews it meanwhile: same owner
        assert held is not None and lease is not None and held.owner == lease.owner
        assert not (home / "runs" / run_id / "trials").exists()
    finally:
        holder.communicate(input="", timeout=30)  # closing stdin releases the lease
    assert holder.returncode == 0
    assert RunStore(home).lease(run_id) is None
    trained = cli("train", "--run", run_id)  # free again: the run was left usable
    assert trained.returncode == 0, trained.stderr


def test_watch_follow_leaves_a_live_train_alone_and_resumes_it_once_it_dies(
    make_repo: Callable[..., Path], cli: Any, home: Path
) -> None:
    # 40 epochs: after epoch 12 the trial still runs for 4 s, however slow the checks between.
    repo = counter_repo(make_repo, epochs=40, epoch_seconds=0.15)
    run_id, train = train_in_background(cli, home, repo)
    output = home / "runs" / run_id / "trials" / "000" / "output"
    wait_for_epoch(output, 1)
    follower = spawn(home, "--json", "watch", "--run", run_id, "--follow", "--poll", "0.5")
    try:
        once = cli("--json", "watch", "--run", run_id)  # what a sweep reports right now
        assert once.returncode == 0, once.stderr
        (swept,) = json.loads(once.stdout)["runs"]
        assert swept["action"] == "watched" and f"pid {train.pid} " in swept["detail"], swept
        assert events(snapshot_of(cli, run_id), "run_resumed") == []
        # A few of the follower's sweeps pass (it polls every 0.5 s) with the train alive;
        # a follower that resumed it would have ended.
        trainer = wait_for_epoch(output, 12)
        assert follower.poll() is None, follower.communicate()
        assert train.poll() is None
        train.kill()  # the agent...
        os.kill(trainer, signal.SIGKILL)  # ...and its trial process, together
        train.communicate()
        out, err = follower.communicate(timeout=TIMEOUT)
    finally:
        follower.kill()
        train.kill()
    assert follower.returncode == 0, err
    (swept,) = json.loads(out)["runs"]
    assert swept["run_id"] == run_id and swept["action"] == "resumed", swept
    snapshot = snapshot_of(cli, run_id)
    assert snapshot["run"]["status"] == "reached"
    assert len(events(snapshot, "run_resumed")) == 1
    (resumed,) = events(snapshot, "trial_resumed")
    before, after = epochs_by_pid(output).values()
    assert resumed["data"]["resumed_from_epoch"] == before[-1]
    assert after[0] == before[-1] + 1 and after[-1] == 40
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 1
