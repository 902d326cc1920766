"""One behaviour suite for every runtime backend (optuna-style), plus local-only specifics."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor import classify
from tests.integration.docker_fixtures import (
    docker_runtime,
    harness_image,
    in_container,
    remove_leftovers,
    resolve_test_image,
)
from tweakops.errors import RuntimeUnavailable, TrialFailed
from tweakops.runtime import ExitStatus, Handle, LocalRuntime, Runtime, TrialSpec, get_runtime
from tweakops.runtime.docker_backend import DockerRuntime

# local-warm, docker-warm: the runtime handing each trial to a spare interpreter (container)
# that imported a module ahead of time (what it does for Keras): every contract must hold for
# it too. docker-warm runs in the sklearn image of this checkout (it has training/_warm.py).
BACKENDS = [
    "local",
    "local-warm",
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("docker-warm", marks=pytest.mark.docker),
]
SLEEPER = "import time\ntime.sleep(30)\n"

MakeSpec = Callable[..., TrialSpec]
Start = Callable[[TrialSpec], Handle]


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """Each backend in turn; docker on the real engine (skipped without one, failed in CI)."""
    if request.param == "local":
        yield get_runtime("local")
        return
    if request.param == "local-warm":
        warm = LocalRuntime()
        warm.prewarm(("json",))
        yield warm
        return
    containers = docker_runtime(request.getfixturevalue("docker_engine"))
    if request.param == "docker-warm":
        containers.prewarm(("json",), "python3")
    yield containers
    containers.close()
    assert remove_leftovers(containers) == [], "the test left trial containers behind"


@pytest.fixture
def for_backend(
    runtime: Runtime, request: pytest.FixtureRequest
) -> Callable[[TrialSpec], TrialSpec]:
    """What a spec needs for this backend: docker runs it in the test image with python3."""
    if not isinstance(runtime, DockerRuntime):
        return lambda spec: spec
    warm = request.node.callspec.params["runtime"] == "docker-warm"
    image = harness_image() if warm else resolve_test_image(runtime)
    return lambda spec: in_container(spec, image)


@pytest.fixture
def start(
    runtime: Runtime, for_backend: Callable[[TrialSpec], TrialSpec], tmp_path: Path
) -> Iterator[Start]:
    """runtime.start (spec adapted for the backend) that kills and removes every attempt; a
    warm docker runtime first runs one trial like it, so that a spare is waiting for it."""
    handles: list[Handle] = []

    def _start(spec: TrialSpec) -> Handle:
        spec = for_backend(spec)
        spares = getattr(runtime, "_spares", None)
        if spares is not None and spares.runs(spec) and spares.settled(60) is None:
            _prime(runtime, spec, tmp_path)
        waiting = spares.settled(60) if spares is not None else None
        handle = runtime.start(spec)
        assert waiting is None or handle.id == waiting.container.id  # it ran warm
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        runtime.kill(handle)
        runtime.remove(handle)


def _prime(runtime: Runtime, spec: TrialSpec, tmp_path: Path) -> None:
    """Run a trial like `spec` (same image, labels, limits) that leaves a spare behind."""
    folder = tmp_path / f"prime-{uuid.uuid4().hex[:8]}"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "train.py").write_text("pass\n")
    prime = dataclasses.replace(
        spec,
        name=f"contract-{folder.name}",
        command=(spec.command[0], "train.py"),
        workdir=folder / "src",
        output_dir=folder / "output",
        log_path=folder / "log.txt",
    )
    handle = runtime.start(prime)
    assert runtime.wait(handle, timeout=60).ok, prime.log_path.read_text()
    runtime.remove(handle)


@pytest.fixture
def make_spec(tmp_path: Path) -> MakeSpec:
    """A trial folder with `script` as workdir/train.py and a spec that runs it."""

    def _make(script: str, **overrides: Any) -> TrialSpec:
        trial = tmp_path / f"trial-{uuid.uuid4().hex[:8]}"
        (trial / "src").mkdir(parents=True)
        (trial / "src" / "train.py").write_text(textwrap.dedent(script))
        spec = TrialSpec(
            f"contract-{trial.name}",
            ("python", "train.py"),
            workdir=trial / "src",
            output_dir=trial / "output",
            log_path=trial / "logs" / "trial.log",
            labels={"tweakops.test": "contract"},
        )
        return dataclasses.replace(spec, **overrides)

    return _make


TRAIN = """
    import os, sys
    from pathlib import Path
    out = Path(os.environ["TWEAKOPS_OUTPUT"])
    (out / "accuracy.txt").write_text("0.93")
    print("cwd", os.getcwd())
    print("lr", os.environ["TWEAKOPS_PARAM_LR"])
    print("to stderr", file=sys.stderr)
    print("reads a relative file:", Path("train.py").exists())
    print("exe", sys.executable)
