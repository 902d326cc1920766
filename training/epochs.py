"""Per-epoch progress: the trial appends epochs.jsonl and a heartbeat; the host reads them."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training._paths import output_dir

EPOCHS_FILE = "epochs.jsonl"
HEARTBEAT_FILE = "heartbeat"


def log_epoch(epoch: int, **metrics: float) -> None:
    """Append {"epoch", "time", "pid", **metrics} to epochs.jsonl and refresh the heartbeat.

    `epoch` counts completed epochs from 1. Call it after the epoch's checkpoint is saved,
    so that every logged epoch survives a restart. The line is on disk (fsync) on return.
    """
    fd = append_epoch(epoch, metrics)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_epoch(epoch: int, metrics: Mapping[str, Any]) -> int:
    """log_epoch() without the wait for the disk: append the line and refresh the heartbeat,
    both visible to other processes (and kept if this one is killed) at once; return the
    descriptor of epochs.jsonl, still to fsync and close (training/_durable.py)."""
    folder = output_dir()
    now = time.time()
    record: dict[str, Any] = {"epoch": int(epoch), "time": now, "pid": os.getpid()}
    for key, value in metrics.items():
        record.setdefault(key, _jsonable(value))
    line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
    path = folder / EPOCHS_FILE
    _drop_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
        _beat(folder / HEARTBEAT_FILE, now)
    except BaseException:
        os.close(fd)
        raise
    return fd


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


def _beat(path: Path, now: float) -> None:
    """Replace the heartbeat atomically: the time of the last epoch line, for a person to read."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{now}\n", encoding="utf-8")
    os.replace(tmp, path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (left by a killed writer) so the next line starts clean."""
    try:
        with path.open("r+b") as handle:
            end = handle.seek(0, os.SEEK_END)
            if end == 0:
                return
            handle.seek(end - 1)
            if handle.read(1) == b"\n":
                return  # the usual case: one byte read, not the whole log
            handle.seek(0)
            data = handle.read()
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
