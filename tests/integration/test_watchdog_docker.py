"""The watchdog against a real Docker engine: faults injected into a running trial container.

Each test trains the iris example (examples/iris-sklearn/train.py, copied unchanged) in its
sklearn image, injects one fault once an epoch is logged, and checks what a user would:
the trial still succeeds with the accuracy of an undisturbed run (the example is
deterministic and its checkpoints carry the optimizer and random state), at most one epoch
is done again, and the run's events name each restart, its cause and its epoch.

Container pids repeat (docker-init is PID 1, the trial is always the same pid after it), so
the test's train.py tags every epoch with a token of its own process: `attempt`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    EXAMPLES,
    docker_client_or_none,
    git,
    run_tweakops,
    start_tweakops,
    tweakops_env,
)
from training import read_epochs

pytestmark = pytest.mark.docker

EPOCHS = 12  # the iris example scores about 0.73 after 12 epochs: above the 0.5 threshold
EPOCH_SECONDS = 0.4  # sleep per epoch (does not change what is computed)
FAULT_EPOCH = 3  # faults are injected once this epoch is logged
TIMEOUT = 240.0  # for a whole run to end; waits only, never asserted as a duration
SAME_ACCURACY = 1e-9

# The repo's entrypoint: the unchanged example, with test hooks around `training`.
TRAIN_SCRIPT = '''\
"""iris_example.py (examples/iris-sklearn/train.py, unchanged) with three test hooks:
defaults from defaults.json, an `attempt` token on every logged epoch, and one OOM on demand:
after an epoch is logged, if TWEAKOPS_OUTPUT/oom-once exists it is deleted and the process
touches far more memory than resources.memory allows, so the cgroup OOM-kills it."""
import json
import os
import uuid
from pathlib import Path

import training

ATTEMPT = uuid.uuid4().hex  # one per process: container pids repeat
DEFAULTS = json.loads(Path("defaults.json").read_text())
_param, _log_epoch = training.param, training.log_epoch


def param(name, default):
    return _param(name, DEFAULTS.get(name, default))


def log_epoch(epoch, **metrics):
    _log_epoch(epoch, attempt=ATTEMPT, **metrics)
    marker = training.output_dir() / "oom-once"
    if marker.exists():
        marker.unlink()
        folder = os.open(marker.parent, os.O_RDONLY)
        os.fsync(folder)  # never OOM twice: the restart must not find the marker
        os.close(folder)
        print(f"epoch {epoch}: allocating 1.5 GiB", flush=True)
        hog = bytearray(1536 * 1024 * 1024)
        for offset in range(0, len(hog), 4096):
            hog[offset] = 1
        print("still alive after touching 1.5 GiB: the memory limit did not hold", flush=True)


training.param, training.log_epoch = param, log_epoch
import iris_example  # noqa: E402  (reads its params at import: after the hooks)

iris_example.main()
'''

CONFIG = """\
entrypoint: train.py
metric: accuracy
threshold: 0.5
max_trials: 1
time_budget: 300
resources: {memory: 512m}
watchdog: {max_restarts: 5, backoff: 0.2, engine_wait: 120}
"""


def repo_files(epoch_seconds: float = EPOCH_SECONDS) -> dict[str, str]:
    """The test repo; only epoch_seconds varies between tests, and it is just a sleep."""
    return {
        "iris_example.py": (EXAMPLES / "iris-sklearn" / "train.py").read_text(),
        "train.py": TRAIN_SCRIPT,
        "defaults.json": json.dumps({"epochs": EPOCHS, "epoch_seconds": epoch_seconds}) + "\n",
        "tweakops.yaml": CONFIG,
    }


# ---- the CLI in a subprocess ------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    return tweakops_env(home, TWEAKOPS_RUNTIME="docker", **extra)


def tweakops(home: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`tweakops ARGS` to its end, on the docker runtime."""
    return run_tweakops(home, *args, env=_env(home), timeout=timeout)


