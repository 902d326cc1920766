"""A warm spare's host folder, and how a trial's folder becomes it: the parts that touch files.

A spare container starts with a folder of its own at /trial: <trials>/.spare-<id>, a sibling
of the trial folders (the same filesystem, so every move below is a rename). To hand it a
trial, the trial folder's entries move into the spare's folder, the emptied trial folder is
removed and the spare's folder takes its name. A bind mount follows the directory, not its
name: the container now sees the trial's files at /trial, and the host finds them where it
always did. The job file (training/_warm.py) then tells the spare what to run.

While it waits, the spare's folder holds only the owner lock (training/_warm.py's OWNER_FILE,
flocked by the tweakops process that may still send a job). A folder holding anything else is
never deleted here: a trial's files are never lost to a cleanup.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from pathlib import Path

from training._warm import JOB_FILE, OWNER_FILE

SPARE_PREFIX = ".spare-"
_OURS = (JOB_FILE, OWNER_FILE)


def make_spare_folder(trials: Path) -> Path:
    """A new empty folder <trials>/.spare-<12 hex> for a spare container."""
    folder = trials / f"{SPARE_PREFIX}{uuid.uuid4().hex[:12]}"
    folder.mkdir(mode=0o755)
    return folder


def hold_owner(folder: Path) -> int:
    """Create the owner lock in the spare's folder and flock it exclusively: the spare waits
    for a job only while the lock is held (it ends with this process). The descriptor."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder / OWNER_FILE, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def let_go(fd: int, folder: Path) -> None:
    """Remove the owner lock's file from `folder` and release the lock (after the job was
    written: a spare that sees its owner gone looks for the job once more)."""
    with contextlib.suppress(OSError):
        os.unlink(folder / OWNER_FILE)
    with contextlib.suppress(OSError):
        os.close(fd)


def move_trial_into(trial: Path, spare: Path) -> None:
    """Move the trial folder's entries into the spare's folder and put that folder at the
    trial's path. On any failure everything goes back where it was and the OSError is raised.

    A job or owner file left in the trial folder (by an earlier attempt's code) is removed
    first: the spare must only ever see the ones the host writes.
    """
    for name in _OURS:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(trial / name)  # a folder planted there: OSError, the trial starts cold
    moved: list[str] = []
    try:
        for name in sorted(os.listdir(trial)):
            if os.path.lexists(spare / name):
                raise FileExistsError(errno.EEXIST, "in the spare's folder already", spare / name)
            os.rename(trial / name, spare / name)
            moved.append(name)
        os.rmdir(trial)
        os.rename(spare, trial)
    except OSError:
        _put_back(trial, spare, moved)
        raise


def _put_back(trial: Path, spare: Path, moved: list[str]) -> None:
    if not os.path.lexists(trial):
        os.mkdir(trial, 0o755)
    for name in reversed(moved):
        os.rename(spare / name, trial / name)


def write_job(folder: Path, text: str, owner: tuple[int, int] | None) -> None:
    """The job where the spare looks for it: written aside, then renamed into place (never read
    half-written); readable by the container user only (`owner`, as root)."""
    temp = folder / f".tweakops-job-{uuid.uuid4().hex[:8]}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as job:
            if owner is not None:
                os.fchown(job.fileno(), *owner)
            job.write(text)
        os.rename(temp, folder / JOB_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def remove_spare_folder(folder: Path) -> bool:
    """Remove an unused spare's folder: only its own files, then the folder if that empties
    it. False (the folder left as it is) when something else is in it, or it is no spare's."""
    if not folder.name.startswith(SPARE_PREFIX):
        return False
    for name in _OURS:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
