"""What goes into an image build (wheelhouse, context), the CLI surface and the no-engine error."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tweakops.cli.images import images_group
from tweakops.errors import RuntimeUnavailable
from tweakops.images import _baseimage, _wheelhouse
from tweakops.images.build import REPO_ROOT, ImageError, engine, recipe, resolve_image
from tweakops.report.console import Console


def test_wheels_are_fetched_for_python_311_manylinux_up_to_bookworms_glibc() -> None:
    command = _wheelhouse.download_command(Path("req.txt"), Path("out"))
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--only-binary=:all:" in command and "--no-index" not in command
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--implementation") + 1] == "cp"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    arch = platforms[0].removeprefix("manylinux2014_")
    assert platforms[0] == f"manylinux2014_{arch}"
    assert f"manylinux_2_17_{arch}" in platforms and f"manylinux_2_28_{arch}" in platforms
    assert f"manylinux_2_36_{arch}" in platforms and f"manylinux_2_37_{arch}" not in platforms


def test_the_wheelhouse_folder_follows_the_requirements(tmp_path: Path) -> None:
    sklearn, keras = recipe("sklearn"), recipe("keras")
    folder = _wheelhouse.wheelhouse_dir(tmp_path, sklearn)
    assert folder.parent == tmp_path and folder.name.startswith("sklearn-")
    assert _wheelhouse.wheelhouse_dir(tmp_path, sklearn) == folder
    assert _wheelhouse.wheelhouse_dir(tmp_path, keras).name.startswith("keras-")


def test_a_complete_wheelhouse_is_reused_without_running_pip(tmp_path: Path) -> None:
    the_recipe = recipe("sklearn")
    folder = _wheelhouse.wheelhouse_dir(tmp_path, the_recipe)
    folder.mkdir(parents=True)
    (folder / "demo-1.0-py3-none-any.whl").write_bytes(b"x" * 1000)
    (folder / _wheelhouse.MARKER).write_text("done\n")
    said: list[str] = []
    house = _wheelhouse.ensure_wheelhouse(the_recipe, tmp_path, said.append)
    assert (house.path, house.files, house.reused) == (folder, 1, True)
    assert said == []


def test_the_build_context_holds_dockerfile_requirements_wheels_and_harness(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "demo-1.0-py3-none-any.whl").write_bytes(b"wheel")
    the_recipe = recipe("sklearn")
    context = _wheelhouse.assemble_context(the_recipe, wheels, tmp_path / "context")
    assert (context / "Dockerfile").read_bytes() == the_recipe.dockerfile.read_bytes()
    assert (context / "requirements.txt").read_bytes() == the_recipe.requirements.read_bytes()
    assert (context / "wheels" / "demo-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    harness = sorted(
        p.relative_to(context / "harness") for p in (context / "harness").rglob("*") if p.is_file()
    )
    assert harness == sorted(p.relative_to(REPO_ROOT) for p in the_recipe.harness_files)


def test_no_engine_is_a_one_line_error_saying_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(RuntimeUnavailable, match=r"no Docker engine answers at unix://.*") as err:
        engine(timeout=5)
    assert "dockerd" in str(err.value) and "--runtime local" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_repository_dockerfile_reference_is_refused_before_any_engine_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(ImageError, match=r"'dockerfile:Dockerfile' names the repository's own"):
        resolve_image("dockerfile:Dockerfile", build=True, console=Console(quiet=True))


def test_images_command_offers_base_build_and_list() -> None:
    runner = CliRunner()
    result = runner.invoke(images_group, ["--help"])
    assert result.exit_code == 0
    assert {"base", "build", "list"} <= set(result.output.split())
    refused = runner.invoke(images_group, ["build", "torch"])
    assert refused.exit_code == 2 and "'torch' is not one of" in refused.output


def test_build_without_an_engine_raises_the_runtime_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = CliRunner().invoke(images_group, ["build", "sklearn"])
    assert isinstance(result.exception, RuntimeUnavailable)
    assert "no-engine.sock" in str(result.exception)


def test_the_build_trace_follows_steps_and_the_last_error_line() -> None:
    said: list[str] = []
    console = Console(quiet=True)
    console.say = said.append  # type: ignore[method-assign]
    trace = _wheelhouse._BuildTrace(console)
    stream = [
        "Step 1/4 : FROM tweakops/base:bookworm AS venv",
        " ---> 230f174ddd0f",
        "Step 2/4 : RUN pip install --no-index -r /tmp/requirements.txt",
        " ---> Running in e8fc40eee68f",
        "Successfully installed numpy-2.4.6 scikit-learn-1.9.1",
        " ---> a48dbf8556a8",
        "Step 3/4 : FROM tweakops/base:bookworm",
        " ---> 230f174ddd0f",
        "Step 4/4 : RUN python -c 'import training'",
        _wheelhouse.ANSI.sub("", "\x1b[91mModuleNotFoundError: No module named 'training'\x1b[0m"),
    ]
    for line in stream:
        trace.feed(line)
    assert trace.step == "RUN python -c 'import training'"
    assert trace.last_error == "ModuleNotFoundError: No module named 'training'"
    assert said[0] == "  Step 1/4 : FROM tweakops/base:bookworm AS venv"
    assert "    Successfully installed numpy-2.4.6 scikit-learn-1.9.1" in said
    assert not any("--->" in line for line in said)


def test_the_base_recipe_needs_root_and_debootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_baseimage.os, "geteuid", lambda: 1000)
    with pytest.raises(ImageError, match=r"needs root .* `sudo tweakops images base`"):
        _baseimage.check_prerequisites()
    monkeypatch.setattr(_baseimage.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_baseimage.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(ImageError, match=r"debootstrap is not installed: `sudo apt-get install"):
        _baseimage.check_prerequisites()


def test_a_failed_debootstrap_names_its_last_line_and_log(tmp_path: Path) -> None:
    fake = tmp_path / "debootstrap"
    lines = "".join(f"echo 'I: Retrieving pkg{i}'; " for i in range(45))
    fake.write_text(f'#!/bin/sh\n{lines}echo "E: Couldn\'t download packages: python3"; exit 1\n')
    fake.chmod(0o755)
    said: list[str] = []
    log = tmp_path / "logs" / "base.log"
    with pytest.raises(
        ImageError, match=r"failed \(exit 1\): E: Couldn't download .*see .*base\.log"
    ):
        _baseimage.debootstrap(
            str(fake), "bookworm", "http://mirror", tmp_path / "r", log, said.append
        )
    assert said[0] == "  I: Retrieving pkg0" and said[-1].startswith("  E: Couldn't")
    assert len(said) < 10  # condensed: new phases, every 20th line, warnings and errors
    assert "I: Retrieving pkg44" in log.read_text()


def test_trimming_drops_caches_and_docs_but_keeps_copyright(tmp_path: Path) -> None:
    for relative in (
        "var/lib/apt/lists/deb.debian.org_Packages",
        "var/cache/apt/archives/python3_3.11.deb",
        "usr/share/doc/bash/README.gz",
        "usr/share/doc/bash/copyright",
        "usr/share/man/man1/bash.1.gz",
        "usr/bin/python3",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x" * 100)
    assert _baseimage.trim(tmp_path) == 400
    remaining = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert remaining == {
        "usr/share/doc/bash/copyright",
        "usr/bin/python3",
        "etc/dpkg/dpkg.cfg.d/tweakops-nodoc",
    }


def test_a_second_build_of_the_same_image_waits_for_the_first(tmp_path: Path) -> None:
    lock, events, waiting = tmp_path / "locks" / "keras.lock", [], []

    def second() -> None:
        with _wheelhouse.build_lock(lock, waiting.append):
            events.append("second builds")

    with _wheelhouse.build_lock(lock, events.append):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        events.append("first done")
    thread.join(timeout=10)
    assert events == ["first done", "second builds"]
    assert waiting and "waiting for it" in waiting[0]