@dataclass
class Background:
    """`tweakops ARGS` running in the background; its stderr goes to a file (never a pipe)."""

    process: subprocess.Popen[bytes]
    stderr: Path

    @classmethod
    def start(cls, home: Path, *args: str) -> Background:
        home.mkdir(parents=True, exist_ok=True)
        stderr = home.parent / f"tweakops-{args[0]}-{time.monotonic_ns()}.stderr"
        with stderr.open("wb") as err:
            process = start_tweakops(home, *args, env=_env(home), stderr=err)
        return cls(process, stderr)

    def tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:] if self.stderr.exists() else ""

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            self.process.wait()
            message = f"tweakops did not end in {timeout:.0f} s:\n{self.tail()}"
            raise AssertionError(message) from exc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def status(home: Path, run_id: str) -> dict[str, Any]:
    result = tweakops(home, "--json", "status", "--run", run_id)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


# ---- the trial's own output -------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], Any], alive: Background | None, limit: float) -> Any:
    """Poll `check` until it returns something truthy; fail early when `alive` has ended."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if alive is not None and alive.process.poll() is not None:
            raise AssertionError(f"tweakops ended before {what}:\n{alive.tail()}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {limit:.0f} s")


def trial_output(home: Path, alive: Background) -> tuple[str, Path]:
    """(run id, trial 0's output folder) of the only run in `home`, once the trial exists."""

    def find() -> tuple[str, Path] | None:
        for output in (home / "runs").glob("*/trials/000/output"):
            return output.parents[2].name, output
        return None

    found: tuple[str, Path] = wait_until("a trial folder", find, alive, 120)
    return found


def wait_for_epoch(output: Path, epoch: int, alive: Background) -> None:
    def logged() -> bool:
        rows = read_epochs(output)
        return bool(rows) and rows[-1]["epoch"] >= epoch

    wait_until(f"epoch {epoch} in {output}", logged, alive, 120)


def attempts(output: Path) -> list[list[int]]:
    """The epochs each process of the trial logged, in the order the processes ran."""
    seen: dict[str, list[int]] = {}
    for row in read_epochs(output):
        seen.setdefault(str(row["attempt"]), []).append(int(row["epoch"]))
    return list(seen.values())


def trial_log(output: Path) -> str:
    return (output.parent / "log.txt").read_text(errors="replace")


def containers_of(client: Any, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"tweakops.run={run_id}"}))


def running_container(client: Any, run_id: str) -> Any:
    (container,) = [c for c in containers_of(client, run_id) if c.status == "running"]
    assert container.labels["tweakops.trial"] == "0"
    assert container.name == f"tweakops-{run_id}-t0"
    return container


# ---- what every recovered trial must show -----------------------------------------------------


