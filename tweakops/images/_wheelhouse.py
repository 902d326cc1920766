"""Wheels downloaded on the host, the build context that carries them, and the offline build.

pip cannot reach an index from inside a build here, so `pip download` runs on the host for the
image's Python (3.11, manylinux up to Debian bookworm's glibc 2.36) and the build installs from
the copied folder with --no-index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweakops.files import atomic_write
from tweakops.images._recipe import ImageError, ImageRecipe
from tweakops.report.console import Activity, Console, clip
from tweakops.runtime import docker_engine
from tweakops.runtime._process import stream_to_log

PYTHON_VERSION = "3.11"
GLIBC_MINOR_MAX = 36  # Debian bookworm (the offline base): newer manylinux wheels would not load
MARKER = ".complete"
ERROR_LINE = re.compile(r"(?i)(\w*error\b|e: |fatal\b)")  # pip, apt, tracebacks
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the builder paints a step's stderr red


@dataclass(frozen=True)
class Wheelhouse:
    """A folder of wheels; `reused` when a complete earlier download was found."""

    path: Path
    files: int
    megabytes: float
    seconds: float
    reused: bool


def platform_tags() -> tuple[str, ...]:
    """manylinux tags the image's glibc accepts, oldest first (pip does not expand them)."""
    arch = "aarch64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
    newer = tuple(f"manylinux_2_{minor}_{arch}" for minor in range(17, GLIBC_MINOR_MAX + 1))
    return (f"manylinux2014_{arch}", *newer)


def harness_files(root: Path) -> tuple[Path, ...]:
    """training/ without bytecode: the harness imports nothing of tweakops."""
    package = sorted(
        path
        for path in (root / "training").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.relative_to(root).parts
        and path.suffix != ".pyc"
    )
    if not package:
        raise ImageError(f"the trial harness is incomplete, missing {root}/training")
    return tuple(package)


def download_command(requirements: Path, dest: Path, constraints: Path | None = None) -> list[str]:
    """The host-side `pip download` that fetches binary wheels for the image's interpreter."""
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    command += ["-d", str(dest), "-r", str(requirements), "--only-binary=:all:"]
    if constraints is not None:
        command += ["-c", str(constraints)]
    command += ["--python-version", PYTHON_VERSION, "--implementation", "cp"]
    for tag in platform_tags():
        command += ["--platform", tag]
    return command


def wheelhouse_dir(cache: Path, recipe: ImageRecipe) -> Path:
    """<cache>/<name>-<hash of requirements and download options>: a new pin, a new folder."""
    digest = hashlib.sha256(recipe.requirements.read_bytes())
    digest.update("\0".join(download_command(Path("r"), Path("d"))[3:]).encode())
    return cache / f"{recipe.name}-{digest.hexdigest()[:12]}"


def ensure_wheelhouse(recipe: ImageRecipe, cache: Path, say: Callable[[str], None]) -> Wheelhouse:
    """Reuse a complete download, else run `pip download` on the host (streamed to a log)."""
    folder = wheelhouse_dir(cache, recipe)
    started = time.monotonic()
    reused = (folder / MARKER).is_file()
    if not reused:
        folder.mkdir(parents=True, exist_ok=True)
        log = cache / "logs" / f"wheels-{folder.name}.log"
        say(f"downloading wheels for {recipe.name} on the host into {folder}")
        run_pip(download_command(recipe.requirements, folder), log, say)
        atomic_write(folder / MARKER, f"{time.time():.0f}\n")
    wheels = sorted(folder.glob("*.whl"))
    megabytes = sum(w.stat().st_size for w in wheels) / 1e6
    return Wheelhouse(folder, len(wheels), megabytes, time.monotonic() - started, reused)


def run_pip(command: Sequence[str], log: Path, say: Callable[[str], None]) -> None:
    """Run pip, echo one line per package, keep everything in `log`; a failure names the log."""
    last = ""

    def echo(line: str) -> None:
        nonlocal last
        text = line.strip()
        shown = _pip_progress(text)
        if shown:
            say(f"  {shown}")
        if text and not text.startswith("WARNING: Location"):
            last = text

    code = stream_to_log(command, log, echo)
    if code != 0:
        verb = next((word for word in command if word in ("download", "install")), "")
        raise ImageError(f"pip {verb} failed (exit {code}): {last}; see {log}")


def _pip_progress(text: str) -> str | None:
    """ "Collecting numpy>=1.26 (from ...)" -> "Collecting numpy>=1.26"; other lines -> None."""
    if not text.startswith(("Collecting ", "Processing ", "Successfully downloaded ")):
        return None
    verb, _, what = text.split(" (from ", 1)[0].partition(" ")
    return f"{verb} {Path(what).name if verb == 'Processing' else what}"[:110]


