"""Every host-side read, write and copy of a file in a trial's folder goes through here.

A trial's code is untrusted and owns its folder: where the host expects its log, its metric,
its epoch records or its checkpoints, it can leave a symbolic link (to /etc/shadow), a FIFO
(a read that never returns), a device (/dev/zero: a read that never ends) or a huge file.
So, from the trial folder down:
- every path component is opened with O_NOFOLLOW (a link anywhere on the way is refused,
  and the trial folder itself must not be one);
- only regular files are read (fstat after a non-blocking open: a FIFO never blocks);
- no read is larger than the cap of its kind; a log is read from its end.
A refused file raises TrialFileRefused, whose message names the file and why.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training import PARAMS_USED_FILE
from training.metric import MetricError as TrialMetricError
from training.metric import parse_metric
from tweakops.errors import MetricError, TweakopsError

KIB, MIB = 1024, 1024 * 1024
METRIC_CAP = 4 * KIB  # one number
LOG_TAIL_CAP = 64 * KIB  # the last lines of a log, read backwards from its end
EPOCHS_CAP = 16 * MIB  # epochs.jsonl: the newest records if it is larger
TEXT_CAP = 1 * MIB  # changes.diff, a probe's answer, checkpoint metadata
LOG_TAIL_LINES = 20  # the lines of a failed trial's log a report shows
CHANGES_FILE = "changes.diff"  # the trial's copy of the code against the repository
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TrialFileRefused(TweakopsError):
    """A file in a trial folder that the host will not read: a link, not a regular file..."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"{path} is {why}: refused (a trial's files are read only as regular "
            "files inside its folder)"
        )
        self.path, self.why = path, why


@contextlib.contextmanager
def open_regular(root: Path, path: Path, flags: int = _READ) -> Iterator[int]:
    """A file descriptor of `path`, a regular file reached from `root` without following any
    link; FileNotFoundError when it is not there, TrialFileRefused when it is not safe."""
    relative = _relative(root, path)
    fds: list[int] = []
    try:
        fds.append(_open(str(root), _DIR, None, path))
        for part in relative.parts[:-1]:
            fds.append(_open(part, _DIR, fds[-1], path))
        fd = _open(relative.parts[-1], flags, fds[-1], path)
        fds.append(fd)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise TrialFileRefused(path, _kind(mode))
        yield fd
    finally:
        for fd in reversed(fds):
            os.close(fd)


def read_head(root: Path, path: Path, cap: int) -> bytes:
    """The whole file; TrialFileRefused when it is larger than `cap` bytes."""
    with open_regular(root, path) as fd:
        data = _read(fd, cap + 1)
    if len(data) > cap:
        raise TrialFileRefused(path, f"larger than {cap} bytes")
    return data


def read_tail(root: Path, path: Path, cap: int) -> bytes:
    """The last `cap` bytes of the file (all of it when smaller)."""
    with open_regular(root, path) as fd:
        size = os.fstat(fd).st_size
        if size > cap:
            os.lseek(fd, size - cap, os.SEEK_SET)
        return _read(fd, cap)


def read_metric(root: Path, output_dir: Path, workdir: Path, name: str = "accuracy") -> float:
    """The metric a trial wrote (TWEAKOPS_OUTPUT first, then its working folder), 0–1."""
    filename = f"{name}.txt"
    for folder in (output_dir, workdir):
        path = folder / filename
        try:
            data = read_head(root, path, METRIC_CAP)
        except FileNotFoundError:
            continue
        except TrialFileRefused as exc:
            raise MetricError(str(exc)) from exc
        try:
            return parse_metric(data, path)
        except TrialMetricError as exc:  # the harness's format error, in our hierarchy
            raise MetricError(str(exc)) from exc
    raise MetricError(
        f"no {filename} was written in {output_dir} or {workdir}: the entrypoint must write "
        f"its {name} there (training.write_metric() does it)"
    )


def metric_written(output_dir: Path, workdir: Path, name: str = "accuracy") -> bool:
    """Whether anything at all stands where the metric file goes (never followed, never read)."""
    return any(os.path.lexists(folder / f"{name}.txt") for folder in (output_dir, workdir))


