"""A cached virtual environment per set of requirements, layered over this Python's.

The venv has no packages of its own but what the repository asked for: a .pth file adds this
environment's site-packages after the venv's own (with their .pth files: editable installs
keep working), so tweakops, the framework and the harness are all there, and the trial's
extra packages win only where they are new. pip installs into it from the host's index with
this environment's versions as constraints: nothing of the framework is replaced. Keyed by
the interpreter and the requirements; `.complete` marks a usable one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import site
import sys
import time
import venv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tweakops.errors import RuntimeUnavailable
from tweakops.files import atomic_write
from tweakops.images._wheelhouse import MARKER, build_lock, run_pip
from tweakops.images.build import ImageError

LAYER_PTH = "_tweakops_layer.pth"


def venv_dir(cache: Path, requirements: Sequence[str]) -> Path:
    """<cache>/venvs/<hash of this interpreter and the requirements>."""
    digest = hashlib.sha256()
    for part in (
        os.path.realpath(sys.executable),
        platform.python_version(),
        *sorted(requirements),
    ):
        digest.update(part.encode() + b"\0")
    return cache / "venvs" / digest.hexdigest()[:12]


def ensure_venv(
    cache: Path,
    requirements: Sequence[str],
    installed: Mapping[str, str],
    say: Callable[[str], None],
) -> tuple[Path, bool]:
    """(the venv's python, whether this call made it)."""
    folder = venv_dir(cache, requirements)
    python = folder / "bin" / "python"
    if (folder / MARKER).is_file():
        return python, False
    with build_lock(cache / "locks" / f"venv-{folder.name}.lock", say):
        if (folder / MARKER).is_file():
            return python, False
        started = time.monotonic()
        shutil.rmtree(folder, ignore_errors=True)
        say(f"    making a virtual environment for {', '.join(requirements)} in {folder}")
        venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
        _layer(folder)
        wanted = atomic_write(folder / "requirements.in", "\n".join(requirements) + "\n")
        pins = [f"{name}=={version}" for name, version in sorted(installed.items())]
        constraints = atomic_write(folder / "constraints.txt", "\n".join(pins) + "\n")
        command = [sys.executable, "-m", "pip", "--python", str(python), "install"]
        command += ["--disable-pip-version-check", "-r", str(wanted), "-c", str(constraints)]
        try:
            run_pip(command, cache / "logs" / f"venv-{folder.name}.log", say)
        except ImageError as exc:
            raise RuntimeUnavailable(
                f"installing {', '.join(requirements)} failed: {exc}; fix the requirement, "
                "or set `dependencies: host` and install it on this machine yourself"
            ) from exc
        atomic_write(folder / MARKER, f"{time.time():.0f}\n")
        say(f"    installed in {time.monotonic() - started:.1f} s")
    return python, True


def _layer(folder: Path) -> None:
    """Put this environment's site-packages behind the venv's own."""
    purelib = next(folder.glob("lib/python*/site-packages"))
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    lines = [f"import site; site.addsitedir({d!r})" for d in dirs if Path(d).is_dir()]
    (purelib / LAYER_PTH).write_text("\n".join(lines) + "\n")
