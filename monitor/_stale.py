"""The watchdog's heartbeat shape (optuna's _heartbeat.py): read a heartbeat, pick stale trials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tweakops.records import TrialRecord

HEARTBEAT_FILE = "heartbeat"  # in TWEAKOPS_OUTPUT: the time as text, rewritten while training


def read_heartbeat(output_dir: Path) -> float | None:
    """The time in output_dir/heartbeat, else the file's mtime; None when there is none."""
    path = Path(output_dir) / HEARTBEAT_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        try:
            return float(text)
        except ValueError:  # torn or foreign content: the write time still says it was alive
            return path.stat().st_mtime
    except OSError:
        return None


def find_stale(
    trials: Sequence[TrialRecord],
    is_alive: Callable[[str], bool],
    now: float,
    heartbeat_of: Callable[[TrialRecord], float | None],
    grace: float,
) -> list[TrialRecord]:
    """Running trials whose process is gone and whose heartbeat is older than `grace` seconds."""
    stale: list[TrialRecord] = []
    for trial in trials:
        if trial.status != "running":
            continue  # finished in the meantime: left alone
        if trial.handle is not None and is_alive(trial.handle):
            continue
        beat = heartbeat_of(trial)
        if beat is None or now - beat > grace:
            stale.append(trial)
    return stale
