"""Warm spare containers of the docker runtime against the real engine (prewarm()).

The spares run training/_warm.py, so these tests need a trial image of this checkout: the
sklearn image, built from it (a cache hit when CI built the images first). Spares import
`json` and `this` (which prints the Zen of Python: noise a trial's log must never hold).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor import RestartPolicy, classify, supervise
from tests.integration.docker_fixtures import SESSION, SESSION_LABEL, docker_runtime, harness_image
from tweakops.runtime import ExitStatus, Handle, TrialSpec
from tweakops.runtime._docker_container import WARM_SCRIPT
from tweakops.runtime.docker_backend import DockerRuntime

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("json", "this")
SAME_SANDBOX = ("NetworkMode", "CapDrop", "CapAdd", "SecurityOpt", "PidsLimit", "Memory",
                "MemorySwap", "NanoCpus", "Init", "Privileged", "ReadonlyRootfs", "LogConfig",
                "Devices", "IpcMode", "PidMode", "UsernsMode", "Runtime")  # fmt: skip
MakeSpec = Callable[..., TrialSpec]


@pytest.fixture(scope="module")
def image(docker_engine: Any) -> str:
    """The sklearn image of this checkout (it has training/_warm.py)."""
    return harness_image()


@pytest.fixture
def runtime(docker_engine: Any, tmp_path: Path) -> Iterator[DockerRuntime]:
    """A warm docker runtime; when the test ends it is closed and nothing of it may remain."""
    containers = docker_runtime(docker_engine)
    containers.prewarm(MODULES)
    yield containers
    containers.close()
    left = containers.client.containers.list(
        all=True, filters={"label": f"{SESSION_LABEL}={SESSION}"}
    )
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == [], "the test left containers behind"
    assert list((tmp_path / "trials").glob(".spare-*")) == [], "a spare's folder was left"


@pytest.fixture
def make_spec(tmp_path: Path, image: str) -> MakeSpec:
    """Trial N of one run: <tmp>/trials/NNN laid out like tweakops's, `python train.py`."""
    run = f"warm-{uuid.uuid4().hex[:8]}"
    numbers = iter(range(1, 1000))

    def _make(script: str, **overrides: Any) -> TrialSpec:
        number = next(numbers)
        trial = tmp_path / "trials" / f"{number:03d}"
        (trial / "src").mkdir(parents=True)
        (trial / "output").mkdir()
        (trial / "src" / "train.py").write_text(textwrap.dedent(script))
        (trial / "params.json").write_text(json.dumps({"trial": number}))
        spec = TrialSpec(
            f"tweakops-{run}-t{number}",
            ("python", "train.py"),
            workdir=trial / "src",
            output_dir=trial / "output",
            log_path=trial / "log.txt",
            env={"TWEAKOPS_PARAMS": str(trial / "params.json"), "TWEAKOPS_TRIAL": str(number)},
            image=image,
            labels={"tweakops.run": run, "tweakops.trial": str(number), SESSION_LABEL: SESSION},
            memory_limit="512m",
            cpus=1.0,
        )
        return dataclasses.replace(spec, **overrides)

    return _make


def _spare_id(runtime: DockerRuntime) -> str | None:
    """The waiting spare's container, once the one on its way was made."""
    spare = runtime._spares.settled(60)
    return None if spare is None else str(spare.container.id)


def _run(runtime: DockerRuntime, spec: TrialSpec, keep: bool = False) -> tuple[Handle, ExitStatus]:
    """Start and wait for one attempt; its container is removed unless `keep`."""
    handle = runtime.start(spec)
    status = runtime.wait(handle, timeout=60)
    if not keep:
        runtime.remove(handle)
    return handle, status


