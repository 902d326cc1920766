"""The framework images against the real Docker engine: offline base, offline builds, cache hits.

CI builds the base and both images first (`tweakops images base`, `tweakops images build all`),
so here they are cache hits; on a fresh machine the first test of each builds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import skip_or_require
from tweakops.cli.images import images_group
from tweakops.errors import RuntimeUnavailable
from tweakops.images.build import (
    OFFLINE_BASE,
    REPO_ROOT,
    BuiltImage,
    ImageError,
    build_base,
    build_image,
    content_tag,
    engine,
    list_images,
    recipe,
    resolve_image,
)
from tweakops.report.console import Console

pytestmark = pytest.mark.docker

QUIET = Console(quiet=True)
HARNESS_DIGESTS = """
import hashlib, json, pathlib
root = pathlib.Path("/opt/tweakops")
print(json.dumps({p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(root.rglob("*"))
                  if p.is_file() and "__pycache__" not in p.parts}))
"""


@pytest.fixture(scope="module")
def client() -> Any:
    """The engine, or a skip (a failure when TWEAKOPS_REQUIRE_DOCKER=1)."""
    try:
        return engine()
    except RuntimeUnavailable as exc:
        skip_or_require("TWEAKOPS_REQUIRE_DOCKER", "Docker engine", f"no Docker engine: {exc}")


@pytest.fixture(scope="module")
def base(client: Any) -> BuiltImage:
    """The offline base: cached when CI built it; a skip outside CI when it cannot be made."""
    try:
        return build_base(console=QUIET)
    except ImageError as exc:
        if os.environ.get("TWEAKOPS_REQUIRE_DOCKER") == "1":
            raise
        pytest.skip(f"no offline base image and it cannot be built here: {exc}")


@pytest.fixture(scope="module")
def sklearn_image(base: BuiltImage) -> BuiltImage:
    return build_image("sklearn", OFFLINE_BASE, QUIET)


def _run(client: Any, image: str, *command: str) -> str:
    """Run a throwaway container with no network as the image's own user; its stdout."""
    output = client.containers.run(image, list(command), network_mode="none", remove=True)
    return bytes(output).decode().strip()


def test_the_offline_base_has_python3_venv_and_certificates(client: Any, base: BuiltImage) -> None:
    assert base.tag == OFFLINE_BASE and base.image_id.startswith("sha256:")
    assert build_base(console=QUIET).cached
    out = _run(client, OFFLINE_BASE, "python3", "-c", "import venv, ssl, sys; print(sys.version)")
    assert out.startswith("3.11")


def test_sklearn_image_imports_sklearn_and_the_harness_as_uid_1000_with_no_network(
    client: Any, sklearn_image: BuiltImage
) -> None:
    script = "import os, sklearn, joblib, numpy, training; print(os.getuid(), os.getgid())"
    assert _run(client, sklearn_image.tag, "python", "-c", script) == "1000 1000"
    assert _run(client, sklearn_image.tag, "sh", "-c", "pwd; echo $HOME").split() == [
        "/trial",
        "/home/trainer",
    ]


def test_a_second_build_is_a_cache_hit_with_the_same_image(sklearn_image: BuiltImage) -> None:
    again = build_image("sklearn", OFFLINE_BASE, QUIET)
    assert again.cached and again.tag == sklearn_image.tag
    assert again.image_id == sklearn_image.image_id
    assert again.seconds < 10


def test_the_image_tag_and_harness_match_the_repository(
    client: Any, sklearn_image: BuiltImage
) -> None:
    base_id = client.images.get(OFFLINE_BASE).id
    assert sklearn_image.tag == content_tag(recipe("sklearn"), OFFLINE_BASE, base_id)
    image = client.images.get(sklearn_image.tag)
    assert image.labels["tweakops.content-tag"] == sklearn_image.tag
    assert image.labels["tweakops.image"] == "sklearn"
    assert client.images.get("tweakops/sklearn:latest").id == image.id
    inside = json.loads(_run(client, sklearn_image.tag, "python", "-c", HARNESS_DIGESTS))
    expected = {
        p.relative_to(REPO_ROOT).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in recipe("sklearn").harness_files
    }
    assert inside == expected


