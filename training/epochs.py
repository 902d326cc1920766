"""Per-epoch progress: the trial appends epochs.jsonl and a heartbeat; the host reads them."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from training._paths import output_dir
from training.files import atomic_write

EPOCHS_FILE = "epochs.jsonl"
HEARTBEAT_FILE = "heartbeat"


def log_epoch(epoch: int, **metrics: float) -> None:
    """Append {"epoch", "time", "pid", **metrics} to epochs.jsonl and refresh the heartbeat.

    `epoch` counts completed epochs from 1. Call it after the epoch's checkpoint is saved,
    so that every logged epoch survives a restart.
    """
    folder = output_dir()
    now = time.time()
    record: dict[str, Any] = {"epoch": int(epoch), "time": now, "pid": os.getpid()}
    for key, value in metrics.items():
        record.setdefault(key, _jsonable(value))
    line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
    path = folder / EPOCHS_FILE
    _drop_torn_tail(path)
    with path.open("ab") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    atomic_write(folder / HEARTBEAT_FILE, f"{now}\n")


def read_epochs(output_dir: Path) -> list[dict[str, Any]]:
    """The epoch records in `output_dir`/epochs.jsonl, in file order; [] when there is none.

    A torn last line (a process killed mid-write) and any other unreadable line are skipped:
    this is a progress log, not a source of truth. A restarted trial may log an epoch twice.
    """
    path = Path(output_dir) / EPOCHS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (left by a killed writer) so the next line starts clean."""
    try:
        with path.open("r+b") as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())
    except FileNotFoundError:
        return


def _jsonable(value: Any) -> Any:
    """A float for numbers (numpy and tensors included), None for NaN/inf, else a string."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value if isinstance(value, str) else repr(value)
    return number if math.isfinite(number) else None
