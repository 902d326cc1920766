"""A warm interpreter for the local runtime: imports the framework first, then runs one trial.

Started as `python -u -m tweakops.runtime._warm MODULE...` in its own session. It imports
the modules (TensorFlow/Keras take 5-10 s), then waits for one JSON line on stdin:
{"argv": ["train.py", ...], "cwd": ..., "env": {...}, "log": ...}. It then becomes that
trial: output to the log, the trial's cwd, environment and argv, and the script run as
__main__; it exits like the script would, minus the interpreter's slow teardown.
EOF on stdin (the tweakops process went away) ends it without running anything.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import io
import json
import os
import runpy
import stat
import sys
import traceback


def main(modules: list[str]) -> int:
    for name in modules:
        with contextlib.suppress(Exception):  # the script imports it again and says why
            importlib.import_module(name)
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    log = os.open(job["log"], flags, 0o644)  # never a link or a FIFO planted in the folder
    if not stat.S_ISREG(os.fstat(log).st_mode):
        return 1
    os.set_blocking(log, True)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    sys.argv = list(job["argv"])
    sys.path[0] = job["cwd"]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    _quick_exit(code)
    return code


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with: None → 0, an int, else the text printed → 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _quick_exit(code: int) -> None:
    """Exit without the interpreter's teardown (about 1 s of TensorFlow finalisers), but only
    after what a normal exit guarantees the trial: its atexit handlers run and every open
    Python file object flushed, so an unclosed accuracy.txt still reaches the disk."""
    atexit._run_exitfuncs()
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            with contextlib.suppress(Exception):
                if not obj.closed and obj.writable():
                    obj.flush()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
