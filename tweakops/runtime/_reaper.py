"""The parent of a local trial: everything the trial starts ends with it.

    python _reaper.py COMMAND [ARGS...]

Run by path with only the standard library (no tweakops import: it starts in milliseconds).
It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a process the trial
starts cannot escape by double-forking or `setsid`: orphans are reparented here, not to init.
When COMMAND ends, every process left below this one is SIGKILLed and reaped, and this one
exits as COMMAND did (the same code, or the same signal). The local runtime kills a trial by
killing this whole tree (tweakops/runtime/local_backend.py: kill_tree).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: _reaper.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        child = subprocess.Popen(argv)  # inherits stdin, stdout, stderr, cwd and environment
    except OSError as exc:
        print(f"tweakops: cannot start {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    for number in FORWARDED:
        signal.signal(number, lambda signum, _frame: _forward(child.pid, signum))
    code = _wait_for(child.pid)
    kill_descendants(os.getpid())
    _reap_all()
    if code < 0:  # die of the same signal, so that our parent sees what happened
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_for(pid: int) -> int:
    """Reap children (orphans included) until `pid` ends; its code, or -signal."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if done == pid:
            return os.waitstatus_to_exitcode(status)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc, parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):  # a zombie is dead already: its parent reaps it
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def kill_descendants(pid: int, rounds: int = 20) -> None:
    """SIGKILL everything below `pid` until nothing is left (a fork in between is caught by
    the next round: below a subreaper, nothing escapes)."""
    for _ in range(rounds):
        found = descendants(pid)
        if not found:
            return
        for victim in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(victim, signal.SIGKILL)
        if pid == os.getpid():
            _reap_all()


def _reap_all() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
