"""Is a process still there? Shared by the local runtime and the run lease (no other deps)."""

from __future__ import annotations

import os
from pathlib import Path

_HAS_PROC = Path("/proc/self/stat").exists()


def pid_alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie (uses /proc where there is one)."""
    if not _HAS_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X", "x")
