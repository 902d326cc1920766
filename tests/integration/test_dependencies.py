"""The repository's own requirements: installed once where trials run, checked before training.

Docker: an image derived from the framework image, built offline from a host wheelhouse,
tagged by the framework image and the requirements, so the same requirements reuse it and
new ones make a new one. Local: a cached venv over this Python. Either way, an import the
environment cannot satisfy fails inspect, naming file:line and where to declare it, before
any trial runs.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tweakops.images.derived import DERIVED_LABEL

# tabulate and six: small pure-Python wheels that neither framework image has.
SCRIPT = """\
import tabulate
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
score = LogisticRegression(max_iter=500).fit(X, y).score(X, y)
print(tabulate.tabulate([["accuracy", score]]))
open("accuracy.txt", "w").write(str(score))
"""
Cli = Callable[..., subprocess.CompletedProcess[str]]


def inspected(cli: Cli, run_id: str) -> dict[str, Any]:
    snapshot = json.loads(cli("--json", "status", "--run", run_id).stdout)
    (stage,) = [s for s in snapshot["stages"] if s["name"] == "inspect"]
    return dict(stage["result"])


def run_id_of(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    return str(json.loads(done.stdout)["run"]["id"])


def derived_images(client: Any) -> set[str]:
    return {
        tag for image in client.images.list(filters={"label": DERIVED_LABEL}) for tag in image.tags
    }


@pytest.fixture
def fresh_derived(docker_engine: Any) -> Iterator[list[str]]:
    """Tags the test builds; removed before (a leftover of an earlier run) and after it."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        with contextlib.suppress(Exception):
            docker_engine.images.remove(tag, force=True)


@pytest.mark.docker
def test_the_derived_image_is_built_once_and_again_when_requirements_change(
    docker_engine: Any, make_repo: Callable[..., Path], cli: Cli, fresh_derived: list[str]
) -> None:
    repo = make_repo(files={"fit.py": SCRIPT, "requirements.txt": "tabulate\n"})
    planned = cli("pull", str(repo)).stdout.strip().splitlines()[-1]
    first = cli("--json", "inspect", "--run", planned, TWEAKOPS_RUNTIME="docker")
    tag = json.loads(first.stdout)["environment"]["image"]
    fresh_derived.append(tag)
    docker_engine.images.remove(tag, force=True)  # built by this test, whatever ran before

    built = inspected(cli, run_id_of(cli("--json", "run", str(repo), TWEAKOPS_RUNTIME="docker")))
    environment = built["environment"]
    assert environment["built"] is True and environment["image"] == tag
    assert tag.startswith("tweakops/sklearn-deps:")
    assert [a.split()[0] for a in environment["installed"]] == ["tabulate"]
    images = derived_images(docker_engine)

    again = inspected(cli, run_id_of(cli("--json", "run", str(repo), TWEAKOPS_RUNTIME="docker")))
    assert again["environment"]["built"] is False and again["environment"]["image"] == tag
    assert derived_images(docker_engine) == images  # nothing new was built

    (repo / "requirements.txt").write_text("tabulate\nsix\n")
    git(repo, "commit", "-qam", "six too")
    changed = inspected(cli, run_id_of(cli("--json", "run", str(repo), TWEAKOPS_RUNTIME="docker")))
    fresh_derived.append(changed["environment"]["image"])
    assert changed["environment"]["built"] is True and changed["environment"]["image"] != tag
    assert sorted(a.split()[0] for a in changed["environment"]["installed"]) == ["six", "tabulate"]
    assert derived_images(docker_engine) > images


def test_the_local_venv_is_made_once_and_reused(make_repo: Callable[..., Path], cli: Cli) -> None:
    repo = make_repo(files={"fit.py": SCRIPT, "requirements.txt": "tabulate\n"})
    first = inspected(cli, run_id_of(cli("--json", "run", str(repo))))
    second = inspected(cli, run_id_of(cli("--json", "run", str(repo))))
    venv = first["environment"]["python"]
    assert venv.endswith("/bin/python") and "/venvs/" in venv
    assert second["environment"]["python"] == venv and second["environment"]["built"] is False
    assert first["environment"]["installed"] == ["tabulate"]


def test_an_undeclared_import_fails_inspect_with_file_line_and_where_to_declare_it(
    make_repo: Callable[..., Path], cli: Cli
) -> None:
    script = SCRIPT.replace("import tabulate\n", "import ficus_not_installed_anywhere\n")
    repo = make_repo(files={"fit.py": script})
    done = cli("run", str(repo))
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: fit.py needs what this Python (")
    assert (
        "fit.py:1 imports ficus_not_installed_anywhere (add `ficus_not_installed_anywhere` to "
        in error
    )
    assert "requirements.txt)" in error
    snapshot = json.loads(cli("--json", "status").stdout)
    assert snapshot["trials"] == []  # nothing trained
    assert [s["status"] for s in snapshot["stages"]][:3] == ["succeeded", "failed", "skipped"]


def test_dependencies_host_installs_nothing_and_says_what_to_install(
    make_repo: Callable[..., Path], cli: Cli
) -> None:
    files = {
        "fit.py": SCRIPT.replace("import tabulate\n", "import ficus_not_installed_anywhere\n"),
        "requirements.txt": "ficus-not-installed-anywhere\n",
        "tweakops.yaml": "dependencies: host\n",
    }
    done = cli("run", str(make_repo(files=files)))
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert "declared at requirements.txt:1 but not importable there" in error
    assert "install them on this machine, or drop `dependencies: host`" in error


@pytest.mark.docker
def test_in_docker_the_check_uses_the_image(
    docker_engine: Any, make_repo: Callable[..., Path], cli: Cli
) -> None:
    repo = make_repo(files={"fit.py": SCRIPT})  # tabulate: on this machine maybe, not in the image
    done = cli("run", str(repo), TWEAKOPS_RUNTIME="docker")
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert "fit.py needs what image tweakops/sklearn:" in error
    assert "fit.py:1 imports tabulate (add `tabulate` to requirements.txt)" in error
