"""Shared fixtures: real git repositories and the real CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Subprocesses (`python -m tweakops`, trial scripts importing `training`) use this checkout,
# whatever an editable install elsewhere on the machine points at.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen",
        action="store_true",
        help="rewrite the golden files of tests/jobs/fixtures from jobs/ (on purpose)",
    )


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """A committed git repo from an example folder and/or {relative path: text}."""

    def make(
        example: str | None = None, files: dict[str, str] | None = None, name: str = "repo"
    ) -> Path:
        repo = tmp_path / name
        if example:
            shutil.copytree(EXAMPLES / example, repo, ignore=shutil.ignore_patterns("__pycache__"))
        repo.mkdir(exist_ok=True)
        for rel, text in (files or {}).items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def tweakops_env(home: Path, **env: str) -> dict[str, str]:
    """The environment `tweakops` runs with in a test: the run store `home`, CI output, the
    local runtime unless `env` names another, and never a TWEAKOPS_RUN_ID."""
    full = {**os.environ, "TWEAKOPS_HOME": str(home), "CI": "true", "TWEAKOPS_RUNTIME": "local"}
    full.update(env)
    full.pop("TWEAKOPS_RUN_ID", None)
    return full


def run_tweakops(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`tweakops ARGS` to its end, output captured, beside the run store `home` (`env`: the
    whole environment, default tweakops_env(home))."""
    return subprocess.run(
        [sys.executable, "-m", "tweakops", *args],
        env=tweakops_env(home) if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=home.parent,
    )


def start_tweakops(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    text: bool = False,
) -> subprocess.Popen[Any]:
    """`tweakops ARGS` in the background (an agent, a second machine, a process to kill),
    beside the run store `home` (`env`: the whole environment, default tweakops_env(home))."""
    return subprocess.Popen(
        [sys.executable, "-m", "tweakops", *args],
        env=tweakops_env(home) if env is None else env,
        stdout=stdout,
        stderr=stderr,
        text=text,
        cwd=home.parent,
    )


@pytest.fixture
def cli(home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `tweakops ARGS` as a user would, against the test's run store (local runtime
    unless the test passes TWEAKOPS_RUNTIME or --runtime)."""

    def run(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        return run_tweakops(home, *args, env=tweakops_env(home, **env), timeout=timeout)

    return run


def train_in_background(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    home: Path,
    repo: Path,
    *,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    text: bool = False,
    **env: str,
) -> tuple[str, subprocess.Popen[Any]]:
    """`tweakops train` as its own process (an agent), its run pulled and inspected first
    (inspect and train with `env`, e.g. TWEAKOPS_RUNTIME="docker")."""
    pulled = cli("pull", str(repo))
    assert pulled.returncode == 0, pulled.stderr
    run_id = pulled.stdout.strip().splitlines()[-1]
    inspected = cli("inspect", "--run", run_id, **env)
    assert inspected.returncode == 0, inspected.stderr
    env_ = tweakops_env(home, **env)
    train = start_tweakops(
        home, "train", "--run", run_id, env=env_, stdout=stdout, stderr=stderr, text=text
    )
    return run_id, train


def skip_or_require(variable: str, what: str, reason: str) -> NoReturn:
    """Skip a test that lacks `what`; fail it instead when `variable`=1 (CI runs it for real)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{what} required ({variable}=1): {reason}")
    pytest.skip(reason)


def docker_client_or_none() -> object | None:
    """A pinged Docker SDK client, or None when no engine answers."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception:
        return None


@pytest.fixture(scope="session")
def docker_engine() -> object:
    """The real engine; skipped without one, but a failure when TWEAKOPS_REQUIRE_DOCKER=1 (CI)."""
    client = docker_client_or_none()
    if client is None:
        reason = "no Docker engine answers (start dockerd, see .ci/run)"
        skip_or_require("TWEAKOPS_REQUIRE_DOCKER", "Docker engine", reason)
    return client
