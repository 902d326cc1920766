"""`tweakops run` and each stage command, end to end: real git repos, real training processes."""

from __future__ import annotations

import email
import json
from pathlib import Path

import pytest

from tests.conftest import git

SEED_SCRIPT = """\
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
model = LogisticRegression(max_iter=200).fit(Xtr, ytr)
open("accuracy.txt", "w").write(str(round(model.score(Xte, yte) * 100, 1)))
"""
SKLEARN_HELPER = "import sklearn  # noqa\n"


def run_id_of(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_run_takes_the_sklearn_example_to_its_threshold(make_repo, cli, home: Path) -> None:
    repo = make_repo("iris-sklearn")
    result = cli("run", str(repo))
    assert result.returncode == 0, result.stderr
    assert "threshold 0.95 reached" in result.stdout
    status = json.loads(cli("--json", "status").stdout)
    folder = Path(status["folder"])
    assert float((folder / "accuracy.txt").read_text()) >= 0.95
    assert [s["status"] for s in status["stages"]] == ["succeeded"] * 6
    trials = status["trials"]
    assert trials[0]["params"] == {} and trials[0]["accuracy"] < 0.95
    assert max(t["accuracy"] or 0.0 for t in trials) >= 0.95
    eml = list((folder / "outbox").glob("*.eml"))
    assert len(eml) == 1
    message = email.message_from_bytes(eml[0].read_bytes())
    assert "reached" in message["Subject"]


def test_each_stage_runs_on_its_own_against_one_run(make_repo, cli) -> None:
    repo = make_repo("iris-sklearn")
    pulled = cli("pull", str(repo), "--threshold", "0.95")
    assert pulled.returncode == 0, pulled.stderr
    run_id = run_id_of(pulled)
    inspected = cli("--json", "inspect", "--run", run_id)
    assert json.loads(inspected.stdout)["framework"] == "sklearn"
    for stage in ("train", "tune", "notify", "watch"):
        done = cli(stage, "--run", run_id)
        assert done.returncode == 0, f"{stage}: {done.stderr}"
    status = cli("status", "--run", run_id).stdout
    for word in ("pull", "inspect", "train", "tune", "notify", "watch", "trial", "accuracy"):
        assert word in status
    again = cli("--json", "train", "--run", run_id)  # a rerun keeps the finished trial 0
    assert json.loads(again.stdout)["trial"] == 0


def test_ref_picks_the_commit_and_later_stages_keep_working(make_repo, cli) -> None:
    repo = make_repo("iris-sklearn")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "NOTES.md").write_text("a later commit\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "later")
    result = cli("run", str(repo), "--ref", first)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(cli("--json", "status").stdout)["run"]["sha"] == first


def test_seed_style_script_that_ignores_params_is_tuned_through_its_literals(
    make_repo, cli
) -> None:
    yaml = "threshold: 0.99\nmax_trials: 3\n"
    repo = make_repo(files={"train.py": SEED_SCRIPT, "tweakops.yaml": yaml})
    result = cli("run", str(repo))
    assert result.returncode == 3, result.stderr
    assert "knobs tried (inferred from the code): logistic_regression_C (train.py:7)" in (
        result.stdout
    )
    trials = json.loads(cli("--json", "status").stdout)["trials"]
    assert len(trials) == 3 and 0.8 < trials[0]["accuracy"] < 1.0  # "97.8" read as a percentage
    assert {"logistic_regression_C", "logistic_regression_max_iter"} == set(trials[1]["params"])


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("def broken(:\n", "exit 1 .*SyntaxError"),
        ("raise RuntimeError('boom in training')\n", "code error.*boom in training"),
        ("print('trained, forgot the metric')\n", "no accuracy.txt was written"),
        ("open('accuracy.txt', 'w').write('great!')\n", "great!"),
    ],
    ids=["syntax-error", "crash", "no-accuracy-file", "unreadable-accuracy"],
)
def test_broken_entrypoint_fails_with_one_clear_line(
    make_repo, cli, script: str, expected: str
) -> None:
    repo = make_repo(files={"train.py": script, "model.py": SKLEARN_HELPER})
    result = cli("run", str(repo))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: trial 0 (the defaults) failed")
    assert __import__("re").search(expected, last), last
    status = json.loads(cli("--json", "status").stdout)
    assert [s["status"] for s in status["stages"]][:4] == [
        "succeeded",
        "succeeded",
        "failed",
        "skipped",
    ]
    assert status["trials"][0]["restarts"] == 0  # a code error is recorded, not retried


def test_a_committed_accuracy_file_is_never_read_as_the_result(make_repo, cli) -> None:
    repo = make_repo(
        files={"train.py": "import sklearn\nprint('no metric written')\n", "accuracy.txt": "0.99\n"}
    )
    result = cli("run", str(repo))
    assert result.returncode == 1
    assert "no accuracy.txt was written" in result.stderr
    assert (repo / "accuracy.txt").read_text() == "0.99\n"  # the user's repo is untouched


def test_config_errors_stop_with_the_key_and_exit_2(make_repo, cli) -> None:
    repo = make_repo("iris-sklearn", files={"tweakops.yaml": "threshold: 170\n"})
    result = cli("run", str(repo))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: threshold must be between 0 and 1 (or a percentage up to 100) but got 170 in "
        "threshold in tweakops.yaml"
    )
    bad_flag = cli("run", str(repo), "--max-trials", "0")
    assert bad_flag.returncode == 2 and "--max-trials" in bad_flag.stderr


def test_no_framework_and_broken_source_are_clear_errors(make_repo, cli, tmp_path: Path) -> None:
    repo = make_repo(files={"train.py": "import json\nprint(1)\n"})
    result = cli("run", str(repo))
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "no ML framework found" in last and "image:" in last
    missing = cli("run", str(tmp_path / "nowhere"))
    last = missing.stderr.strip().splitlines()[-1]
    assert missing.returncode == 1 and last.startswith("error: ") and "does not exist" in last
    unsafe = cli("pull", "ext::sh -c touch% /tmp/tweakops-pwned")
    assert unsafe.returncode == 1 and not Path("/tmp/tweakops-pwned").exists()


def test_periodic_watch_before_any_run_succeeds_quietly(cli) -> None:
    result = cli("watch", "--source", "https://example.org/never-pushed.git")
    assert result.returncode == 0 and "nothing to watch" in result.stdout


def test_stage_without_a_run_says_how_to_start_one(cli) -> None:
    result = cli("train")
    assert result.returncode == 1
    assert "tweakops run SOURCE" in result.stderr
