"""What a clumsy user or a broken machine does to tweakops itself: a config that is not UTF-8
or holds a YAML alias bomb, a damaged run store, a full disk, a password in the URL.

Each ends with one `error:` line that says what is wrong and what to do, the right exit code,
no traceback, the stage and the run recorded as failed, and nothing already stored lost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import git, skip_or_require
from tests.hostile.conftest import RSS_LIMIT_MB, Outcome, everything_written, run_cli

PASSWORD = "Pa55-in-the-URL-63b1"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n"
    for i in range(8)
)
SKLEARN = "from sklearn.datasets import load_iris\nopen('accuracy.txt', 'w').write('0.97')\n"


def one_clean_error(done: Outcome) -> str:
    """The one `error:` line of a failed command, with no traceback around it."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (error,) = done.error_lines
    return error


def repo_with(make_repo: Callable[..., Path], config: bytes) -> Path:
    repo = make_repo(files={"train.py": SKLEARN})
    (repo / "tweakops.yaml").write_bytes(config)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "config")
    return repo


def statuses(home: Path) -> tuple[str, dict[str, str]]:
    shown = run_cli(home, "--json", "status")
    assert shown.code == 0, shown.stderr
    snapshot = json.loads(shown.stdout)
    return snapshot["run"]["status"], {s["name"]: s["status"] for s in snapshot["stages"]}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b"threshold: 0.9\nnotify: {to: [caf\xe9@example.org]}\n", "is not UTF-8 text (byte 0xe9"),
        (ALIAS_BOMB.encode(), "aliases (*a) are not allowed: write the value out"),
        (b"time_budget: 1e308\n", "time_budget must be a positive number of seconds (30 days"),
        (
            b"search_space: {lr: {type: float, high: 1, low: [" + b"1, " * 50_000 + b"1]}}\n",
            "lr.low",
        ),
    ],
    ids=["not-utf8", "alias-bomb", "huge-budget", "huge-value"],
)
def test_a_bad_config_is_one_short_error_and_the_run_is_failed(
    make_repo: Callable[..., Path], tmp_path: Path, config: bytes, expected: str
) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "run", str(repo_with(make_repo, config)), TWEAKOPS_RUNTIME="local")
    assert done.code == 2, done.stderr[-2000:]
    error = one_clean_error(done)
    assert expected in error and len(error) < 600, error
    assert done.peak_mb < RSS_LIMIT_MB
    run, stages = statuses(home)
    assert (run, stages["pull"], stages["inspect"], stages["train"]) == (
        "failed",
        "succeeded",
        "failed",
        "skipped",
    )


def test_a_stage_run_on_its_own_marks_the_run_failed_too(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    repo = repo_with(make_repo, b"threshold: 0.9\x00\xff\n")
    assert run_cli(home, "pull", str(repo)).code == 0
    done = run_cli(home, "inspect", TWEAKOPS_RUNTIME="local")  # the Jenkins job's way
    assert done.code == 2
    one_clean_error(done)
    assert statuses(home)[0] == "failed"


def test_a_damaged_store_names_the_file_and_how_to_recover(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "tweakops.db").write_bytes(b"this is not a database, it was overwritten" * 100)
    for command in (["runs"], ["status"], ["run", str(tmp_path)]):
        done = run_cli(home, *command)
        assert done.code == 1, (command, done.stderr)
        error = one_clean_error(done)
        assert f"the run store {home / 'tweakops.db'} is damaged" in error
        assert "mv " in error and ".broken" in error and "run folders" in error


def test_a_password_in_the_url_is_used_never_shown_or_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"https://ci-bot:{PASSWORD}@127.0.0.1:9/team/ml.git"  # nothing listens on port 9
    done = run_cli(home, "run", url, TWEAKOPS_RUNTIME="local", timeout=120)
    assert done.code == 1
    error = one_clean_error(done)
    assert "https://ci-bot:***@127.0.0.1:9/team/ml.git" in error
    runs = run_cli(home, "runs")
    status = run_cli(home, "status")
    shown = done.stdout + done.stderr + runs.stdout + status.stdout + status.stderr
    assert PASSWORD not in shown + everything_written(home)
    assert "ci-bot:***@" in runs.stdout


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MB tmpfs (root only: CI runs these for real)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        skip_or_require("TWEAKOPS_REQUIRE_TMPFS", "a tmpfs", "mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_error_and_what_was_stored_stays_readable(
    make_repo: Callable[..., Path], small_disk: Path
) -> None:
    home = small_disk / "home"
    repo = make_repo(files={"train.py": SKLEARN, "tweakops.yaml": "autotune: false\n"})
    first = run_cli(home, "--json", "run", str(repo), TWEAKOPS_RUNTIME="local")
    assert first.code in (0, 3), first.stderr[-2000:]
    kept = json.loads(first.stdout)
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=100"], check=False,
                   capture_output=True)  # fmt: skip
    done = run_cli(home, "run", str(repo), TWEAKOPS_RUNTIME="local")
    assert done.code == 1, done.stderr[-2000:]
    error = one_clean_error(done)
    assert "full" in error or "no space left" in error, error
    for command in (["runs"], ["status", "--run", kept["run"]["id"]]):
        shown = run_cli(home, *command)
        assert shown.code == 0, (command, shown.stderr)
        assert kept["run"]["id"] in shown.stdout
    again = json.loads(run_cli(home, "--json", "status", "--run", kept["run"]["id"]).stdout)
    assert again["trials"] == kept["trials"] and again["run"]["status"] == kept["run"]["status"]