def _until(condition: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


PROBE = """
    import json, os, sys
    from pathlib import Path
    out = Path(os.environ["TWEAKOPS_OUTPUT"])
    report = {
        "argv": sys.argv, "cwd": os.getcwd(), "uid": os.getuid(),
        "params": json.loads(Path(os.environ["TWEAKOPS_PARAMS"]).read_text()),
        "secret": os.environ.get("API_TOKEN"), "trial": sorted(os.listdir("/trial")),
        "path0": sys.path[0], "zen_module": "this" in sys.modules,
    }
    (out / "report.json").write_text(json.dumps(report))
    print("report written")
    print("to stderr", file=sys.stderr)
    for i in range(20000): print(i)
"""  # fmt: skip


def test_a_warm_trial_is_the_spare_with_the_trials_files_env_and_only_its_output(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    first = make_spec("print('cold')")
    cold, status = _run(runtime, first, keep=True)
    assert status.ok and first.log_path.read_text() == "cold\n"
    spare = _spare_id(runtime)
    assert spare is not None and spare != cold.id  # made once the first trial started
    spec = make_spec(PROBE, command=("python", "train.py", "--lr", "0.1"))
    spec = dataclasses.replace(spec, env={**spec.env, "API_TOKEN": "s3cret"})
    handle, status = _run(runtime, spec, keep=True)
    assert handle.id == spare and status == ExitStatus(code=0)
    expected = "report written\nto stderr\n" + "".join(f"{i}\n" for i in range(20000))
    # stdout and stderr are two streams: the engine keeps each one's order, not theirs
    assert sorted(spec.log_path.read_text().splitlines()) == sorted(expected.splitlines())
    report = json.loads((spec.output_dir / "report.json").read_text())
    assert report == {
        "argv": ["train.py", "--lr", "0.1"], "cwd": "/trial/src", "uid": 1000 if
        os.geteuid() == 0 else os.getuid(), "params": {"trial": 2}, "secret": "s3cret",
        "trial": ["log.txt", "output", "params.json", "src"], "path0": "/trial/src",
        "zen_module": True,
    }  # fmt: skip
    warm = runtime.inspect_container(handle)
    assert warm["Name"] == f"/{spec.name}"
    assert "API_TOKEN=s3cret" not in warm["Config"]["Env"]  # it came in the job file
    assert not any(v.startswith("TWEAKOPS_") for v in warm["Config"]["Env"])
    assert warm["Config"]["Labels"]["tweakops.warm"] == "1"
    assert warm["Config"]["Labels"]["tweakops.run"] == spec.labels["tweakops.run"]
    cold_attrs = runtime.inspect_container(cold)
    for field in SAME_SANDBOX:
        assert warm["HostConfig"].get(field) == cold_attrs["HostConfig"].get(field), field
    assert warm["Config"]["User"] == cold_attrs["Config"]["User"] == runtime.user
    assert warm["Config"]["Image"] == cold_attrs["Config"]["Image"]
    assert [m["Destination"] for m in warm["Mounts"]] == ["/trial"]  # its folder, now spec's
    runtime.remove(cold)
    runtime.remove(handle)


def test_exit_codes_and_kills_pass_through_warm_trials(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    _, status = _run(runtime, make_spec("pass"))
    assert status.ok
    for script, code, words in [
        ("raise SystemExit(3)", 3, ""),
        ("raise SystemExit('bad data: 3 rows')", 1, "bad data: 3 rows\n"),
        ("raise ValueError('no labels')", 1, 'File "/trial/src/train.py", line 1'),
    ]:
        spare, spec = _spare_id(runtime), make_spec(script)
        handle, status = _run(runtime, spec)
        assert handle.id == spare and status == ExitStatus(code=code), script
        log = spec.log_path.read_text()
        assert words in log and "Beautiful is better" not in log and "_warm.py" not in log
    spare, spec = (
        _spare_id(runtime),
        make_spec("import time\nprint('up', flush=True)\ntime.sleep(60)"),
    )
    handle = runtime.start(spec)
    assert handle.id == spare
    assert _until(lambda: spec.log_path.read_text() == "up\n")
    runtime.kill(handle)
    status = runtime.wait(handle, timeout=30)
    assert status.code == 137 and classify(status) == "infrastructure"
    runtime.remove(handle)


def test_a_trial_that_finds_no_spare_starts_cold_through_the_harness_and_ends_alike(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    spec = make_spec("import sys; print(sys.argv, __name__); raise SystemExit(4)")
    handle, status = _run(runtime, spec, keep=True)  # the first trial: no spare yet
    command = runtime.inspect_container(handle)["Config"]["Cmd"]
    runtime.remove(handle)
    assert command == ["python", WARM_SCRIPT, "--now", "train.py"]
    assert status.code == 4 and classify(status) == "code_error"
    assert spec.log_path.read_text() == "['train.py'] __main__\n"


def test_a_mismatched_or_dead_spare_means_a_cold_start_and_is_removed(
    runtime: DockerRuntime, make_spec: MakeSpec, image: str
) -> None:
    _run(runtime, make_spec("pass"))
    spare = runtime._spares.settled(60)
    assert spare is not None
    other = make_spec("print('bigger')", memory_limit="640m")  # another sandbox: not this spare
    handle, status = _run(runtime, other)
    assert status.ok and handle.id != spare.container.id
    assert not spare.folder.exists()
    assert runtime.client.containers.list(all=True, filters={"id": spare.container.id}) == []
    assert (
        runtime.inspect_container(Handle("docker", _spare_id(runtime) or ""))["HostConfig"][
            "Memory"
        ]
        == 640 * 1024**2
    )  # the next spare is made for the trial that just started
    dead = runtime._spares.settled(60)
    assert dead is not None
    dead.container.kill()
    again = make_spec("print('after a dead spare')", memory_limit="640m")
    handle, status = _run(runtime, again)
    assert status.ok and handle.id != dead.container.id
    assert again.log_path.read_text() == "after a dead spare\n"
    assert not dead.folder.exists()


CRASHING_OWNER = """
import json, sys
from tweakops.runtime import TrialSpec
from tweakops.runtime.docker_backend import DockerRuntime
runtime = DockerRuntime()
runtime.prewarm(("json",))
spec = json.loads(sys.argv[1])
runtime.start(TrialSpec(**spec))
spare = runtime._spares.settled(60)
print(spare.container.id, spare.folder, flush=True)
import time; time.sleep(120)
"""


def test_a_spare_of_a_killed_tweakops_ends_and_is_removed_with_its_folder_by_the_next(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    spec = make_spec("pass")
    fields = {
        "name": spec.name, "command": list(spec.command), "workdir": str(spec.workdir),
        "output_dir": str(spec.output_dir), "log_path": str(spec.log_path),
        "image": spec.image, "labels": dict(spec.labels), "memory_limit": spec.memory_limit,
        "cpus": spec.cpus,
    }  # fmt: skip
    owner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_OWNER, json.dumps(fields)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    spare_id, folder = owner.stdout.readline().split()
    owner.kill()  # SIGKILL: no cleanup ran
    owner.wait()
    orphan = runtime.client.containers.get(spare_id)
    assert _until(lambda: orphan.reload() or orphan.status == "exited")  # its owner lock is free
    assert orphan.attrs["State"]["ExitCode"] == 0
    runtime.remove(Handle("docker", runtime.client.containers.get(spec.name).id))
    runtime.prewarm(("json",))
    _run(runtime, make_spec("pass"))
    assert runtime._spares.settled(60) is not None  # making a spare clears the orphans
    assert runtime.client.containers.list(all=True, filters={"id": spare_id}) == []
    assert not Path(folder).exists()


def test_close_removes_the_spare_and_its_folder(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    _run(runtime, make_spec("pass"))
    spare = runtime._spares.settled(60)
    assert spare is not None and spare.folder.is_dir()
    runtime.close()
    runtime.close()
    assert not spare.folder.exists() and runtime._spares.spare is None
    assert runtime.client.containers.list(all=True, filters={"id": spare.container.id}) == []
    _, status = _run(runtime, make_spec("print('cold again')"))
    assert status.ok and runtime._spares.spare is None  # closed: no more spares


RESUMES = """
    import time
    import training
    checkpoint = training.SklearnCheckpoint()
    state = checkpoint.load()
    start = state[1] + 1 if state else 1
    print("starting at epoch", start, flush=True)
    for epoch in range(start, 13):
        time.sleep(0.3)
        checkpoint.save({"epoch": epoch}, epoch)
        training.log_epoch(epoch, accuracy=epoch / 12)
    training.write_metric(0.9)
"""


def test_a_killed_warm_trial_is_restarted_warm_from_its_checkpoint(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    _run(runtime, make_spec("pass"))
    spec = make_spec(RESUMES)
    handles: list[str] = []
    spares: list[str | None] = [_spare_id(runtime)]

    def on_start(handle: Handle, number: int) -> None:
        handles.append(handle.id)
        if number == 1:  # kill the first attempt once it logged epoch 4 and the next spare waits
            epochs = spec.output_dir / "epochs.jsonl"
            assert _until(lambda: epochs.exists() and len(epochs.read_text().splitlines()) >= 4)
            spares.append(_spare_id(runtime))
            runtime.kill(handle)

    result = supervise(
        runtime,
        spec,
        RestartPolicy(max_restarts=2, backoff_initial=0.1),
        timeout=120,
        on_start=on_start,
    )
    log = spec.log_path.read_text()
    assert result.verdict == "ok" and result.restarts == 1, log
    assert handles == spares  # both attempts were spares, a new one each time
    assert log.startswith("starting at epoch 1\n") and "--- attempt 2" in log
    resumed = int(log.split("starting at epoch ")[2].split()[0])
    epochs = [json.loads(line)["epoch"] for line in (spec.output_dir / "epochs.jsonl").open()]
    assert resumed >= 5 and epochs == sorted(epochs) and epochs[-1] == 12
    assert (spec.output_dir / "accuracy.txt").read_text().strip() == "0.9"


def test_ctrl_c_as_the_next_spare_is_asked_for_leaves_no_container(
    runtime: DockerRuntime, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime._spares, "refill", interrupted)
    spec = make_spec("import time\ntime.sleep(60)")
    with pytest.raises(KeyboardInterrupt):
        runtime.start(spec)  # the trial had started: the caller never got its handle
    assert runtime.client.containers.list(all=True, filters={"name": spec.name}) == []


def _cpu_weight(runtime: DockerRuntime, container_id: str) -> str:
    """The container's CPU weight as its cgroup says (cgroup v2, else v1's shares)."""
    read = (
        "cat /sys/fs/cgroup/cpu.weight 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.shares "
        "2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpu.shares"
    )
    done = runtime.client.containers.get(container_id).exec_run(["sh", "-c", read])
    assert done.exit_code == 0, done.output
    return str(done.output.decode().strip())


def test_the_next_spare_has_the_lowest_cpu_weight_until_the_trial_logged_an_epoch(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    script = """
        import time, training
        time.sleep(6)
        training.log_epoch(1, accuracy=0.5)
        time.sleep(60)
    """
    first = runtime.start(make_spec(script))
    assert _until(lambda: runtime._spares.spare is not None)  # made at once
    spare = runtime._spares.spare
    assert spare is not None and spare.shares is not None
    cold = _cpu_weight(runtime, first.id)
    low = _cpu_weight(runtime, str(spare.container.id))
    assert low in ("1", "2") and low != cold  # the lowest weight (v2), or shares (v1)
    assert runtime._spares.settled(30) is spare and spare.shares is None  # after epoch 1
    assert _cpu_weight(runtime, str(spare.container.id)) == cold
    runtime.remove(first)
    second = runtime.start(make_spec("import time\ntime.sleep(60)"))
    assert second.id == spare.container.id
    assert _cpu_weight(runtime, second.id) == cold
    runtime.remove(second)


def test_two_trials_at_once_both_start_warm_from_two_spares_and_fewer_are_kept_after(
    runtime: DockerRuntime, make_spec: MakeSpec
) -> None:
    runtime.keep_spares(2)  # tune: one spare per trial at once
    _, status = _run(runtime, make_spec("print('cold')"))
    assert status.ok
    assert _until(lambda: runtime._spares.settled(60) is not None and runtime._spares.waiting == 2)
    spares = {str(s.container.id) for s in runtime._spares._spares}
    both = [runtime.start(make_spec("import time\ntime.sleep(3)")) for _ in range(2)]
    assert {h.id for h in both} == spares  # neither trial started cold
    assert all(runtime.wait(h, timeout=60).ok for h in both)
    for handle in both:
        runtime.remove(handle)
    assert _until(lambda: runtime._spares.waiting == 2)  # made again while they ran
    runtime.keep_spares(1)  # fewer at once: the extra spare is removed with its folder
    assert runtime._spares.waiting == 1
    assert len(list((make_spec("").workdir.parents[1]).glob(".spare-*"))) == 1
