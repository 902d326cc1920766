"""The offline base image recipe: debootstrap a minimal Debian with python3, trim it, import it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tweakops.images._recipe import ImageError
from tweakops.runtime._process import stream_to_log

PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
# Removed after debootstrap: what a container never reads (copyright files are kept).
TRIM_GLOBS = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/log/*.log",
    "var/log/apt/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/doc/*/*",
)
NODOC = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""


def check_prerequisites() -> str:
    """The debootstrap executable; ImageError when not root or debootstrap is missing."""
    if os.geteuid() != 0:
        raise ImageError(
            "building the base image needs root (debootstrap creates device files and chroots): "
            "run `sudo tweakops images base`"
        )
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if not found:
        raise ImageError(
            "debootstrap is not installed: `sudo apt-get install debootstrap` "
            "(Debian/Ubuntu; `dnf install debootstrap` on Fedora), then `sudo tweakops images base`"
        )
    return found


def debootstrap(
    executable: str, suite: str, mirror: str, rootfs: Path, log: Path, say: Callable[[str], None]
) -> None:
    """Run debootstrap into `rootfs`, echoing each new phase's first line and every 20th line."""
    command = [executable, "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    command += [suite, str(rootfs), mirror]
    phases: set[str] = set()
    count, last = 0, ""

    def echo(text: str) -> None:
        nonlocal count, last
        count += 1
        phase = text[3:].split(" ", 1)[0] if text.startswith("I: ") else ""
        if phase not in phases or count % 20 == 0 or text[:2] in ("W:", "E:"):
            say(f"  {text}")
        phases.add(phase)
        last = text or last

    code = stream_to_log(command, log, echo)
    if code != 0:
        raise ImageError(
            f"debootstrap {suite} from {mirror} failed (exit {code}): {last}; see {log} "
            "(a reachable Debian mirror is needed: --mirror URL)"
        )


def trim(rootfs: Path) -> int:
    """Delete caches, docs and logs from the root file system; returns the bytes freed."""
    freed = 0
    for pattern in TRIM_GLOBS:
        for path in rootfs.glob(pattern):
            if path.name == "copyright":
                continue
            freed += _size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    nodoc = rootfs / "etc/dpkg/dpkg.cfg.d/tweakops-nodoc"
    nodoc.parent.mkdir(parents=True, exist_ok=True)
    nodoc.write_text(NODOC)
    return freed


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*"))


def tar_rootfs(rootfs: Path, tar_path: Path) -> Path:
    """Tar the root file system with numeric owners, leaving out /dev, /proc, /sys contents."""
    command = ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tar_path)]
    command += ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(f"tar of {rootfs} failed: {done.stderr.strip()[-300:]}")
    return tar_path


def import_rootfs(client: Any, tar_path: Path, tag: str) -> str:
    """`docker import` the tar as `tag`; returns the image id."""
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.api.import_image(
        src=str(tar_path), repository=repository, tag=version, changes=list(IMPORT_CHANGES)
    )
    return str(client.images.get(f"{repository}:{version}").id)


def make_base(
    client: Any,
    executable: str,
    tag: str,
    source: tuple[str, str],
    workdir: Path | None,
    log: Path,
    say: Callable[[str], None],
) -> str:
    """debootstrap (suite, mirror) in a temporary folder, trim, tar, import; always clean up."""
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tweakops-base-", dir=workdir))
    rootfs = work / "rootfs"
    try:
        debootstrap(executable, *source, rootfs, log, say)
        say(f"  trimmed {trim(rootfs) / 1e6:.0f} MB; importing as {tag}")
        return import_rootfs(client, tar_rootfs(rootfs, work / "rootfs.tar"), tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
