"""Hostile trials: what a careful attacker or a clumsy user can leave in a trial folder.

Every case runs the real CLI on a repository whose train.py misbehaves, and checks what a
user and an operator would: the run ends (within a bound), its memory stays bounded, and a
secret outside the trial folder appears nowhere tweakops writes or shows (its output, the run
store, the report, the emails, the exported artifacts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import git

SECRET = "HOSTILE-SECRET-7f3c9a"  # the content of a file no trial may make the host read
RUN_LIMIT = 240.0  # seconds a hostile run may take before the test calls it hung
RSS_LIMIT_MB = 1024  # tweakops' own peak memory in a hostile run
NOTIFY_ALL = "notify: {on: [success, failure], to: [ops@example.org]}\n"  # mails go to the outbox


@dataclass
class Outcome:
    """One `tweakops` command as a user saw it, and its process's peak memory."""

    code: int
    stdout: str
    stderr: str
    peak_mb: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def run_cli(home: Path, *args: str, timeout: float = RUN_LIMIT, **env: str) -> Outcome:
    """`tweakops ARGS` in a process of its own: its exit code, output and peak memory (the
    rusage wait4 gives for it). A run that does not end within `timeout` fails the test."""
    full = {**os.environ, "TWEAKOPS_HOME": str(home), "CI": "true", **env}
    full.pop("TWEAKOPS_RUN_ID", None)
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tweakops", *args],
            env=full,
            cwd=home.parent,
            stdout=stdout,
            stderr=stderr,
        )
        return _finish(proc, args, timeout, stdout, stderr)


def _finish(
    proc: subprocess.Popen[bytes],
    args: tuple[str, ...],
    timeout: float,
    stdout: IO[str],
    stderr: IO[str],
) -> Outcome:
    """Wait (wait4, for the rusage) within `timeout`; the outcome with both outputs."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            stderr.seek(0)
            raise AssertionError(f"tweakops {' '.join(args)} hung:\n{stderr.read()[-3000:]}")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout.seek(0)
    stderr.seek(0)
    return Outcome(proc.returncode, stdout.read(), stderr.read(), usage.ru_maxrss / 1024)


def everything_written(home: Path, *extra: Path) -> str:
    """What tweakops keeps and shows of its runs, as one string to search: every row of the
    run store, every report.html and outbox email, and the files of the `extra` folders (an
    artifacts export). A trial's own folder is its business, and is not searched."""
    parts: list[str] = []
    db = home / "tweakops.db"
    if db.is_file():
        with sqlite3.connect(db) as conn:
            tables = [
                t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                rows = conn.execute(f"SELECT * FROM {table}")
                parts += [json.dumps(row, default=str) for row in rows]
    shown = [*home.glob("runs/*/report.html"), *home.glob("runs/*/outbox/**/*.eml")]
    for folder in extra:
        for current, _dirs, files in os.walk(folder):  # never follows a link
            shown += [Path(current, name) for name in files]
    for path in shown:
        if path.is_file() and not path.is_symlink():
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file outside every trial folder holding SECRET (as /etc/shadow would)."""
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    return path


@pytest.fixture
def hostile_repo(tmp_path: Path) -> Callable[[str], Path]:
    """A committed repository whose train.py is SCRIPT; the sklearn image is picked for it."""

    def make(
        script: str, config: str = "notify: {on: [success, failure], to: [ops@example.org]}\n"
    ) -> Path:
        repo = tmp_path / "repo"
        repo.mkdir(exist_ok=True)
        (repo / "train.py").write_text(script)
        (repo / "requirements.txt").write_text("scikit-learn\n")
        (repo / "tweakops.yaml").write_text("autotune: false\n" + config)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "hostile")
        return repo

    return make


def runtime_env(request: pytest.FixtureRequest, runtime: str) -> dict[str, str]:
    """The environment that puts `tweakops run` on RUNTIME (docker: the engine is required)."""
    if runtime == "docker":
        request.getfixturevalue("docker_engine")
    return {"TWEAKOPS_RUNTIME": runtime}
