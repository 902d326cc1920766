"""A run keeps the runtime it started with: a docker run whose engine does not answer is
waited for and left resumable, never moved out of its sandbox to the local runtime."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, start_tweakops, tweakops_env
from tests.hostile.conftest import run_cli
from training import read_epochs

pytestmark = pytest.mark.docker

SCRIPT = """\
import time
import sklearn  # noqa: F401  (the sklearn image)
import training

checkpoint = training.SklearnCheckpoint()
state = checkpoint.load()
for epoch in range(state[1] + 1 if state else 1, 31):
    time.sleep(0.2)
    checkpoint.save({"epoch": epoch}, epoch)
    training.log_epoch(epoch, accuracy=epoch / 30)
training.write_metric(0.95)
"""
CONFIG = "autotune: false\nthreshold: 0.9\nwatchdog: {engine_wait: 3, backoff: 0.1}\n"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def snapshot(home: Path, run_id: str) -> dict[str, Any]:
    shown = run_cli(home, "--json", "status", "--run", run_id)
    assert shown.code == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def test_an_unreachable_engine_leaves_a_docker_run_resumable_never_local(
    docker_engine: Any, tmp_path: Path
) -> None:
    repo, home = tmp_path / "repo", tmp_path / "home"
    repo.mkdir()
    (repo / "train.py").write_text(SCRIPT)
    (repo / "tweakops.yaml").write_text(CONFIG)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "slow")
    run_id = run_cli(home, "pull", str(repo)).stdout.strip().splitlines()[-1]
    assert run_cli(home, "inspect", "--run", run_id, TWEAKOPS_RUNTIME="docker").code == 0

    # The agent dies mid-train, and so does its container (`docker rm -f`, the host rebooted).
    agent = start_tweakops(
        home, "train", "--run", run_id, env=tweakops_env(home, TWEAKOPS_RUNTIME="auto")
    )
    output = home / "runs" / run_id / "trials" / "000" / "output"
    deadline = time.monotonic() + 120
    while not read_epochs(output):
        assert time.monotonic() < deadline and agent.poll() is None
        time.sleep(0.1)
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    for container in docker_engine.containers.list(filters={"label": f"tweakops.run={run_id}"}):
        container.remove(force=True)
    logged = len(read_epochs(output))

    swept = run_cli(home, "--json", "watch", "--all", **NO_ENGINE)
    assert swept.code == 0, swept.stderr[-2000:]
    (this,) = [r for r in json.loads(swept.stdout)["runs"] if r["run_id"] == run_id]
    assert this["action"] == "waiting", this
    before = snapshot(home, run_id)
    assert before["run"]["runtime"] == "docker" and before["run"]["status"] == "running"
    assert [s["status"] for s in before["stages"] if s["name"] == "train"] == ["running"]
    assert len(read_epochs(output)) == logged  # nothing trained meanwhile, anywhere
    assert not [e for e in before["events"] if e["kind"] == "trial_resumed"]

    moved = run_cli(home, "train", "--run", run_id, TWEAKOPS_RUNTIME="local")
    assert moved.code == 2
    assert "trains on the docker runtime (chosen when it was inspected)" in moved.stderr

    resumed = run_cli(home, "--json", "watch", "--all")  # the engine answers again
    assert resumed.code == 0, resumed.stderr[-2000:]
    after = snapshot(home, run_id)
    assert after["run"]["status"] == "reached" and after["run"]["runtime"] == "docker"
    (trial,) = after["trials"]
    assert trial["handle"].startswith("docker:") and trial["accuracy"] == 0.95
