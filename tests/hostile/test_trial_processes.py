"""A trial that prints without end, looks for secrets in its environment, or leaves a
process behind: its log is kept whole up to a cap with its last line, it finds no secret,
and nothing it started outlives it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.conftest import RSS_LIMIT_MB, run_cli, runtime_env

LAST_LINE = "THE-VERY-LAST-LINE-4d1e"
BIG_LOG = f"""\
import sys

line = "x" * 99 + "\\n"
for _ in range(60 * 10_000):  # 60 MB of output
    sys.stdout.write(line)
sys.stdout.flush()
print({LAST_LINE!r}, flush=True)
sys.exit(1)
"""
SECRETS = {
    "TWEAKOPS_SMTP_PASSWORD": "smtp-marker-91",
    "PGPASSWORD": "pg-marker-92",
    "JENKINS_API_TOKEN": "jenkins-marker-93",
    "AWS_SECRET_ACCESS_KEY": "aws-marker-94",
    "GITHUB_TOKEN": "github-marker-95",
}
ENV_DUMP = """\
import json
import os

own = open("/proc/self/environ", "rb").read().decode(errors="replace")
print(json.dumps({"environ": dict(os.environ), "proc": own}))
open(os.path.join(os.environ["TWEAKOPS_OUTPUT"], "accuracy.txt"), "w").write("0.95")
"""
GRANDCHILD = """\
import os
import sys
import time

out = os.environ["TWEAKOPS_OUTPUT"]
if os.fork() == 0:  # double fork and setsid: a daemon nobody waits for
    os.setsid()
    if os.fork() == 0:
        with open(os.path.join(out, "daemon.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
for _ in range(200):
    if os.path.exists(os.path.join(out, "daemon.pid")):
        break
    time.sleep(0.05)
open(os.path.join(out, "accuracy.txt"), "w").write("0.95")
"""


@pytest.mark.parametrize("runtime", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_60_mb_log_keeps_its_last_line(
    request: pytest.FixtureRequest,
    hostile_repo: Callable[..., Path],
    tmp_path: Path,
    runtime: str,
) -> None:
    home = tmp_path / "home"
    done = run_cli(
        home, "--json", "run", str(hostile_repo(BIG_LOG)), **runtime_env(request, runtime)
    )
    assert done.code == 1 and done.peak_mb < RSS_LIMIT_MB, done.stderr[-2000:]
    (error,) = done.error_lines
    assert f"last log line: '{LAST_LINE}'" in error  # the right line, from the log's end
    (log,) = home.glob("runs/*/trials/000/log.txt")
    assert log.stat().st_size > 30 * 2**20
    with log.open("rb") as handle:
        handle.seek(-200, os.SEEK_END)
        assert handle.read().decode().rstrip().endswith(LAST_LINE)


def test_a_local_trial_gets_no_secret_of_tweakops_environment(
    hostile_repo: Callable[..., Path], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    repo = hostile_repo(ENV_DUMP, "env: [DATA_DIR]\n")
    done = run_cli(home, "run", str(repo), TWEAKOPS_RUNTIME="local", DATA_DIR="/data", **SECRETS)
    assert done.code == 0, done.stderr[-2000:]
    (log,) = home.glob("runs/*/trials/000/log.txt")
    text = log.read_text()
    dumped = json.loads(next(line for line in text.splitlines() if line.startswith("{")))
    assert not [marker for marker in SECRETS.values() if marker in text]
    assert dumped["environ"]["DATA_DIR"] == "/data"  # listed under env: in tweakops.yaml
    assert dumped["environ"]["TWEAKOPS_TRIAL"] == "0" and "PATH" in dumped["environ"]


def test_a_secret_name_under_env_is_refused(
    hostile_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = hostile_repo(ENV_DUMP, "env: [PGPASSWORD]\n")
    done = run_cli(tmp_path / "home", "run", str(repo), TWEAKOPS_RUNTIME="local")
    assert done.code == 2
    (error,) = done.error_lines
    assert "PGPASSWORD is named like a secret, and tweakops never hands a secret" in error


def test_a_detached_grandchild_ends_with_its_trial(
    hostile_repo: Callable[..., Path], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "run", str(hostile_repo(GRANDCHILD)), TWEAKOPS_RUNTIME="local")
    assert done.code == 0, done.stderr[-2000:]
    (pid_file,) = home.glob("runs/*/trials/000/output/daemon.pid")
    daemon = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(daemon), f"the trial's daemon {daemon} outlived it"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
