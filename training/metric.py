"""Host side: read and validate the accuracy a trial wrote."""

from __future__ import annotations

import math
import re
from pathlib import Path

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class MetricError(ValueError):
    """accuracy.txt is missing or unreadable (tweakops.trialfiles reports it as its own)."""


_ALLOWED = "one number between 0 and 1, or a percentage up to 100 (e.g. 0.93, 93.0 or 93%)"


def read_metric(output_dir: Path, workdir: Path, name: str = "accuracy") -> float:
    """The metric in <name>.txt (output_dir first, then workdir) as a fraction in [0, 1]."""
    filename = f"{name}.txt"
    for folder in (Path(output_dir), Path(workdir)):
        path = folder / filename
        if path.is_file():
            return parse_metric(path.read_bytes(), path)
    raise MetricError(
        f"no {filename} was written in {output_dir} or {workdir}: the entrypoint must write "
        f"its {name} there (training.write_metric({_example_call(name)}) does it)"
    )


def parse_metric(raw: bytes, source: Path | str = "accuracy.txt") -> float:
    """Parse the bytes of a metric file; anything but one valid number is a MetricError."""
    shown = repr(raw[:40])
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _rejected(source, shown, "it is not UTF-8 text") from None
    if not text:
        raise _rejected(source, shown, "it is empty")
    percent = text.endswith("%")
    number_text = text[:-1].rstrip() if percent else text
    if not _NUMBER.fullmatch(number_text):
        raise _rejected(source, shown, "it is not a single number")
    value = float(number_text)
    if not math.isfinite(value):
        raise _rejected(source, shown, "it is not a finite number")
    if percent:
        if 0.0 <= value <= 100.0:
            return value / 100.0
    elif 0.0 <= value <= 1.0:
        return value
    elif 1.0 < value <= 100.0:
        return value / 100.0
    raise _rejected(source, shown, f"{value:g} is out of range")


def _rejected(source: Path | str, shown: str, why: str) -> MetricError:
    """The one message shape for an unreadable metric file."""
    return MetricError(
        f"{source} starts with {shown}, which is not usable: {why}; expected {_ALLOWED}"
    )


def _example_call(name: str) -> str:
    """How the user's script writes this metric."""
    return "acc" if name == "accuracy" else f"value, name={name!r}"
