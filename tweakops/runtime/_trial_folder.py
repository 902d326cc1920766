"""The trial folder as a container sees it: who owns it, its /trial paths, a safe log file."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tweakops.errors import TrialFailed
from tweakops.runtime._base import TrialSpec
from tweakops.trialfiles import TrialFileRefused, open_for_append
from tweakops.vocabulary import TrialVerdict

MOUNT_POINT = PurePosixPath("/trial")
CONTAINER_USER = "1000:1000"  # the images' `trainer` user, used when tweakops runs as root


def default_user() -> str:
    """ "1000:1000" (the images' trainer) when this process is root, else our own uid:gid."""
    if os.geteuid() == 0:
        return CONTAINER_USER
    return f"{os.getuid()}:{os.getgid()}"


def trial_folder(spec: TrialSpec) -> Path:
    """The folder mounted at /trial: the workdir's parent, which must hold output_dir too."""
    trial = spec.workdir.absolute().parent
    output = spec.output_dir.absolute()
    if not output.is_relative_to(trial):
        raise ValueError(
            f"trial {spec.name!r}: output_dir {output} must be inside the trial folder {trial} "
            "(the parent of workdir), the only folder a container sees"
        )
    return trial


def container_env(env: Mapping[str, str], trial: Path) -> dict[str, str]:
    """spec.env with values naming paths in the host trial folder rewritten under /trial."""
    prefixes = {str(trial), str(trial.resolve())}
    rewritten: dict[str, str] = {}
    for key, value in env.items():
        for prefix in prefixes:
            if value == prefix or value.startswith(prefix + os.sep):
                value = str(MOUNT_POINT) + value[len(prefix) :]
                break
        rewritten[key] = value
    return rewritten


def path_inside(trial: Path, path: Path) -> PurePosixPath:
    """Where a host path in the trial folder appears in the container."""
    return MOUNT_POINT.joinpath(*path.absolute().relative_to(trial).parts)


def hand_over(user: str, trial: Path) -> None:
    """As root, give the trial folder to the numeric container user so it can write there."""
    owner = owner_ids(user)
    if owner is None:
        return
    for path in _walk(trial):
        os.chown(path, *owner, follow_symlinks=False)  # never a symlink's target


def owner_ids(user: str) -> tuple[int, int] | None:
    """(uid, gid) that files handed to the container user get: only as root, and only for a
    numeric user (a user name: the image decides its uid, nothing to hand over)."""
    if os.geteuid() != 0:
        return None
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        return None
    return int(uid_text), int(gid_text or uid_text)


def _walk(root: Path) -> Iterator[Path]:
    yield root
    for folder, dirs, files in os.walk(root):  # does not descend into symlinked folders
        for name in (*dirs, *files):
            yield Path(folder, name)


def open_log(log_path: Path) -> BinaryIO:
    """Open the log for appending, refusing a link, a FIFO or a device that an earlier attempt
    may have planted where it was: the trial folder is writable by the trial, and tweakops may
    run as root, so following one would let a trial append to any file on the host (or hang
    the host on a FIFO)."""
    try:
        return os.fdopen(open_for_append(log_path.parent, log_path), "ab")
    except (TrialFileRefused, OSError) as exc:
        raise TrialFailed(
            f"cannot open the trial log {log_path} ({exc}): it must be a regular file; "
            "remove what stands there and start the trial again",
            verdict=TrialVerdict.CODE_ERROR,
        ) from exc
