"""The pipeline with training in real containers: image per framework, limits, clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, train_in_background

pytestmark = pytest.mark.docker

OOM_SCRIPT = """\
import sklearn  # noqa: F401
hog = bytearray(1024 * 1024 * 1024)  # 1 GiB under a 128 MiB limit
open("accuracy.txt", "w").write("0.9")
"""


def containers_of(client, run_id: str) -> list[object]:
    return client.containers.list(all=True, filters={"label": f"tweakops.run={run_id}"})


def test_sklearn_example_trains_in_its_image_to_the_threshold(
    docker_engine, make_repo, cli, home: Path
) -> None:
    repo = make_repo("iris-sklearn")
    result = cli("run", str(repo), "--runtime", "docker")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trials run on the docker runtime in tweakops/sklearn:" in result.stderr
    snapshot = json.loads(cli("--json", "status").stdout)
    trained = next(s for s in snapshot["stages"] if s["name"] == "train")["result"]
    assert trained["runtime"] == "docker" and trained["image"].startswith("tweakops/sklearn:")
    assert all(t["handle"].startswith("docker:") for t in snapshot["trials"])
    text = cli("status").stdout
    assert "runtime: docker, image tweakops/sklearn:" in text and "docker:" in text
    assert containers_of(docker_engine, snapshot["run"]["id"]) == []  # finished ones removed
    clone = next((home / "repos").iterdir())
    assert git(clone, "status", "--porcelain") == ""  # the pulled clone is untouched
    assert git(repo, "status", "--porcelain") == ""


def test_auto_runtime_says_it_used_docker(docker_engine, make_repo, cli) -> None:
    repo = make_repo("iris-sklearn", files={"tweakops.yaml": "threshold: 0.5\n"})
    result = cli("run", str(repo), TWEAKOPS_RUNTIME="auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trials run on the docker runtime in tweakops/sklearn:" in result.stderr


def test_out_of_memory_trial_is_reported_as_such(docker_engine, make_repo, cli) -> None:
    repo = make_repo(files={"train.py": OOM_SCRIPT, "tweakops.yaml": "resources: {memory: 128m}\n"})
    result = cli("run", str(repo), "--runtime", "docker")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "OOM-killed" in last and "resources.memory" in last, last
    trial = json.loads(cli("--json", "status").stdout)["trials"][0]
    assert trial["verdict"] == "oom" and trial["restarts"] == 0  # not retried


def test_crash_in_a_container_is_a_code_error_with_its_log_line(
    docker_engine, make_repo, cli
) -> None:
    repo = make_repo(files={"train.py": "import sklearn\nraise SystemExit('bad data: 3 rows')\n"})
    result = cli("run", str(repo), "--runtime", "docker")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "exit 1" in last and "bad data: 3 rows" in last, last


@pytest.mark.slow
def test_keras_example_trains_in_the_keras_image(docker_engine, make_repo, cli) -> None:
    repo = make_repo("digits-cnn")
    result = cli("run", str(repo), "--runtime", "docker", timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    snapshot = json.loads(cli("--json", "status").stdout)
    trained = next(s for s in snapshot["stages"] if s["name"] == "train")["result"]
    assert trained["image"].startswith("tweakops/keras:")
    assert max(t["accuracy"] or 0.0 for t in snapshot["trials"]) >= 0.97


def test_no_engine_is_one_line_saying_how_to_start_one(make_repo, cli, home: Path) -> None:
    repo = make_repo("iris-sklearn")
    result = cli("run", str(repo), "--runtime", "docker", DOCKER_HOST="unix:///tmp/no-engine.sock")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: no Docker engine answers at unix:///tmp/no-engine.sock")
    assert "--runtime local" in line
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())  # no run left


def test_missing_user_image_is_named(docker_engine, make_repo, cli) -> None:
    repo = make_repo("iris-sklearn", files={"tweakops.yaml": "image: registry.invalid/ml:1\n"})
    result = cli("run", str(repo), "--runtime", "docker")
    assert result.returncode == 1
    assert "registry.invalid/ml:1" in result.stderr.strip().splitlines()[-1]


def test_aborted_build_leaves_no_container(docker_engine, make_repo, cli, home: Path) -> None:
    """Jenkins aborts with SIGTERM: the stage is marked interrupted and its container removed."""
    import signal
    import subprocess
    import time

    from tests.integration.test_resume import COUNTER_SCRIPT

    repo = make_repo(files={"train.py": COUNTER_SCRIPT})
    run_id, train = train_in_background(
        cli, home, repo, stderr=subprocess.PIPE, text=True, TWEAKOPS_RUNTIME="docker"
    )
    deadline = time.monotonic() + 60
    while not containers_of(docker_engine, run_id):
        assert time.monotonic() < deadline and train.poll() is None
        time.sleep(0.2)
    train.send_signal(signal.SIGTERM)
    _, stderr = train.communicate(timeout=60)
    assert train.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr.strip().splitlines()[-1]
    assert containers_of(docker_engine, run_id) == []
    train_stage = json.loads(cli("--json", "status", "--run", run_id).stdout)["stages"][2]
    assert train_stage["status"] == "failed" and "interrupted" in train_stage["error"]