"""


def test_trial_runs_in_workdir_with_env_and_writes_output_and_log(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    spec = make_spec(TRAIN, env={"TWEAKOPS_PARAM_LR": "0.01"})
    status = runtime.wait(start(spec), timeout=30)
    log = spec.log_path.read_text()
    assert status == ExitStatus(code=0) and status.ok, log
    assert (spec.output_dir / "accuracy.txt").read_text() == "0.93"
    assert "lr 0.01" in log and "to stderr" in log
    assert "reads a relative file: True" in log
    if runtime.name == "local":  # a container sees its own mount path and python
        assert f"cwd {spec.workdir.resolve()}" in log and f"exe {sys.executable}" in log
    else:
        assert "cwd /trial/src" in log


def test_nonzero_exit_code_is_reported_as_code_error(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    spec = make_spec("raise SystemExit(3)")
    status = runtime.wait(start(spec), timeout=30)
    assert status.code == 3 and not status.ok
    assert status.describe() == "exit 3"
    assert classify(status) == "code_error"


def test_kill_stops_a_sleeping_trial_as_an_infrastructure_failure(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    handle = start(make_spec(SLEEPER))
    assert runtime.status(handle) == "running" and runtime.is_alive(handle)
    runtime.kill(handle)
    status = runtime.wait(handle, timeout=10)
    assert status.signal == signal.SIGKILL or status.code == 137, status
    assert classify(status) == "infrastructure"
    assert runtime.status(handle) in ("exited", "missing")


def test_kill_from_another_thread_ends_a_wait_in_progress(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    handle = start(make_spec(SLEEPER))
    killer = threading.Timer(0.2, runtime.kill, args=(handle,))
    killer.start()
    began = time.monotonic()
    status = runtime.wait(handle, timeout=20)
    killer.join()
    assert classify(status) == "infrastructure" and not status.timed_out
    assert time.monotonic() - began < 10


def test_wait_timeout_kills_the_trial_and_reports_timed_out(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    handle = start(make_spec(SLEEPER))
    began = time.monotonic()
    status = runtime.wait(handle, timeout=0.5)
    assert status.timed_out and classify(status) == "timeout"
    assert 0.4 < time.monotonic() - began < 10
    assert runtime.status(handle) != "running"


def test_remove_stops_a_running_trial_and_kill_and_remove_are_idempotent(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    handle = start(make_spec(SLEEPER))
    runtime.remove(handle)
    assert runtime.status(handle) == "missing"
    runtime.remove(handle)
    runtime.kill(handle)
    assert runtime.status(handle) == "missing"


def test_log_is_appended_across_restarts_of_the_same_spec(
    runtime: Runtime, start: Start, make_spec: MakeSpec
) -> None:
    spec = make_spec("print('run')")
    spec.log_path.parent.mkdir(parents=True)
    spec.log_path.write_text("earlier output\n")
    for _ in range(2):
        handle = start(spec)
        assert runtime.wait(handle, timeout=30).ok
        runtime.remove(handle)
        runtime.kill(handle)
    assert spec.log_path.read_text().splitlines() == ["earlier output", "run", "run"]


# ---- local backend specifics --------------------------------------------------------------


def _until(condition: Callable[[], bool], limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_local_status_of_a_pid_started_elsewhere_is_running_then_missing() -> None:
    sleeper = subprocess.Popen(["sleep", "5"])
    handle = Handle("local", str(sleeper.pid))
    runtime = LocalRuntime()
    try:
        assert runtime.status(handle) == "running"
        os.kill(sleeper.pid, signal.SIGKILL)
        assert _until(lambda: runtime.status(handle) == "missing")  # its zombie counts as gone
        assert runtime.wait(handle, timeout=5) == ExitStatus(code=None, missing=True)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_local_kill_and_timeout_reach_a_pid_started_elsewhere() -> None:
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    handle = Handle("local", str(sleeper.pid))
    try:
        status = LocalRuntime(poll_interval=0.01).wait(handle, timeout=0.3)
        assert status.timed_out
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


def test_local_kill_reaches_grandchildren(make_spec: MakeSpec) -> None:
    script = """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "30"])
        open(os.path.join(os.environ["TWEAKOPS_OUTPUT"], "child.pid"), "w").write(str(child.pid))
        time.sleep(30)
    """
    spec = make_spec(script)
    runtime = LocalRuntime()
    handle = runtime.start(spec)
    pid_file = spec.output_dir / "child.pid"
    assert _until(lambda: pid_file.exists() and bool(pid_file.read_text()), 10)
    runtime.kill(handle)
    runtime.wait(handle, timeout=10)
    runtime.remove(handle)
    grandchild = int(pid_file.read_text())
    assert _until(lambda: not _pid_alive(grandchild))


def test_local_start_of_a_missing_program_says_what_to_check(make_spec: MakeSpec) -> None:
    spec = make_spec("", command=("no-such-program-xyz", "train.py"))
    with pytest.raises(TrialFailed, match=r"cannot start trial .*check the entrypoint") as err:
        LocalRuntime().start(spec)
    assert err.value.verdict == "code_error"


@pytest.mark.parametrize("bad", ["local:0", "local:-1", "local:abc", "docker:1234"])
def test_local_refuses_handles_that_are_not_its_own_safe_pids(bad: str) -> None:
    with pytest.raises(ValueError, match=r"pid|belongs to the 'docker' runtime"):
        LocalRuntime().kill(Handle.parse(bad))


# ---- the interface's value types and the factory ----------------------------------------


@pytest.mark.parametrize("bad", ["", "local", ":12", "local:"])
def test_handle_round_trips_through_text_and_rejects_text_without_an_id(bad: str) -> None:
    assert Handle.parse(str(Handle("docker", "3f2a9c"))) == Handle("docker", "3f2a9c")
    with pytest.raises(ValueError, match="expected a handle like"):
        Handle.parse(bad)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (ExitStatus(code=0), "exit 0"),
        (ExitStatus(code=1), "exit 1"),
        (ExitStatus(code=None, signal=9), "killed by SIGKILL"),
        (ExitStatus(code=137, oom_killed=True), "OOM-killed"),
        (ExitStatus(code=None, signal=9, timed_out=True), "timed out"),
        (ExitStatus(code=None, missing=True), "disappeared"),
    ],
)
def test_exit_status_describes_itself(status: ExitStatus, words: str) -> None:
    assert status.describe() == words
    assert status.ok == (words == "exit 0")


def test_trial_spec_is_frozen_and_copies_its_mappings(tmp_path: Path) -> None:
    env = {"A": "1"}
    spec = TrialSpec("t", ["python", "x.py"], tmp_path, tmp_path, tmp_path / "log", env=env)  # type: ignore[arg-type]
    env["A"] = "2"
    assert spec.env["A"] == "1" and spec.command == ("python", "x.py")
    with pytest.raises(ValueError, match="empty command"):
        TrialSpec("t", (), tmp_path, tmp_path, tmp_path / "log")


def test_get_runtime_docker_without_an_engine_says_how_to_start_one_and_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(RuntimeUnavailable, match=r"no Docker engine answers at unix://.*no-engine"):
        get_runtime("docker")
    with pytest.raises(RuntimeUnavailable, match=r"start it .*or use --runtime local"):
        get_runtime("docker")
    assert isinstance(get_runtime("auto"), LocalRuntime)


def test_get_runtime_gives_local_for_local_and_auto_and_lists_names_when_unknown() -> None:
    assert isinstance(get_runtime("local"), LocalRuntime)
    assert isinstance(get_runtime("auto"), Runtime)  # local until a docker engine answers
    with pytest.raises(RuntimeUnavailable, match="unknown runtime 'podman'; expected one of auto"):
        get_runtime("podman")


WARM_OWNER = """
import sys, time
from tweakops.runtime import LocalRuntime
runtime = LocalRuntime()
runtime.prewarm(("json",))
print(runtime._spare.pid, flush=True)
time.sleep(60)
"""


def test_local_warm_hands_the_trial_to_the_spare_and_keeps_one_ready(make_spec: MakeSpec) -> None:
    runtime = LocalRuntime()
    runtime.prewarm(("json",))
    spare = runtime._spare
    assert spare is not None
    script = """
        import sibling, sys
        print("main" if __name__ == "__main__" else __name__, sibling.VALUE, sys.argv[1:])
        raise SystemExit(4)
    """
    spec = make_spec(script, command=("python", "train.py", "--flag"))
    (spec.workdir / "sibling.py").write_text("VALUE = 42\n")
    handle = runtime.start(spec)
    assert handle.id == str(spare.pid)  # the warm interpreter became the trial
    assert runtime._spare is not None and runtime._spare.pid != spare.pid  # the next one waits
    status = runtime.wait(handle, timeout=30)
    runtime.remove(handle)
    assert status.code == 4 and classify(status) == "code_error"
    assert "main 42 ['--flag']" in spec.log_path.read_text()


def test_local_warm_error_traceback_lands_in_the_log(make_spec: MakeSpec) -> None:
    runtime = LocalRuntime()
    runtime.prewarm(("json",))
    spec = make_spec("raise RuntimeError('bad model')\n")
    handle = runtime.start(spec)
    status = runtime.wait(handle, timeout=30)
    runtime.remove(handle)
    assert status.code == 1
    assert "RuntimeError: bad model" in spec.log_path.read_text()


def test_local_warm_spare_ends_with_the_process_that_owns_it() -> None:
    owner = subprocess.Popen([sys.executable, "-c", WARM_OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    spare = int(owner.stdout.readline())
    assert _pid_alive(spare)
    owner.kill()  # SIGKILL: no cleanup runs; the spare sees EOF on its stdin
    owner.wait()
    assert _until(lambda: not _pid_alive(spare))


def test_local_warm_exit_keeps_atexit_handlers_and_unclosed_files(make_spec: MakeSpec) -> None:
    runtime = LocalRuntime()
    runtime.prewarm(("json",))
    script = """
        import atexit, os
        out = os.environ["TWEAKOPS_OUTPUT"]
        atexit.register(lambda: open(os.path.join(out, "atexit"), "w").write("ran"))
        metric = open(os.path.join(out, "accuracy.txt"), "w")  # never closed
        metric.write("0.91")
        raise SystemExit("stopping with a message")
    """
    spec = make_spec(script)
    handle = runtime.start(spec)
    status = runtime.wait(handle, timeout=30)
    runtime.remove(handle)
    assert status.code == 1 and "stopping with a message" in spec.log_path.read_text()
    assert (spec.output_dir / "accuracy.txt").read_text() == "0.91"
    assert (spec.output_dir / "atexit").read_text() == "ran"


def test_capacity_is_the_cpus_and_memory_its_trials_share(runtime: Runtime) -> None:
    room = runtime.capacity()
    assert room.cpus >= 1 and room.memory is not None and room.memory > 256 * 2**20
    if isinstance(runtime, DockerRuntime):  # the engine's, which may be another machine
        info = runtime.client.info()
        assert (room.cpus, room.memory) == (info["NCPU"], info["MemTotal"])
    else:
        assert room.cpus == len(os.sched_getaffinity(0))
        meminfo = Path("/proc/meminfo").read_text().split()
        assert abs(room.memory - int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024) < 2**30
