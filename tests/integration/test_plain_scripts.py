"""Plain scripts as people push them, run with `tweakops run REPO` and no flags.

The seed-style examples (examples/seed-keras, seed-notebook, seed-sklearn) and a repository
with two scripts know nothing of tweakops: hard-coded settings, their own imports and
requirements, a percentage in ./accuracy.txt. Each must be found, given its packages, trained
as written (trial 0 misses the default threshold of 0.9), tuned through the literals inspect
found until the threshold is reached, on the local runtime and in Docker, while the
repository stays exactly as it was.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

THRESHOLD = 0.9  # the default: no tweakops.yaml, no flags
TWO_SCRIPTS = {
    "prepare.py": "from sklearn.datasets import load_iris\n\n"
    "X, y = load_iris(return_X_y=True)\nprint('rows:', len(X))\n",
    "classify.py": "from sklearn.datasets import load_iris\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.tree import DecisionTreeClassifier\n\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)\n"
    "tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_train, y_train)\n"
    "score = tree.score(X_test, y_test)\n"
    "with open('accuracy.txt', 'w') as out:\n"
    "    out.write(f'{score:.4f}')\n",
}
# (example folder or None for TWO_SCRIPTS, entrypoint, rule, framework, knobs that must be found)
CASES = {
    "keras-script": (
        "seed-keras",
        "model.py",
        "the only script at the root",
        "keras",
        {"conv2d_filters", "dense_units", "optimizer", "learning_rate", "epochs", "batch_size"},
    ),
    "keras-notebook": (
        "seed-notebook",
        "digits.ipynb",
        "the only notebook at the root",
        "keras",
        {"dense_units", "dropout_rate", "epochs", "batch_size"},
    ),
    "sklearn-script": (
        "seed-sklearn",
        "wine_vote.py",
        "the only script at the root",
        "sklearn",
        {"knn_n_neighbors", "knn_weights", "random_forest_n_estimators"},
    ),
    "two-scripts": (
        None,
        "classify.py",
        "the only script that writes accuracy.txt",
        "sklearn",
        {"decision_tree_max_depth", "decision_tree_min_samples_leaf"},
    ),
}
RUNTIMES = ["local", pytest.param("docker", marks=pytest.mark.docker)]
KERAS_CASES = {"keras-script", "keras-notebook"}


def tree_bytes(repo: Path) -> dict[str, bytes]:
    """Every file of the work tree (not .git), by path."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def inspect_result(snapshot: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [s for s in snapshot["stages"] if s["name"] == "inspect"]
    result: dict[str, Any] = stage["result"]
    return result


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", list(CASES))
def test_a_plain_repository_runs_unchanged_and_tuning_beats_its_defaults(
    request: pytest.FixtureRequest,
    make_repo: Callable[..., Path],
    cli: Callable[..., subprocess.CompletedProcess[str]],
    case: str,
    runtime: str,
) -> None:
    if runtime == "docker":
        request.getfixturevalue("docker_engine")
    if case in KERAS_CASES:
        request.applymarker(pytest.mark.slow)
    example, entrypoint, rule, framework, knobs = CASES[case]
    repo = make_repo(example) if example else make_repo(files=TWO_SCRIPTS)
    assert not (repo / "tweakops.yaml").exists()
    before, head = tree_bytes(repo), git(repo, "rev-parse", "HEAD")

    done = cli("--json", "run", str(repo), TWEAKOPS_RUNTIME=runtime, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    snapshot = json.loads(done.stdout)

    trials = {t["number"]: t for t in snapshot["trials"]}
    assert trials[0]["params"] == {} and trials[0]["accuracy"] < THRESHOLD, trials[0]
    best = max(snapshot["trials"], key=lambda t: t["accuracy"] or 0)
    assert best["accuracy"] >= THRESHOLD and best["number"] > 0, snapshot["trials"]
    assert snapshot["run"]["status"] == "reached"
    assert git(repo, "status", "--porcelain") == "" and git(repo, "rev-parse", "HEAD") == head
    assert tree_bytes(repo) == before
    source = Path(snapshot["folder"]) / "source"
    assert tree_bytes(source) == before  # the run's pristine copy, never tweaked

    found = inspect_result(snapshot)
    assert (found["entrypoint"], found["entrypoint_rule"]) == (entrypoint, rule)
    assert found["framework"] == framework and found["space"] == "inferred"
    assert knobs <= {k["name"] for k in found["knobs"]} == set(found["tuned"])
    assert found["environment"]["runtime"] == runtime
    assert found["checkpoints"] == ("injected" if framework == "keras" else "")

    folder = Path(best["folder"])
    diff = (folder / "changes.diff").read_text()
    assert diff.startswith(f"--- a/{entrypoint}") and "\n+" in diff
    assert (Path(trials[0]["folder"]) / "changes.diff").read_text() == ""
    assert set(best["params"]) == set(found["tuned"])
    if framework == "keras":
        assert [row["epoch"] for row in _epochs(folder)][:2] == [1, 2]  # injected epoch records
        assert (folder / "output" / "checkpoints" / "backup").is_dir()  # injected checkpoints

    status = cli("status", "--run", snapshot["run"]["id"]).stdout
    assert f"entrypoint: {entrypoint} ({rule}" in status
    assert f"knobs: {len(found['knobs'])} found; tuned: " in status
    report = (Path(snapshot["folder"]) / "report.html").read_text()
    assert 'id="best-diff"' in report and "Knobs found in the code" in report


def test_a_plain_script_that_cannot_reach_the_target_names_the_knobs_it_tried(
    make_repo: Callable[..., Path], cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    repo = make_repo("seed-sklearn", files={"tweakops.yaml": "threshold: 0.999\nmax_trials: 3\n"})
    done = cli("run", str(repo))
    assert done.returncode == 3, done.stderr[-2000:]
    verdict = done.stdout.strip().splitlines()[-1]
    assert "budget spent: threshold 0.999 not reached, max_trials (3) spent" in verdict
    assert "knobs tried (inferred from the code): random_forest_n_estimators (wine_vote.py:17)" in (
        verdict
    )
    assert "knn_n_neighbors (wine_vote.py:18)" in verdict


def test_a_declared_search_space_wins_and_its_names_still_reach_the_code(
    make_repo: Callable[..., Path], cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    yaml = "search_space:\n  knn_n_neighbors: {type: int, low: 10, high: 12}\nmax_trials: 3\n"
    repo = make_repo("seed-sklearn", files={"tweakops.yaml": yaml})
    done = cli("--json", "run", str(repo))
    assert done.returncode in (0, 3), done.stderr[-2000:]
    snapshot = json.loads(done.stdout)
    found = inspect_result(snapshot)
    assert found["space"] == "tweakops.yaml" and found["tuned"] == ["knn_n_neighbors"]
    for trial in snapshot["trials"][1:]:
        assert set(trial["params"]) == {"knn_n_neighbors"}
        diff = (Path(trial["folder"]) / "changes.diff").read_text()
        value = trial["params"]["knn_n_neighbors"]
        assert f"+knn = KNeighborsClassifier(n_neighbors={value})" in diff, diff
        changed = [
            line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"
        ]
        assert changed == ["-knn = KNeighborsClassifier(n_neighbors=1)", changed[1]], diff


def test_autotune_false_trains_the_defaults_only(
    make_repo: Callable[..., Path], cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    repo = make_repo("seed-sklearn", files={"tweakops.yaml": "autotune: false\n"})
    done = cli("run", str(repo))
    assert done.returncode == 3
    assert "nothing to tune" in done.stdout
    assert "search space: off (autotune: false)" in cli("status").stdout


def _epochs(trial_folder: Path) -> list[dict[str, Any]]:
    from training import read_epochs

    return read_epochs(trial_folder / "output")
