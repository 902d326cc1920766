"""A warm interpreter for the local runtime: imports the framework first, then runs one trial.

Started as `python -u -m tweakops.runtime._warm MODULE...` in its own session. It imports
the modules (TensorFlow/Keras take 5-10 s), then waits for one JSON line on stdin:
{"argv": ["train.py", ...], "cwd": ..., "env": {...}, "log": ...}. It then becomes that
trial: output to the log, the trial's cwd, environment and argv, and the script run as
__main__. EOF on stdin (the tweakops process went away) ends it without running anything.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import sys


def main(modules: list[str]) -> int:
    for name in modules:
        with contextlib.suppress(Exception):  # the script imports it again and says why
            importlib.import_module(name)
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    log = os.open(job["log"], flags, 0o644)
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
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