def test_the_image_user_is_not_root(client: Any, sklearn_image: BuiltImage) -> None:
    config = client.images.get(sklearn_image.tag).attrs["Config"]
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/trial"
    assert _run(client, sklearn_image.tag, "id", "-un") == "trainer"


def test_resolve_image_maps_names_to_the_content_tag_and_never_builds_when_told_not_to(
    monkeypatch: pytest.MonkeyPatch, sklearn_image: BuiltImage
) -> None:
    monkeypatch.delenv("TWEAKOPS_BASE_IMAGE", raising=False)
    for ref in ("sklearn", "tweakops/sklearn", "tweakops/sklearn:latest"):
        assert resolve_image(ref, build=False) == sklearn_image.tag
    assert resolve_image(sklearn_image.tag, build=False) == sklearn_image.tag
    monkeypatch.setenv("TWEAKOPS_BASE_IMAGE", sklearn_image.tag)  # a base nothing was built on
    with pytest.raises(ImageError, match=r"is missing: run `tweakops images build keras`"):
        resolve_image("keras", build=False)


def test_a_user_image_that_cannot_be_pulled_is_named_with_what_to_do(client: Any) -> None:
    with pytest.raises(ImageError, match=r"registry\.invalid/team/model:1 .* remove `image:`"):
        resolve_image("registry.invalid/team/model:1", build=False)


def test_a_missing_base_image_says_to_build_the_offline_base(client: Any) -> None:
    with pytest.raises(ImageError, match=r"base image registry\.invalid/nobase:1 is missing"):
        build_image("sklearn", "registry.invalid/nobase:1", QUIET)


def test_a_failing_step_names_the_step_and_its_last_error_line(
    client: Any, base: BuiltImage, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    for folder in ("docker", "training"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__py*"))
    (root / "tweakops").mkdir()
    for name in ("__init__.py", "errors.py", "files.py"):
        shutil.copy2(REPO_ROOT / "tweakops" / name, root / "tweakops" / name)
    (root / "docker" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo starting\n"
        'RUN echo "error: the broken step" >&2 && exit 3\n'
    )
    with pytest.raises(ImageError) as err:
        build_image("sklearn", OFFLINE_BASE, QUIET, root=root)
    message = str(err.value)
    assert message.startswith("building tweakops/sklearn failed at step 'RUN echo \"error:")
    assert ": error: the broken step; see " in message
    assert Path(message.rsplit("; see ", 1)[1]).is_file()
    broken = content_tag(recipe("sklearn", root), OFFLINE_BASE, base.image_id)
    assert not client.images.list(name=broken)


def test_images_list_shows_the_built_image_and_its_size(sklearn_image: BuiltImage) -> None:
    rows = {row.name: row for row in list_images(OFFLINE_BASE)}
    assert rows["sklearn"].present and rows["sklearn"].tag == sklearn_image.tag
    assert rows["sklearn"].image_id == sklearn_image.image_id
    assert (rows["sklearn"].size or 0) > 50_000_000
    result = CliRunner().invoke(images_group, ["list", "--base", OFFLINE_BASE])
    assert result.exit_code == 0 and sklearn_image.tag in result.output


def test_images_build_command_reports_the_cache_hit(sklearn_image: BuiltImage) -> None:
    result = CliRunner().invoke(images_group, ["build", "sklearn", "--base", OFFLINE_BASE])
    assert result.exit_code == 0, result.output
    assert f"sklearn: unchanged, {sklearn_image.tag} (cached)" in result.output


def test_keras_image_imports_tensorflow_keras_sklearn_and_the_harness(
    client: Any, base: BuiltImage
) -> None:
    keras = build_image("keras", OFFLINE_BASE, QUIET)
    script = "import tensorflow, keras, sklearn, training; print(keras.__version__)"
    out = _run(client, keras.tag, "python", "-c", script)
    assert out.splitlines()[-1].startswith("3.")
