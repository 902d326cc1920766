"""The docker runtime against the real engine: security settings, OOM, crashes, kills, Ctrl-C."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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

from monitor import RestartPolicy, classify, supervise
from tests.integration.docker_fixtures import (
    SESSION,
    SESSION_LABEL,
    EngineProxy,
    docker_runtime,
    engine_socket,
    in_container,
    leftover_containers,
    remove_leftovers,
    resolve_test_image,
)
from tweakops.errors import RuntimeUnavailable, TrialFailed
from tweakops.runtime import ExitStatus, Handle, TrialSpec, docker_backend
from tweakops.runtime.docker_backend import NAME_LABEL, DockerRuntime

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time\ntime.sleep(60)\n"
MakeSpec = Callable[..., TrialSpec]


@pytest.fixture
def runtime(docker_engine: Any) -> Iterator[DockerRuntime]:
    """The docker runtime; after each test no container of this session may remain."""
    containers = docker_runtime(docker_engine)
    yield containers
    assert remove_leftovers(containers) == [], "the test left trial containers behind"


@pytest.fixture
def image(runtime: DockerRuntime) -> str:
    return resolve_test_image(runtime)


@pytest.fixture
def make_spec(tmp_path: Path, image: str) -> MakeSpec:
    """A trial folder laid out like tweakops's (src/, output/, params.json, log.txt)."""

    def _make(script: str, **overrides: Any) -> TrialSpec:
        trial = tmp_path / f"trial-{uuid.uuid4().hex[:8]}"
        (trial / "src").mkdir(parents=True)
        (trial / "output").mkdir()
        (trial / "src" / "train.py").write_text(textwrap.dedent(script))
        (trial / "params.json").write_text('{"lr": 0.1}')
        env = {"TWEAKOPS_PARAMS": str(trial / "params.json"), **overrides.pop("env", {})}
        spec = TrialSpec(
            f"dockertest-{trial.name}",
            ("python", "train.py"),
            workdir=trial / "src",
            output_dir=trial / "output",
            log_path=trial / "log.txt",
            env=env,
        )
        return dataclasses.replace(in_container(spec, image), **overrides)

    return _make


@pytest.fixture
def started(runtime: DockerRuntime) -> Iterator[Callable[[TrialSpec], Handle]]:
    """runtime.start that removes every attempt when the test ends."""
    handles: list[Handle] = []

    def _start(spec: TrialSpec) -> Handle:
        handles.append(runtime.start(spec))
        return handles[-1]

    yield _start
    for handle in handles:
        runtime.remove(handle)


