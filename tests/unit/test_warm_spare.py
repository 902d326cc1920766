"""The warm interpreter's job-file mode (training/_warm.py) and a docker spare's folder and key
(tweakops/runtime/_spare_folder.py, _docker_warm.py): the parts that need no engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from training._warm import JOB_FILE, OWNER_FILE, job_text, owner_alive
from tweakops.runtime import TrialSpec
from tweakops.runtime._spare_folder import (
    hold_owner,
    let_go,
    make_spare_folder,
    move_trial_into,
    remove_spare_folder,
    write_job,
)
from tweakops.runtime.local_backend import WARM

NOISY = "import sys\nprint('noise from an import')\nprint('more noise', file=sys.stderr)\n"


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    folder = tmp_path / "trials" / "003"
    (folder / "src").mkdir(parents=True)
    (folder / "output").mkdir()
    (folder / "src" / "train.py").write_text("print('hi')\n")
    (folder / "params.json").write_text("{}\n")
    return folder


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text() if p.is_file() else "/"
        for p in sorted(folder.rglob("*"))
    }


# ---- the spare's folder -------------------------------------------------------------------


def test_the_trial_folder_moves_into_the_spares_folder_which_takes_its_place(trial: Path) -> None:
    before = _tree(trial)
    spare = make_spare_folder(trial.parent)
    owner = hold_owner(spare)
    inode = spare.stat().st_ino
    (trial / JOB_FILE).write_text('{"argv": ["evil.py"]}')  # left by an earlier attempt
    move_trial_into(trial, spare)
    assert not spare.exists() and trial.stat().st_ino == inode  # what the container mounts
    assert _tree(trial) == {**before, OWNER_FILE: ""}
    let_go(owner, trial)
    assert _tree(trial) == before


def test_a_failed_move_puts_every_file_back(trial: Path) -> None:
    before = _tree(trial)
    spare = make_spare_folder(trial.parent)
    (spare / "src").mkdir()  # a name clash: the move stops half-way
    with pytest.raises(FileExistsError):
        move_trial_into(trial, spare)
    assert _tree(trial) == before
    assert sorted(os.listdir(spare)) == ["src"]


def test_a_job_is_written_whole_and_only_for_the_container_user(trial: Path) -> None:
    write_job(trial, job_text(["train.py"], "/trial/src", {"A": "1"}), None)
    job = trial / JOB_FILE
    assert json.loads(job.read_text()) == {
        "argv": ["train.py"],
        "cwd": "/trial/src",
        "env": {"A": "1"},
    }
    assert job.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in trial.iterdir()) == sorted(
        [JOB_FILE, "output", "params.json", "src"]
    )


def test_only_an_unused_spare_folder_is_removed(trial: Path) -> None:
    spare = make_spare_folder(trial.parent)
    let_go(hold_owner(spare), spare)
    assert remove_spare_folder(spare) and not spare.exists()
    kept = make_spare_folder(trial.parent)
    (kept / "params.json").write_text("{}")  # a trial's file: never deleted by a cleanup
    assert not remove_spare_folder(kept) and (kept / "params.json").exists()
    assert not remove_spare_folder(trial) and trial.exists()  # not a spare's folder at all


def test_the_owner_lock_says_whether_the_owner_still_holds_it(tmp_path: Path) -> None:
    assert not owner_alive(str(tmp_path / OWNER_FILE))
    fd = hold_owner(tmp_path)
    assert owner_alive(str(tmp_path / OWNER_FILE))
    let_go(fd, tmp_path)
    assert not owner_alive(str(tmp_path / OWNER_FILE))


# ---- training/_warm.py with a job file ----------------------------------------------------


@dataclass
class Spare:
    process: subprocess.Popen[str]
    owner: int  # the owner lock this test holds


def _spare(folder: Path, *modules: str) -> Spare:
    """The warm interpreter waiting for folder's job file, as a spare container runs it."""
    (folder / "noisy.py").write_text(NOISY)
    owner = hold_owner(folder)
    process = subprocess.Popen(
        [sys.executable, "-u", WARM, "--job-file", str(folder / JOB_FILE),
         "--owner", str(folder / OWNER_FILE), *modules],
        cwd=folder,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(folder), "BASE": "image"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    return Spare(process, owner)


def _send(spare: Spare, folder: Path, script: str, *args: str) -> tuple[str, str]:
    (folder / "src" / "train.py").write_text(textwrap.dedent(script))
    write_job(folder, job_text(["train.py", *args], str(folder / "src"), {"LR": "0.1"}), None)
    let_go(spare.owner, folder)
    return spare.process.communicate(timeout=30)


def test_a_spare_runs_its_job_with_the_trials_argv_cwd_and_env_and_only_its_output(
    trial: Path,
) -> None:
    spare = _spare(trial, "noisy", "json")
    time.sleep(0.3)  # imports done: their noise must not reach the trial's output
    script = """
        import os, sys
        print("argv", sys.argv[1:], "cwd", os.getcwd())
        print("env", os.environ["LR"], os.environ["BASE"], "noisy" in sys.modules)
        print("to stderr", file=sys.stderr)
        open(os.path.join(os.environ.get("OUT", "."), "made.txt"), "w").write("yes")
        def typed(x: int) -> None: ...
        print(sys.argv[0], __file__, __name__, typed.__annotations__["x"] is int)
    """
    out, err = _send(spare, trial, script, "--flag")
    assert spare.process.returncode == 0
    assert out == (
        f"argv ['--flag'] cwd {trial / 'src'}\nenv 0.1 image True\n"
        f"train.py {trial / 'src' / 'train.py'} __main__ True\n"  # as `python train.py`
    )
    assert err == "to stderr\n"
    assert (trial / "src" / "made.txt").read_text() == "yes"
    assert not (trial / JOB_FILE).exists()  # taken: the trial never sees it


@pytest.mark.parametrize(
    ("ending", "code", "stderr"),
    [("pass", 0, ""), ("raise SystemExit(3)", 3, ""), ("raise SystemExit('no')", 1, "no\n")],
)
def test_a_spare_exits_as_its_script_would(
    trial: Path, ending: str, code: int, stderr: str
) -> None:
    spare = _spare(trial)
    out, err = _send(spare, trial, ending)
    assert (spare.process.returncode, out, err) == (code, "", stderr)


def test_a_spare_whose_owner_let_go_without_a_job_ends_running_nothing(trial: Path) -> None:
    spare = _spare(trial, "noisy")
    let_go(spare.owner, trial)
    out, err = spare.process.communicate(timeout=30)
    assert (spare.process.returncode, out, err) == (0, "", "")


def test_a_spare_started_without_secrets_gets_the_trials_variables_from_its_job(
    trial: Path,
) -> None:
    spare = _spare(trial)
    environ = b""
    while b"BASE=" not in environ:  # exec'd: what /proc shows is the interpreter's
        environ = Path(f"/proc/{spare.process.pid}/environ").read_bytes()
    assert b"LR=" not in environ and b"BASE=image" in environ
    out, _ = _send(spare, trial, "import os; print(os.environ['LR'])")
    assert out == "0.1\n"


# ---- training/_warm.py --now: a cold trial that exits like a warm one ---------------------


def _now(folder: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "src" / "train.py").write_text(textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, WARM, "--now", "train.py", *args],
        cwd=folder / "src",
        env={"PATH": os.environ["PATH"], "LR": "0.1"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_now_runs_the_script_as_python_would_in_the_cwd_and_env_it_was_given(
    trial: Path,
) -> None:
    (trial / "src" / "helper.py").write_text("VALUE = 'from the script folder'\n")
    done = _now(
        trial,
        """
        import atexit, os, sys, threading
        import helper
        atexit.register(lambda: print("atexit ran"))
        unclosed = open("accuracy.txt", "w")
        unclosed.write("0.9")  # never closed: flushed on the way out all the same
        print("argv", sys.argv, os.environ["LR"], helper.VALUE, __name__)
        """,
        "--flag",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "argv ['train.py', '--flag'] 0.1 from the script folder __main__\natexit ran\n"
    )
    assert (trial / "src" / "accuracy.txt").read_text() == "0.9"


@pytest.mark.parametrize(
    ("ending", "code", "stderr"),
    [("pass", 0, ""), ("raise SystemExit(3)", 3, ""), ("raise SystemExit('no')", 1, "no\n")],
)
def test_now_exits_as_its_script_would(trial: Path, ending: str, code: int, stderr: str) -> None:
    done = _now(trial, ending)
    assert (done.returncode, done.stdout, done.stderr) == (code, "", stderr)


def test_now_prints_a_scripts_error_from_the_scripts_own_frames(trial: Path) -> None:
    done = _now(trial, "def f():\n    raise ValueError('bad param')\nf()\n")
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):\n  File ")
    assert "_warm.py" not in done.stderr and done.stderr.endswith("ValueError: bad param\n")


# ---- the docker spare's key: what a trial must share with it -------------------------------


def _spec(folder: Path, **env: str) -> TrialSpec:
    return TrialSpec(
        f"tweakops-r1-t{folder.name}",
        ("python", "train.py"),
        workdir=folder / "src",
        output_dir=folder / "output",
        log_path=folder / "log.txt",
        env={"TWEAKOPS_TRIAL": folder.name, "TWEAKOPS_PARAMS": str(folder / "params.json"), **env},
        image="tweakops/keras:abc",
        labels={"tweakops.run": "r1", "tweakops.trial": folder.name},
        memory_limit="2g",
    )


def test_a_spare_key_holds_the_sandbox_and_import_variables_never_a_trials_own(
    tmp_path: Path,
) -> None:
    docker_warm = pytest.importorskip("tweakops.runtime._docker_warm")
    one, two = tmp_path / "trials" / "001", tmp_path / "trials" / "002"
    env = {"OMP_NUM_THREADS": "2", "API_TOKEN": "s3cret", "MPLCONFIGDIR": "{}/cache"}
    key = docker_warm.spare_key(
        _spec(one, **{k: v.format(one) for k, v in env.items()}), one, "1000:1000"
    )
    assert key == docker_warm.spare_key(
        _spec(two, **{k: v.format(two) for k, v in env.items()}), two, "1000:1000"
    )
    assert dict(key.env) == {
        "OMP_NUM_THREADS": "2",
        "MPLCONFIGDIR": "/trial/cache",
        "PYTHONUNBUFFERED": "1",
    }
    assert dict(key.labels) == {"tweakops.run": "r1", "tweakops.warm": "1"}
    other = docker_warm.spare_key(_spec(two, OMP_NUM_THREADS="1"), two, "1000:1000")
    assert other != key