def read_epochs(root: Path, output_dir: Path) -> list[dict[str, Any]]:
    """The epoch records of epochs.jsonl (its newest EPOCHS_CAP bytes); [] when none or refused."""
    try:
        raw = read_tail(root, output_dir / "epochs.jsonl", EPOCHS_CAP)
    except (FileNotFoundError, TrialFileRefused, NotADirectoryError):
        return []
    lines = raw.split(b"\n")
    if len(raw) == EPOCHS_CAP:
        lines = lines[1:]  # the first line was cut
    records: list[dict[str, Any]] = []
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line) if line.strip() else None
            if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                records.append(record)
    return records


def read_params_used(root: Path, output_dir: Path) -> dict[str, Any]:
    """The values a trial's param() calls handed out (params_used.json); {} when none or bad.

    Written by the trial, so untrusted: only names and numbers, strings and booleans are kept.
    """
    try:
        data = json.loads(read_head(root, output_dir / PARAMS_USED_FILE, TEXT_CAP))
    except (FileNotFoundError, TrialFileRefused, NotADirectoryError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        name: value
        for name, value in data.items()
        if isinstance(name, str) and isinstance(value, bool | int | float | str)
    }


def trial_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a trial's log (trials/NNN/log.txt), read safely from its end."""
    return log_tail(path.parent, path, lines)


def log_tail(root: Path, path: Path, lines: int) -> str:
    """The last `lines` lines of a trial's log, read from its end; a refusal says why."""
    try:
        data = read_tail(root, path, LOG_TAIL_CAP)
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except TrialFileRefused as exc:
        return f"({exc})"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_text(root: Path, path: Path, cap: int = TEXT_CAP) -> str:
    """A small text file of the trial folder (its head, at most `cap` bytes)."""
    with open_regular(root, path) as fd:
        return _read(fd, cap).decode("utf-8", errors="replace")


def open_for_append(root: Path, path: Path) -> int:
    """An O_APPEND descriptor of the trial's log (created when missing), never a link or a
    FIFO: the host's writes cannot be redirected by the trial. The caller closes it."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    relative = _relative(root, path)
    if len(relative.parts) != 1:
        raise ValueError(f"{path} must be directly in {root}")
    folder = _open(str(root), _DIR, None, path)
    try:
        fd = _open(relative.name, flags, folder, path)
    finally:
        os.close(folder)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise TrialFileRefused(path, _kind(mode))
    os.set_blocking(fd, True)
    return fd


def copy_regular(root: Path, path: Path, dest: Path, cap: int) -> None:
    """Copy a regular file of the trial folder to `dest` (never a link, never over `cap`)."""
    with open_regular(root, path) as fd:
        size = os.fstat(fd).st_size
        if size > cap:
            raise TrialFileRefused(path, f"larger than {cap} bytes")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            while chunk := os.read(fd, MIB):
                out.write(chunk)
                size -= len(chunk)
                if size < -cap:  # it grew while copied
                    raise TrialFileRefused(path, f"larger than {cap} bytes")


def _relative(root: Path, path: Path) -> Path:
    try:
        relative = Path(os.path.normpath(path)).relative_to(os.path.normpath(root))
    except ValueError:
        raise TrialFileRefused(path, f"outside the trial folder {root}") from None
    if not relative.parts or ".." in relative.parts:
        raise TrialFileRefused(path, f"outside the trial folder {root}")
    return relative


def _open(name: str, flags: int, dir_fd: int | None, path: Path) -> int:
    """os.open, with the refusals a trial can cause turned into TrialFileRefused."""
    try:
        return os.open(name, flags, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise TrialFileRefused(path, "a symbolic link (or reached through one)") from None
        if exc.errno == errno.ENOTDIR:
            raise TrialFileRefused(path, "reached through something that is not a folder") from None
        if exc.errno == errno.ENXIO:
            raise TrialFileRefused(path, "a FIFO or socket") from None
        raise


def _read(fd: int, limit: int) -> bytes:
    parts, left = [], limit
    while left > 0 and (chunk := os.read(fd, min(left, MIB))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
