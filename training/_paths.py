"""Where a trial writes: TWEAKOPS_OUTPUT, or the working directory when run by hand."""

from __future__ import annotations

import os
from pathlib import Path

from training.files import atomic_write

OUTPUT_ENV = "TWEAKOPS_OUTPUT"


def output_dir() -> Path:
    """The trial's output folder (env TWEAKOPS_OUTPUT, else the cwd), created if missing."""
    value = os.environ.get(OUTPUT_ENV, "")
    folder = Path(value) if value else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def checkpoint_dir() -> Path:
    """output_dir()/checkpoints, created if missing."""
    folder = output_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_metric(value: float, name: str = "accuracy") -> Path:
    """Atomically write the metric as one number to output_dir()/<name>.txt."""
    return atomic_write(output_dir() / f"{name}.txt", f"{float(value)}\n")