def assert_recovered_once(
    snapshot: dict[str, Any],
    output: Path,
    baseline: float,
    verdict: str,
    causes: tuple[str, ...],
    event_epoch_may_lag: bool = False,
) -> None:
    """Trial 0 succeeded after exactly one restart, as accurate as an undisturbed run, with at
    most one epoch done again, and its trial_restarted event tells the cause and the epoch."""
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded", trial
    assert trial["restarts"] == 1, trial
    assert abs(trial["accuracy"] - baseline) <= SAME_ACCURACY, (trial["accuracy"], baseline)
    assert snapshot["run"]["status"] == "reached", snapshot["run"]
    kinds = [e["kind"] for e in snapshot["events"]]
    assert "trial_failed" not in kinds, kinds
    (restarted,) = [e for e in snapshot["events"] if e["kind"] == "trial_restarted"]
    data = restarted["data"]
    assert data["verdict"] == verdict, restarted
    assert data["cause"] in causes, restarted
    assert data["attempt"] == 1, restarted
    assert data["cause"] in restarted["message"]

    before, after = attempts(output)
    assert before == list(range(1, before[-1] + 1)), before
    assert before[-1] >= FAULT_EPOCH, before  # the fault came after the epoch the test awaited
    if event_epoch_may_lag:  # the engine went away before its containers were stopped
        assert data["resumed_from_epoch"] in (before[-1] - 1, before[-1]), (restarted, before)
    else:
        assert data["resumed_from_epoch"] == before[-1], (restarted, before)
    (checkpoint,) = (int(n) for n in re.findall(r"resuming after epoch (\d+)", trial_log(output)))
    assert after == list(range(checkpoint + 1, EPOCHS + 1)), (checkpoint, after)
    # At most one epoch is lost: the restart resumes from the last logged epoch's checkpoint
    # (or the one before it). checkpoint == before[-1] + 1 only when the fault struck between
    # an epoch's checkpoint and its log line: that epoch was saved, nothing was lost.
    assert before[-1] - 1 <= checkpoint <= before[-1] + 1, (before, after, checkpoint)


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def undisturbed(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> float:
    """Trial 0's accuracy when nothing disturbs it: the same repo, run once for the module."""
    folder = tmp_path_factory.mktemp("undisturbed")
    repo, home = folder / "repo", folder / "home"
    for rel, text in repo_files().items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    result = tweakops(home, "--json", "run", str(repo), "--runtime", "docker")
    assert result.returncode == 0, result.stderr[-3000:]
    snapshot = json.loads(result.stdout)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded" and trial["restarts"] == 0, trial
    output = Path(trial["folder"]) / "output"
    assert attempts(output) == [list(range(1, EPOCHS + 1))]
    assert containers_of(docker_engine, snapshot["run"]["id"]) == []
    return float(trial["accuracy"])


@pytest.fixture(autouse=True)
def remove_trial_containers(docker_engine: Any, home: Path) -> Iterator[None]:
    """After each test, force-remove any container of this test's runs (a failed test's)."""
    yield
    client = docker_client_or_none()  # a fresh client: the engine may have been restarted
    if client is None or not (home / "runs").is_dir():
        return
    for run in (home / "runs").iterdir():
        for container in containers_of(client, run.name):
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _run_with_fault(
    make_repo: Callable[..., Path],
    home: Path,
    inject: Callable[[str, Path], None],
) -> tuple[str, Path]:
    """`tweakops run` of the test repo; `inject(run_id, output)` once FAULT_EPOCH is logged."""
    repo = make_repo(files=repo_files())
    run = Background.start(home, "run", str(repo), "--runtime", "docker")
    try:
        run_id, output = trial_output(home, run)
        wait_for_epoch(output, FAULT_EPOCH, run)
        inject(run_id, output)
        code = run.finish()
        assert code == 0, run.tail()
    finally:
        run.stop()
    return run_id, output


# ---- the faults -------------------------------------------------------------------------------


def test_killed_container_restarts_from_its_checkpoint(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path, undisturbed: float
) -> None:
    def kill(run_id: str, output: Path) -> None:
        running_container(docker_engine, run_id).kill()  # `docker kill`: SIGKILL to the init

    run_id, output = _run_with_fault(make_repo, home, kill)
    snapshot = status(home, run_id)
    assert_recovered_once(snapshot, output, undisturbed, "infrastructure", ("exit 137",))
    assert "--- attempt 2 (restart after exit 137) ---" in trial_log(output)
    assert containers_of(docker_engine, run_id) == []


def test_removed_container_restarts_from_its_checkpoint(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path, undisturbed: float
) -> None:
    def remove(run_id: str, output: Path) -> None:
        running_container(docker_engine, run_id).remove(force=True)  # `docker rm -f`

    run_id, output = _run_with_fault(make_repo, home, remove)
    snapshot = status(home, run_id)
    # The engine may answer the supervisor's wait with the kill's exit code before the
    # container is gone, or the container is already gone: both are infrastructure.
    causes = ("disappeared", "exit 137")
    assert_recovered_once(snapshot, output, undisturbed, "infrastructure", causes)
    assert containers_of(docker_engine, run_id) == []


def test_oom_killed_once_after_progress_restarts_from_its_checkpoint(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path, undisturbed: float
) -> None:
    repo = make_repo(files=repo_files())
    run = Background.start(home, "run", str(repo), "--runtime", "docker")
    try:
        run_id, output = trial_output(home, run)
        wait_for_epoch(output, 1, run)
        (output / "oom-once").write_text("")  # the next logged epoch allocates 1.5 GiB
        assert run.finish() == 0, run.tail()
    finally:
        run.stop()
    assert not (output / "oom-once").exists()
    snapshot = status(home, run_id)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded", trial
    assert trial["restarts"] == 1, trial
    assert abs(trial["accuracy"] - undisturbed) <= SAME_ACCURACY, (trial, undisturbed)
    assert snapshot["run"]["status"] == "reached", snapshot["run"]
    (restarted,) = [e for e in snapshot["events"] if e["kind"] == "trial_restarted"]
    assert restarted["data"]["cause"] == "OOM-killed", restarted
    assert restarted["data"]["verdict"] == "oom", restarted
    before, after = attempts(output)
    assert before == list(range(1, before[-1] + 1)), before
    assert restarted["data"]["resumed_from_epoch"] == before[-1] >= 1, (restarted, before)
    # The OOM struck right after an epoch was checkpointed and logged: nothing is done again.
    assert after == list(range(before[-1] + 1, EPOCHS + 1)), (before, after)
    log = trial_log(output)
    assert "allocating 1.5 GiB" in log
    assert "--- attempt 2 (restart after OOM-killed) ---" in log
    assert "still alive after touching" not in log
    assert containers_of(docker_engine, run_id) == []


def test_watch_adopts_a_container_that_outlived_its_agent(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path, undisturbed: float
) -> None:
    # Longer epochs: the container must still run when `watch` looks (a sleep, same result).
    repo = make_repo(files=repo_files(epoch_seconds=1.0))
    pulled = tweakops(home, "pull", str(repo))
    assert pulled.returncode == 0, pulled.stderr
    run_id = pulled.stdout.strip().splitlines()[-1]
    inspected = tweakops(home, "inspect", "--run", run_id)
    assert inspected.returncode == 0, inspected.stderr
    train = Background.start(home, "train", "--run", run_id, "--runtime", "docker")
    try:
        _, output = trial_output(home, train)
        wait_for_epoch(output, 2, train)
        train.process.send_signal(signal.SIGKILL)  # the agent dies; its container goes on
        train.process.wait(30)
    finally:
        train.stop()
    container = running_container(docker_engine, run_id)
    watched = tweakops(home, "--json", "watch", "--all")
    assert watched.returncode == 0, watched.stderr[-3000:]
    report = json.loads(watched.stdout)
    (swept,) = report["runs"]
    assert swept["run_id"] == run_id and swept["action"] == "resumed", swept

    (only,) = attempts(output)  # the one process did every epoch: nothing was done again
    assert only == list(range(1, EPOCHS + 1))
    snapshot = status(home, run_id)
    (trial,) = snapshot["trials"]
    assert trial["status"] == "succeeded", trial
    assert trial["restarts"] == 0, trial
    assert trial["handle"] == f"docker:{container.id}", trial  # the same container, followed
    assert abs(trial["accuracy"] - undisturbed) <= SAME_ACCURACY, (trial, undisturbed)
    kinds = [e["kind"] for e in snapshot["events"]]
    assert kinds.count("trial_adopted") == 1, kinds
    assert "trial_restarted" not in kinds and "trial_resumed" not in kinds, kinds
    assert report["restarts"] == 0  # an adoption restarts nothing
    (adopted,) = [e for e in snapshot["events"] if e["kind"] == "trial_adopted"]
    assert adopted["data"]["handle"] == f"docker:{container.id}", adopted
    assert 2 <= adopted["data"]["epoch"] < EPOCHS, adopted
    assert snapshot["run"]["status"] == "reached", snapshot["run"]  # the pipeline went on
    stages = {s["name"]: s["status"] for s in snapshot["stages"]}
    assert all(stages[name] == "succeeded" for name in ("train", "tune", "notify")), stages
    assert containers_of(docker_engine, run_id) == []


# ---- last: the engine itself stops and starts again -------------------------------------------

ENGINE_LOG = Path("/tmp/dockerd.log")


@dataclass(frozen=True)
class Engine:
    """The local dockerd as it was started: enough to start it again the same way."""

    pid: int
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str

    @classmethod
    def find(cls) -> Engine | None:
        found = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True)
        pids = found.stdout.split()
        if len(pids) != 1:
            return None
        pid = int(pids[0])
        proc = Path(f"/proc/{pid}")
        try:
            argv = tuple(a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a)
            pairs = (proc / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            return None
        env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        return cls(pid, argv, env or dict(os.environ), cwd)

    def stop(self, limit: float = 90) -> None:
        """SIGTERM, then wait until the process is gone (dockerd stops its containers first)."""
        os.kill(self.pid, signal.SIGTERM)
        wait_until("dockerd exiting", lambda: not _alive(self.pid), None, limit)

    def start(self) -> None:
        """The same argv, env and cwd, detached (orphaned to init), output to the engine log."""
        launcher = 'exec "$@" >>"$TWEAKOPS_ENGINE_LOG" 2>&1 </dev/null &'
        env = {**self.env, "TWEAKOPS_ENGINE_LOG": str(ENGINE_LOG)}
        subprocess.run(
            ["sh", "-c", launcher, "sh", *self.argv],
            env=env,
            cwd=self.cwd,
            check=True,
            start_new_session=True,
        )


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def engine_answers() -> bool:
    return docker_client_or_none() is not None


@contextlib.contextmanager
def engine_restored(engine: Engine) -> Iterator[None]:
    """Whatever happens in the block, a local dockerd runs and answers afterwards."""
    try:
        yield
    finally:
        if not engine_answers():
            if _alive(engine.pid):  # still shutting down: let it finish, or end it
                with contextlib.suppress(AssertionError):
                    wait_until("dockerd exiting", lambda: not _alive(engine.pid), None, 120)
                if _alive(engine.pid):
                    os.kill(engine.pid, signal.SIGKILL)
                    wait_until("dockerd exiting", lambda: not _alive(engine.pid), None, 30)
            if Engine.find() is None:  # nobody started it again yet
                engine.start()
        wait_until("the Docker engine answering again", engine_answers, None, 120)


def test_engine_restart_mid_training_resumes_from_the_checkpoint(
    docker_engine: Any, make_repo: Callable[..., Path], home: Path, undisturbed: float
) -> None:
    if os.environ.get("TWEAKOPS_ALLOW_ENGINE_RESTART") != "1":
        pytest.skip(
            "stops and restarts the machine's dockerd (every container on it is stopped): "
            "set TWEAKOPS_ALLOW_ENGINE_RESTART=1 to allow it (CI does)"
        )
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    engine = Engine.find()
    if engine is None or host != "unix:///var/run/docker.sock":
        pytest.skip(f"the engine at {host} is not one local dockerd this test could restart")
    if os.geteuid() != 0:
        pytest.skip("restarting dockerd needs root (this test signals the dockerd process)")

    stops: list[float] = []

    def restart_engine(run_id: str, output: Path) -> None:
        with engine_restored(engine):
            stops.append(time.time())
            engine.stop()
            engine.start()
            wait_until("the Docker engine answering again", engine_answers, None, 120)

    run_id, output = _run_with_fault(make_repo, home, restart_engine)
    assert stops, "the engine was never stopped"
    snapshot = status(home, run_id)
    # On SIGTERM dockerd stops accepting connections, then stops its containers (SIGTERM,
    # exit 143) and answers the waits already open: the supervisor sees that exit, or the
    # engine gone (disappeared) when its connection is cut first, and then the trial may
    # log one more epoch after the restart event was recorded.
    causes = ("disappeared", "exit 143", "exit 137")
    assert_recovered_once(
        snapshot, output, undisturbed, "infrastructure", causes, event_epoch_may_lag=True
    )
    (restarted,) = [e for e in snapshot["events"] if e["kind"] == "trial_restarted"]
    assert restarted["time"] > stops[0]  # the restart answered the engine's stop
    client = docker_client_or_none()
    assert client is not None and containers_of(client, run_id) == []