def _until(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def _digest(folder: Path) -> str:
    """Names, modes, owners and contents of everything under folder."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest.update(f"{path}:{info.st_mode}:{info.st_uid}:{info.st_gid}".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# ---- security -----------------------------------------------------------------------------

PROBE = """
    import json, os
    from pathlib import Path
    out = Path(os.environ["TWEAKOPS_OUTPUT"])
    report = {
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "trial": sorted(os.listdir("/trial")),
        "params": json.loads(Path(os.environ["TWEAKOPS_PARAMS"]).read_text()),
        "params_path": os.environ["TWEAKOPS_PARAMS"],
        "clone_visible": os.path.exists(os.environ["CLONE"]),
    }
    (out / "report.json").write_text(json.dumps(report))
    print("report written", flush=True)
    import time; time.sleep(60)
"""


def test_container_has_no_network_no_root_only_the_trial_folder_and_its_limits(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    clone = make_spec("")  # a sibling folder standing in for the pulled clone
    clone_dir = clone.workdir.parent
    (clone_dir / "secret.txt").write_text("not for the container")
    before = _digest(clone_dir)
    spec = make_spec(PROBE, env={"CLONE": str(clone_dir)}, memory_limit="256m", cpus=0.5)
    handle = started(spec)
    report_file = spec.output_dir / "report.json"
    assert _until(report_file.exists), spec.log_path.read_text()

    attrs = runtime.inspect_container(handle)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none" and list(attrs["NetworkSettings"]["Networks"]) == ["none"]
    mounts = [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    assert mounts == [("bind", str(spec.workdir.parent), "/trial", True)]
    assert config["User"] == runtime.user and config["User"].split(":")[0] not in ("", "0", "root")
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024**2
    assert host["NanoCpus"] == 500_000_000 and host["PidsLimit"] > 0
    assert "no-new-privileges" in host["SecurityOpt"] and host["CapDrop"] == ["ALL"]
    assert config["Labels"][NAME_LABEL] == spec.name

    report = json.loads(report_file.read_text())
    assert report["uid"] != 0 and report["interfaces"] == ["lo"]
    assert report["cwd"] == "/trial/src"
    trial_entries = set(report["trial"]) - {"log.txt"}  # the log appears once output flows
    assert trial_entries == {"output", "params.json", "src"}
    assert report["params"] == {"lr": 0.1} and report["params_path"] == "/trial/params.json"
    assert report["clone_visible"] is False
    test_e = runtime.client.containers.get(handle.id).exec_run(["test", "-e", str(clone_dir)])
    assert test_e.exit_code == 1
    runtime.kill(handle)
    runtime.wait(handle, timeout=10)
    assert _digest(clone_dir) == before  # the pulled clone is untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="the chown happens only when tweakops runs as root")
def test_as_root_the_trial_folder_is_handed_to_the_container_user_but_never_a_symlink_target(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    outside = make_spec("").workdir.parent / "host-file.txt"
    outside.write_text("root's")
    spec = make_spec("print('hi')")
    (spec.workdir / "link").symlink_to(outside)
    assert runtime.wait(started(spec), timeout=30).ok
    assert (spec.workdir / "train.py").stat().st_uid == 1000
    assert (spec.workdir / "link").lstat().st_uid == 1000
    assert outside.stat().st_uid == 0


PLANTS_A_LINK = """
    import os
    os.remove("/trial/log.txt")
    os.symlink(os.environ["VICTIM"], "/trial/log.txt")
"""


def test_a_log_symlink_planted_by_the_trial_is_refused_not_followed(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    victim = make_spec("").workdir.parent / "host-owned.txt"
    victim.write_text("untouched\n")
    spec = make_spec(PLANTS_A_LINK, env={"VICTIM": str(victim)})
    assert runtime.wait(started(spec), timeout=30).ok
    assert spec.log_path.is_symlink()
    with pytest.raises(TrialFailed, match=r"a symbolic link .*must be a regular file"):
        runtime.start(spec)  # the restart of a supervised trial would start it again
    assert victim.read_text() == "untouched\n"


# ---- failures, classified -----------------------------------------------------------------

HOG = """
    blocks = []
    for _ in range(300):
        blocks.append(bytearray(1024 * 1024))
    print("allocated 300 MB")
"""


def test_trial_over_its_memory_limit_is_reported_oom_killed(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    spec = make_spec(HOG, memory_limit="64m")
    status = runtime.wait(started(spec), timeout=60)
    assert status.oom_killed and status.code == 137, status
    assert classify(status) == "oom" and status.describe() == "OOM-killed"
    assert "allocated 300 MB" not in spec.log_path.read_text()


def test_crash_reports_its_exit_code_as_a_code_error_with_stderr_in_the_log(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    script = "import sys\nprint('bad learning rate', file=sys.stderr)\nsys.exit(3)\n"
    spec = make_spec(script)
    status = runtime.wait(started(spec), timeout=30)
    assert status == ExitStatus(code=3) and classify(status) == "code_error"
    assert "bad learning rate" in spec.log_path.read_text()


def test_log_is_complete_when_wait_returns(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    script = "import sys\nprint('to stderr', file=sys.stderr)\nfor i in range(50000): print(i)\n"
    spec = make_spec(script)
    assert runtime.wait(started(spec), timeout=60).ok
    lines = spec.log_path.read_text().splitlines()  # streams interleave in no fixed order
    assert len(lines) == 50001 and "to stderr" in lines and lines[-1] == "49999"


def test_docker_kill_from_outside_is_exit_137_an_infrastructure_failure(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    handle = started(make_spec(SLEEPER))
    threading.Timer(0.3, lambda: runtime.client.containers.get(handle.id).kill()).start()
    status = runtime.wait(handle, timeout=30)
    assert status == ExitStatus(code=137) and classify(status) == "infrastructure"
    assert runtime.status(handle) == "exited"


def test_docker_rm_f_while_waiting_is_missing(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    handle = started(make_spec(SLEEPER))
    remove = threading.Timer(
        0.3, lambda: runtime.client.containers.get(handle.id).remove(force=True)
    )
    remove.start()
    status = runtime.wait(handle, timeout=30)
    remove.join()
    assert status == ExitStatus(code=None, missing=True) and classify(status) == "infrastructure"
    assert runtime.status(handle) == "missing"


def test_timeout_kills_the_container_and_remove_deletes_it(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    spec = make_spec(SLEEPER)
    handle = runtime.start(spec)
    status = runtime.wait(handle, timeout=1)
    assert status.timed_out and classify(status) == "timeout"
    assert runtime.status(handle) == "exited"
    runtime.remove(handle)
    assert runtime.status(handle) == "missing" and leftover_containers(runtime) == []


def test_engine_lost_while_waiting_is_missing_and_kill_and_remove_do_not_raise(
    runtime: DockerRuntime,
    make_spec: MakeSpec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = engine_socket()
    if target is None:
        pytest.skip("needs the engine on a unix socket to put a cuttable proxy in front of it")
    with EngineProxy(tmp_path / "engine.sock", target) as proxy:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        via_proxy = DockerRuntime()
        handle = via_proxy.start(make_spec(SLEEPER))
        threading.Timer(0.5, proxy.cut).start()
        status = via_proxy.wait(handle, timeout=30)
    assert status == ExitStatus(code=None, missing=True)
    assert via_proxy.status(handle) == "missing"
    via_proxy.kill(handle)
    via_proxy.remove(handle)
    runtime.remove(handle)  # the engine itself is fine: clean up through it


# ---- naming, images -----------------------------------------------------------------------


def test_a_stopped_container_left_with_the_trials_name_is_replaced(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    spec = make_spec("print('attempt')")
    first = started(spec)
    assert runtime.wait(first, timeout=30).ok  # not removed: a crash of tweakops, say
    second = started(spec)
    assert second != first and runtime.wait(second, timeout=30).ok
    assert runtime.status(first) == "missing"
    assert spec.log_path.read_text().splitlines() == ["attempt", "attempt"]


def test_a_running_container_with_the_trials_name_is_refused(
    runtime: DockerRuntime,
    started: Callable[[TrialSpec], Handle],
    make_spec: MakeSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_backend, "_STALE_WAIT_SECONDS", 0.5)  # how long it waits first
    spec = make_spec(SLEEPER)
    started(spec)
    with pytest.raises(TrialFailed, match=r"still running .*docker rm -f"):
        runtime.start(spec)


def test_missing_image_and_no_image_say_what_to_do(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    with pytest.raises(RuntimeUnavailable, match=r"not on the Docker engine.*images build"):
        runtime.start(make_spec("", image="tweakops/no-such-image:0"))
    with pytest.raises(RuntimeUnavailable, match=r"has no image .*image:"):
        runtime.start(make_spec("", image=None))


def test_output_dir_outside_the_trial_folder_is_refused(
    runtime: DockerRuntime, make_spec: MakeSpec, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"must be inside the trial folder"):
        runtime.start(make_spec("", output_dir=tmp_path / "elsewhere"))


# ---- supervise and Ctrl-C -----------------------------------------------------------------

KILLS_ITSELF_ONCE = """
    import os
    from pathlib import Path
    out = Path(os.environ["TWEAKOPS_OUTPUT"])
    counter = out / "attempts"
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    print("attempt", n, flush=True)
    if n == 1:
        os.kill(os.getpid(), 9)
    (out / "accuracy.txt").write_text("0.9")
"""


def test_supervise_restarts_a_trial_that_sigkilled_itself_and_it_succeeds(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    spec = make_spec(KILLS_ITSELF_ONCE)
    result = supervise(runtime, spec, RestartPolicy(max_restarts=2), sleep=lambda _s: None)
    log = spec.log_path.read_text()
    assert result.verdict == "ok" and result.restarts == 1, log
    assert result.attempts[0].status == ExitStatus(code=137)
    assert "--- attempt 2 (restart after exit 137) ---" in log
    assert (spec.output_dir / "accuracy.txt").read_text() == "0.9"


def test_interrupt_during_supervise_leaves_no_container(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    def interrupt(handle: Handle, number: int) -> None:
        assert runtime.status(handle) == "running"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        supervise(runtime, make_spec(SLEEPER), RestartPolicy(), on_start=interrupt)
    assert leftover_containers(runtime) == []


CTRL_C_DRIVER = """
import faulthandler, json, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for stacks if it hangs
# Ctrl-C as at a terminal, even under a shell that ran the tests with `&` (SIGINT ignored:
# the driver then never stopped, the one hang this test has seen)
signal.signal(signal.SIGINT, signal.default_int_handler)
from monitor import RestartPolicy, supervise
from tweakops.runtime import TrialSpec
from tweakops.runtime.docker_backend import DockerRuntime
fields = json.loads(sys.argv[1])
spec = TrialSpec(**fields)
announce = lambda handle, number: print("started", handle.id, flush=True)
supervise(DockerRuntime(), spec, RestartPolicy(), on_start=announce)
"""


def _driver_fields(spec: TrialSpec, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "command": list(spec.command),
        "workdir": str(spec.workdir),
        "output_dir": str(spec.output_dir),
        "log_path": str(spec.log_path),
        "image": spec.image,
        "labels": labels,
    }


def test_ctrl_c_of_a_tweakops_process_removes_its_running_container(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    spec = make_spec(SLEEPER)
    fields = _driver_fields(spec, {SESSION_LABEL: SESSION})
    driver = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_DRIVER, json.dumps(fields)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        assert line.startswith("started "), driver.stderr.read() if driver.stderr else line
        handle = Handle("docker", line.split()[1])
        assert runtime.status(handle) == "running"
        driver.send_signal(signal.SIGINT)
        try:
            _, stderr = driver.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # if it ever hangs again: show where
            driver.send_signal(signal.SIGUSR1)
            time.sleep(1)
            driver.kill()
            _, stacks = driver.communicate()
            pytest.fail(f"the driver did not end 30 s after Ctrl-C; its threads:\n{stacks}")
    finally:
        driver.kill()
        driver.wait()
    assert "KeyboardInterrupt" in stderr
    assert runtime.status(handle) == "missing" and leftover_containers(runtime) == []


def test_a_program_missing_from_the_image_is_a_code_error_named_in_the_log(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    spec = make_spec("", command=("no-such-program-xyz", "train.py"))
    status = runtime.wait(started(spec), timeout=30)
    assert status.code == 127 and classify(status) == "code_error"
    assert "no-such-program-xyz" in spec.log_path.read_text()


def test_a_container_that_outlived_its_tweakops_process_is_adopted_with_its_output(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    script = """\
        import time
        print("before", flush=True)
        time.sleep(3)
        print("after the adoption", flush=True)
    """
    spec = make_spec(script)
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CTRL_C_DRIVER,
            json.dumps(_driver_fields(spec, {SESSION_LABEL: SESSION})),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    handle = Handle("docker", driver.stdout.readline().split()[1])
    assert _until(lambda: "before" in spec.log_path.read_text())
    driver.kill()  # the tweakops process dies; its container goes on
    driver.wait()
    assert runtime.status(handle) == "running"
    try:
        adopted = runtime.adopt(handle, spec)
        status = runtime.wait(adopted, timeout=60)
    finally:
        runtime.remove(handle)
    assert status.ok
    assert spec.log_path.read_text().count("after the adoption") == 1


def test_engine_events_wake_the_watchdog_when_a_trial_container_dies(
    runtime: DockerRuntime, started: Callable[[TrialSpec], Handle], make_spec: MakeSpec
) -> None:
    run = f"events-{uuid.uuid4().hex[:8]}"
    labels = {SESSION_LABEL: SESSION, "tweakops.run": run, "tweakops.trial": "2"}
    started(make_spec("import time\ntime.sleep(2)\nraise SystemExit(3)\n", labels=labels))
    deadline = time.monotonic() + 60
    seen: list[dict[str, str]] = []
    while time.monotonic() < deadline and not any(e.get("tweakops.run") == run for e in seen):
        seen += runtime.wait_for_exits(deadline - time.monotonic())  # other runs may die too
    ours = [e for e in seen if e.get("tweakops.run") == run]
    assert ours and ours[0]["tweakops.trial"] == "2"