def assemble_context(recipe: ImageRecipe, wheels: Path, dest: Path) -> Path:
    """Build context: Dockerfile, requirements.txt, wheels/ (hard links) and harness/."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(recipe.dockerfile, dest / "Dockerfile")
    shutil.copy2(recipe.requirements, dest / "requirements.txt")
    (dest / "wheels").mkdir()
    for wheel in sorted(wheels.glob("*.whl")):
        link_or_copy(wheel, dest / "wheels" / wheel.name)
    for source in recipe.harness_files:
        target = dest / "harness" / source.relative_to(recipe.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        shutil.copy2(source, target)


def build_offline(
    client: Any, the_recipe: ImageRecipe, base: str, tag: str, cache: Path, console: Console
) -> bool:
    """Wheels on the host, a temporary context, an offline build; False if another process did."""
    with build_lock(cache / "locks" / f"{the_recipe.name}.lock", console.say):
        if client.images.list(name=tag):
            return False
        _build_unlocked(client, the_recipe, base, tag, cache, console)
    return True


@contextlib.contextmanager
def build_lock(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One build per image name and cache folder at a time (parallel trials, Jenkins executors)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"  another build of this image is running ({path}); waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _build_unlocked(
    client: Any, the_recipe: ImageRecipe, base: str, tag: str, cache: Path, console: Console
) -> None:
    with console.activity(f"downloading the wheels of {the_recipe.name}"):
        house = ensure_wheelhouse(the_recipe, cache, console.say)
    how = "reused" if house.reused else f"downloaded in {house.seconds:.1f} s"
    console.say(f"  wheels: {house.files} files, {house.megabytes:.0f} MB, {how} ({house.path})")
    log = cache / "logs" / f"build-{the_recipe.name}-{tag.rsplit(':', 1)[1]}.log"
    (cache / "contexts").mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(prefix=f"{the_recipe.name}-", dir=cache / "contexts"))
    try:
        assemble_context(the_recipe, house.path, context)
        run_build(client, context, tag, base, log, console)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def run_build(
    client: Any,
    context: Path,
    tag: str,
    base: str,
    log: Path,
    console: Console,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Run the build, echo steps and pip's summary, keep the full log; a failing step raises.

    `extra` adds build args, and labels for the keys named `tweakops.*`."""
    errors = docker_engine.sdk().errors
    image, trace = tag.rsplit(":", 1)[0], _BuildTrace(console)
    name = image.rsplit("/", 1)[-1]  # tweakops/<name>: the Dockerfile's IMAGE_NAME
    labels = {"tweakops.content-tag": tag, "tweakops.base": base}
    buildargs = {"BASE_IMAGE": base, "IMAGE_NAME": name}
    for key, value in (extra or {}).items():
        (labels if key.startswith("tweakops.") else buildargs)[key] = value
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out, console.activity(f"building {tag}") as activity:
        trace.activity = activity
        try:
            for item in client.api.build(
                path=str(context), tag=tag, pull=False,
                buildargs=buildargs, labels=labels,
                rm=True, forcerm=True, decode=True, network_mode="none",
            ):  # fmt: skip
                for line in ANSI.sub("", str(item.get("stream", ""))).splitlines():
                    out.write(line + "\n")
                    trace.feed(line)
                if "error" in item:
                    out.write(f"{item['error']}\n")
                    detail = trace.last_error or first_line(str(item["error"]))
                    raise ImageError(
                        f"building {image} failed at step '{clip(trace.step, 80)}': {detail}; "
                        f"see {log}"
                    )
        except errors.DockerException as exc:
            raise ImageError(f"building {image} failed: {first_line(str(exc))}; see {log}") from exc


class _BuildTrace:
    """Follows a classic-builder stream: the current step and its last error line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.activity = Activity(None)  # the build's spinner, told each step
        self.step = self.last_error = ""

    def feed(self, line: str) -> None:
        """Echo step headers, pip's install summary and error lines; remember the last error."""
        text = line.strip()
        if text.startswith("Step ") and " : " in text:
            self.step, self.last_error = text.split(" : ", 1)[1], ""
            self.console.say("  " + clip(text, 110))
            self.activity.update(clip(text, 110))
        elif ERROR_LINE.match(text) or " error: " in f" {text.lower()}":
            self.last_error = text
            self.console.say("    " + clip(text, 160))
        elif text.startswith(("Installing collected packages", "Successfully installed")):
            self.console.say("    " + clip(text, 110))


def first_line(text: str) -> str:
    """The first line of an error text, clipped; never empty."""
    return text.strip().splitlines()[0][:200] if text.strip() else "no reason given"
