"""What a Jenkins build archives of a run, copied out of the run folder into one folder.

The run folder holds what trials wrote (their logs, their checkpoints), and a trial can leave
a symbolic link, a FIFO or a device there. Jenkins' archiveArtifacts follows links by
default, and reading a FIFO never returns: so the build archives only this folder, made here
with tweakops/trialfiles.py. Regular files only, never through a link, each under a cap; what
was left out is listed in REFUSED.txt beside the rest.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tweakops.errors import TweakopsError
from tweakops.files import atomic_write
from tweakops.records import best_trial
from tweakops.report.page import try_write_report
from tweakops.store import RunStore
from tweakops.trialfiles import MIB, TrialFileRefused, copy_regular, read_tail

RUN_FILES = ("report.html", "accuracy.txt", "accuracy.png")
LOG_CAP = 64 * MIB  # a larger log is archived as its last 64 MiB
FILE_CAP = 4096 * MIB  # a checkpoint file larger than 4 GiB is left out
REFUSED_FILE = "REFUSED.txt"
MARKER = ".tweakops-artifacts"


@dataclass
class Exported:
    folder: Path
    copied: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "copied": self.copied, "refused": self.refused}

    def summary(self) -> str:
        left = f", {len(self.refused)} left out (see {REFUSED_FILE})" if self.refused else ""
        return f"{len(self.copied)} file(s) in {self.folder}{left}"


def export_artifacts(store: RunStore, run_id: str, dest: Path) -> Exported:
    """Copy the run's report (rewritten first: it shows the run as it is now), metric, plot,
    emails, trial logs and diffs, and the best trial's checkpoints into `dest` (made empty
    first), safely."""
    try_write_report(store, run_id)
    run = store.run_dir(run_id)
    _empty(dest)
    done = Exported(dest)
    for name in RUN_FILES:
        _copy(run, run / name, dest / name, FILE_CAP, done)
    for email in _regular_files(run / "outbox"):
        _copy(run, email, dest / "outbox" / email.name, FILE_CAP, done)
    trials = store.trials(run_id)
    for trial in trials:
        folder = run / "trials" / f"{trial.number:03d}"
        _copy_log(run, folder / "log.txt", dest / "trials" / folder.name / "log.txt", done)
        _copy(
            run,
            folder / "changes.diff",
            dest / "trials" / folder.name / "changes.diff",
            FILE_CAP,
            done,
        )
    best = best_trial(trials)
    if best is not None:
        checkpoints = run / "trials" / f"{best.number:03d}" / "output" / "checkpoints"
        for path in _tree(checkpoints, done):
            target = dest / "model" / path.relative_to(checkpoints)
            _copy(run, path, target, FILE_CAP, done)
    if done.refused:
        atomic_write(dest / REFUSED_FILE, "\n".join(done.refused) + "\n")
    return done


def _empty(dest: Path) -> None:
    """A new folder, or one this module made before (its marker), emptied; never another."""
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise TweakopsError(
            f"{dest} is not empty and was not made by `tweakops artifacts`: give a new folder"
        )
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / MARKER).write_text("made by tweakops artifacts: emptied on each export\n")


def _copy(root: Path, path: Path, target: Path, cap: int, done: Exported) -> None:
    try:
        copy_regular(root, path, target, cap)
    except FileNotFoundError:
        return
    except (TrialFileRefused, OSError) as exc:
        done.refused.append(str(exc))
        return
    done.copied.append(str(target.relative_to(done.folder)))


def _copy_log(root: Path, path: Path, target: Path, done: Exported) -> None:
    """A log up to LOG_CAP; a larger one as its last LOG_CAP bytes, after a line saying so."""
    try:
        data = read_tail(root, path, LOG_CAP + 1)
    except FileNotFoundError:
        return
    except (TrialFileRefused, OSError) as exc:
        done.refused.append(str(exc))
        return
    if len(data) > LOG_CAP:
        data = (
            b"[tweakops: the start of this log is left out: it keeps its last 64 MiB]\n"
            + (data[-LOG_CAP:])
        )
    atomic_write(target, data)
    done.copied.append(str(target.relative_to(done.folder)))


def _regular_files(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(Path(e.path) for e in entries if e.is_file(follow_symlinks=False))


def _tree(folder: Path, done: Exported) -> list[Path]:
    """Every entry below `folder` that is not a folder, links included (copy refuses them);
    a linked folder is refused, never entered."""
    if folder.is_symlink():
        done.refused.append(f"{folder} is a symbolic link: refused")
        return []
    found: list[Path] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in list(dirs):
            if Path(current, name).is_symlink():
                done.refused.append(f"{Path(current, name)} is a symbolic link: refused")
                dirs.remove(name)
        found.extend(Path(current, name) for name in sorted(files))
    return found
