"""Long build commands (debootstrap, pip download): full output to a log, progress to a callback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def stream_to_log(command: Sequence[str], log: Path, on_line: Callable[[str], None]) -> int:
    """Run `command`, write the command and all its output to `log`, call `on_line` per line
    (trailing whitespace stripped); return the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        out.write(" ".join(command) + "\n")
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            on_line(line.rstrip())
        return proc.wait()
