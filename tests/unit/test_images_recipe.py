"""Image recipes and their content tags: pure file reads, no Docker engine."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tweakops.errors import TweakopsError
from tweakops.images.build import (
    IMAGE_NAMES,
    REPO_ROOT,
    ImageError,
    content_tag,
    recipe,
)

BASE = "tweakops/base:bookworm"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of everything a recipe reads: docker/ and training/ (the harness)."""
    copy = tmp_path / "checkout"
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "docker", copy / "docker", ignore=no_bytecode)
    shutil.copytree(REPO_ROOT / "training", copy / "training", ignore=no_bytecode)
    return copy


def _append(relative: str, data: str = "\n# changed\n") -> Callable[[Path], None]:
    def change(root: Path) -> None:
        with (root / relative).open("a", encoding="utf-8") as handle:
            handle.write(data)

    return change


def _create(relative: str) -> Callable[[Path], None]:
    return lambda root: (root / relative).write_text("VALUE = 1\n")


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_content_tag_is_stable_and_does_not_depend_on_where_the_checkout_lives(
    root: Path, name: str
) -> None:
    tag = content_tag(recipe(name, root), BASE)
    assert re.fullmatch(rf"tweakops/{name}:[0-9a-f]{{12}}", tag)
    assert content_tag(recipe(name, root), BASE) == tag
    assert content_tag(recipe(name), BASE) == tag


@pytest.mark.parametrize(
    "change",
    [
        _append("docker/Dockerfile"),
        _append("docker/sklearn/requirements.txt", "\n"),
        _append("training/metric.py"),
        _append("training/files.py", " "),
        _create("training/extra_helper.py"),
    ],
    ids=["dockerfile", "requirements", "training", "atomic", "new-harness-file"],
)
def test_content_tag_changes_when_one_byte_of_the_recipe_changes(
    root: Path, change: Callable[[Path], None]
) -> None:
    before = content_tag(recipe("sklearn", root), BASE)
    change(root)
    assert content_tag(recipe("sklearn", root), BASE) != before


def test_content_tag_ignores_bytecode_and_the_other_images_files(root: Path) -> None:
    before = content_tag(recipe("sklearn", root), BASE)
    (root / "training" / "__pycache__").mkdir(exist_ok=True)
    (root / "training" / "__pycache__" / "metric.cpython-311.pyc").write_bytes(b"\0junk")
    _append("docker/keras/requirements.txt", "\n")(root)
    assert content_tag(recipe("sklearn", root), BASE) == before


def test_content_tag_changes_with_the_base_image_name_and_id(root: Path) -> None:
    the_recipe = recipe("keras", root)
    tags = {
        content_tag(the_recipe, BASE),
        content_tag(the_recipe, "python:3.11-slim"),
        content_tag(the_recipe, BASE, "sha256:" + "1" * 64),
        content_tag(the_recipe, BASE, "sha256:" + "2" * 64),
    }
    assert len(tags) == 4


def test_a_recipe_carries_the_training_harness_and_nothing_of_tweakops() -> None:
    the_recipe = recipe("keras")
    relative = {p.relative_to(REPO_ROOT).as_posix() for p in the_recipe.harness_files}
    assert {"training/__init__.py", "training/metric.py", "training/files.py"} <= relative
    assert all(part.startswith("training/") for part in relative)
    assert not any("__pycache__" in part or part.endswith(".pyc") for part in relative)
    assert the_recipe.dockerfile == REPO_ROOT / "docker" / "Dockerfile"
    assert the_recipe.requirements == REPO_ROOT / "docker" / "keras" / "requirements.txt"


def test_an_unknown_image_name_lists_the_known_ones() -> None:
    with pytest.raises(ImageError, match=r"unknown image 'torch'; expected one of keras, sklearn"):
        recipe("torch")
    assert issubclass(ImageError, TweakopsError)


def test_a_missing_recipe_file_is_named(root: Path) -> None:
    (root / "docker" / "sklearn" / "requirements.txt").unlink()
    with pytest.raises(ImageError, match=r"requirements\.txt is missing"):
        recipe("sklearn", root)


def test_docker_folder_is_data_only() -> None:
    assert not list((REPO_ROOT / "docker").rglob("__init__.py"))
    assert not list((REPO_ROOT / "docker").rglob("*.py"))


def test_dockerfile_takes_a_base_installs_offline_and_runs_as_trainer() -> None:
    text = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert "FROM ${BASE_IMAGE}" in text
    assert "--no-index" in text and "--find-links /tmp/wheels" in text
    assert "COPY harness/ /opt/tweakops/" in text
    assert "USER 1000:1000" in text and "WORKDIR /trial" in text
    assert 'tweakops.image="${IMAGE_NAME}"' in text  # the build passes each image's name


def test_requirements_keep_the_lower_bounds_of_pyproject() -> None:
    keras = (REPO_ROOT / "docker" / "keras" / "requirements.txt").read_text().split()
    sklearn = (REPO_ROOT / "docker" / "sklearn" / "requirements.txt").read_text().split()
    assert {"tensorflow-cpu>=2.16", "keras>=3.0", "numpy>=1.26", "scikit-learn>=1.3"} <= set(keras)
    assert {"scikit-learn>=1.3", "numpy>=1.26", "joblib>=1.3"} <= set(sklearn)
